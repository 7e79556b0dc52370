"""A small report model written twice: a Markdown file and a self-contained HTML page.

The report is data: sections, each an ordered list of blocks (Markdown text, tables, figures),
so a table and the sentence that reads it stay in the order they were given. The Markdown is
the source; the HTML page is that same Markdown rendered by the ``markdown`` package (tables
extension), with raw HTML in the text shown as text and the images embedded as base64, so the
single file can be sent around. Markdown links the images relatively.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

import markdown as _markdown

from semantic_genesis.utils.atomic import atomic_write_text

_NUMERIC = re.compile(r"^[-+]?[\d.]+(e[-+]?\d+)?\s*(±\s*[\d.]+)?\s*%?$")
_PNG = b"\x89PNG\r\n\x1a\n"
_IMG = re.compile(r'<img alt="([^"]*)" src="([^"]*)" ?/?>')
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1d2330;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #d8dce3;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #d8dce3;padding:.3em .7em;text-align:left}th{background:#f2f4f7}
td{font-variant-numeric:tabular-nums}
p img{display:block;max-width:100%;border:1px solid #e3e6eb;margin-top:1em}
p img+em{color:#5b6475;font-size:.9em}
blockquote{margin:.8em 0;padding:.1em 1em;border-left:3px solid #d8dce3;color:#5b6475}
.missing{color:#b3261e}
"""


@dataclass
class Table:
    """A table with a header row; cells are shown as given (format numbers before). Columns
    whose cells are all numbers are right-aligned."""

    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        numeric = [bool(self.rows) and all(_NUMERIC.match(str(row[k]).strip()) for row in self.rows)
                   for k in range(len(self.header))]
        lines = ["| " + " | ".join(_cell(h) for h in self.header) + " |",
                 "|" + "|".join("--:" if n else "---" for n in numeric) + "|"]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in self.rows]
        return "\n".join(lines)


def _cell(value: object) -> str:
    """A table cell on one line, its pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|") or " "


@dataclass
class Figure:
    """An image (a PNG file) and its caption."""

    path: Path
    caption: str


#: a block of a section: Markdown text, a table or a figure
Block = str | Table | Figure


@dataclass
class Section:
    """One heading and its blocks, shown in the order given."""

    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Report:
    """The whole report: title, a lead paragraph and sections."""

    title: str
    lead: str = ""
    sections: list[Section] = field(default_factory=list)

    def write(self, out_dir: str | Path, stem: str = "report") -> tuple[Path, Path]:
        """Write ``<stem>.html`` (self-contained) and ``<stem>.md`` into ``out_dir``."""
        out_dir = Path(out_dir)
        html_path = atomic_write_text(out_dir / f"{stem}.html", self.html(out_dir))
        md_path = atomic_write_text(out_dir / f"{stem}.md", self.markdown(out_dir))
        return html_path, md_path

    def markdown(self, base: str | Path) -> str:
        """The report as Markdown; image links are relative to ``base`` (where it is saved)."""
        parts = [f"# {self.title}", ""]
        if self.lead:
            parts += [self.lead, ""]
        for section in self.sections:
            parts += [f"## {section.title}", ""]
            parts += [_block_markdown(block, Path(base)) + "\n" for block in section.blocks]
        return "\n".join(parts).rstrip() + "\n"

    def html(self, base: str | Path) -> str:
        """The report as one HTML page: the Markdown rendered, raw HTML in the text escaped,
        images read from ``base`` and embedded."""
        renderer = _markdown.Markdown(extensions=["tables"], output_format="html")
        renderer.preprocessors.deregister("html_block")  # text is text, never markup
        renderer.inlinePatterns.deregister("html")
        body = renderer.convert(self.markdown(base))
        body = _IMG.sub(lambda m: _embedded(m.group(1), m.group(2), Path(base)), body)
        return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
                f"<body>\n{body}\n</body></html>\n")


def _block_markdown(block: Block, base: Path) -> str:
    if isinstance(block, Table):
        return block.markdown()
    if isinstance(block, Figure):
        caption = re.sub(r"([\\`*_\[\]])", r"\\\1", " ".join(block.caption.split()))
        return f"![{caption}]({quote(_relative(block.path, base))})\n*{caption}*"
    return str(block).strip()


def _relative(path: Path, base: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(base).resolve()).as_posix()
    except ValueError:
        return Path(path).resolve().as_posix()


def _embedded(alt: str, src: str, base: Path) -> str:
    """An ``<img>`` whose PNG is inlined as base64, or a note naming the missing file (or the
    file that is not a PNG: a link in the text must not copy any file into the page)."""
    if src.startswith(("data:", "http://", "https://")):
        return f'<img alt="{alt}" src="{src}">'
    path = base / unquote(html.unescape(src))
    data = path.read_bytes() if path.is_file() else b""
    if not data.startswith(_PNG):  # only pictures go into the page, never another file
        return f'<span class="missing">(figure missing: {html.escape(str(path))})</span>'
    data = base64.b64encode(data).decode()
    return f'<img alt="{alt}" src="data:image/png;base64,{data}">'
