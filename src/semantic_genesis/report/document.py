"""A small report model rendered twice: a self-contained HTML page and a Markdown file.

The report is data (sections with paragraphs, tables and images), not templating; HTML embeds
the images as base64 so a single file can be sent around, Markdown links them relatively.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from semantic_genesis.utils.atomic import atomic_write_text

_NUMERIC = re.compile(r"^[-+]?[\d.]+(e[-+]?\d+)?\s*(±\s*[\d.]+)?\s*%?$")
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d2330;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #d8dce3;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #d8dce3;padding:.3em .7em;text-align:left}th{background:#f2f4f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #e3e6eb}
figcaption{color:#5b6475;font-size:.9em}.muted{color:#5b6475}
"""


@dataclass
class Table:
    """A table with a header row; cells are shown as given (format numbers before)."""

    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |",
                 "|" + "|".join("---" for _ in self.header) + "|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join(
            "<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in self.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: object) -> str:
    text = str(value)
    cls = ' class="num"' if _NUMERIC.match(text) else ""
    return f"<td{cls}>{html.escape(text)}</td>"


@dataclass
class Section:
    """One heading with paragraphs, optional tables and figures (image path, caption)."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class Report:
    """The whole report: title, a lead paragraph and sections."""

    title: str
    lead: str = ""
    sections: list[Section] = field(default_factory=list)

    def write(self, out_dir: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``<stem>.html`` (self-contained) and ``<stem>.md`` into ``out_dir``."""
        out_dir = Path(out_dir)
        html_path = atomic_write_text(out_dir / f"{stem}.html", self.html())
        md_path = atomic_write_text(out_dir / f"{stem}.md", self.markdown(out_dir))
        return html_path, md_path

    def markdown(self, base: Path) -> str:
        parts = [f"# {self.title}", "", self.lead, ""]
        for s in self.sections:
            parts += [f"## {s.title}", ""]
            parts += [p + "\n" for p in s.paragraphs]
            parts += [t.markdown() + "\n" for t in s.tables]
            for img, caption in s.figures:
                rel = _relative(img, base)
                parts += [f"![{caption}]({rel})", f"*{caption}*", ""]
        return "\n".join(parts).rstrip() + "\n"

    def html(self) -> str:
        body = [f"<h1>{html.escape(self.title)}</h1>"]
        if self.lead:
            body.append(f'<p class="muted">{html.escape(self.lead)}</p>')
        for s in self.sections:
            body.append(f"<h2>{html.escape(s.title)}</h2>")
            body += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
            body += [t.html() for t in s.tables]
            body += [_figure(img, caption) for img, caption in s.figures]
        return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
                f"<body>{''.join(body)}</body></html>\n")


def _relative(path: Path, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(base).resolve()))
    except ValueError:
        return str(path)


def _figure(path: Path, caption: str) -> str:
    path = Path(path)
    if not path.is_file():
        return f'<p class="muted">(figure missing: {html.escape(str(path))})</p>'
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
