"""The report renders to HTML (self-contained) and Markdown; the CLI reference cannot drift."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from semantic_genesis.report import Figure, Report, Section, Table, cohort_montage  # noqa: E402
from semantic_genesis.report.cli_reference import cli_reference_markdown  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def _png(path: Path) -> Path:
    plt.plot([0, 1], [1, 0])
    plt.savefig(path)
    plt.close()
    return path


def test_report_html_and_markdown(tmp_path: Path) -> None:
    img = _png(tmp_path / "fig.png")
    rep = Report("Demo", "lead <text>", [Section("Results", [
        "a & b", Table(["init", "AUC"], [["scratch", "0.71 ± 0.02"]]), Figure(img, "a curve")])])
    html_path, md_path = rep.write(tmp_path)
    html = html_path.read_text()
    assert '<img alt="a curve" src="data:image/png;base64,' in html
    assert "lead &lt;text&gt;" in html and "<p>a &amp; b</p>" in html
    assert '<td style="text-align: right;">0.71 ± 0.02</td>' in html  # numbers align right
    md = md_path.read_text()
    assert "| scratch | 0.71 ± 0.02 |" in md and "](fig.png)" in md


def test_report_keeps_the_order_of_blocks_and_renders_markdown(tmp_path: Path) -> None:
    """Markdown goes through a real renderer: images, tables, code and quotes become HTML, and
    each section's blocks come out in the order given (a table, then the text reading it)."""
    sub = tmp_path / "benchmark"
    sub.mkdir()
    _png(sub / "results.png")
    text = ("> a note\n\n| init | AUC |\n|---|---|\n| `sg` | 0.8 |\n\n"
            "The text that reads the table.\n\n![results](benchmark/results.png)")
    rep = Report("R", "", [Section("Task one", [text, Table(["a"], [["x | y"]]), "After."])])
    html = rep.html(tmp_path)
    assert "![" not in html and "|---|" not in html  # no Markdown left as text
    assert '<img alt="results" src="data:image/png;base64,' in html
    assert "<blockquote>" in html and "<code>sg</code>" in html and "<td>x | y</td>" in html
    order = [html.index(s) for s in ("<h2>Task one</h2>", "a note", "<table>",
                                     "The text that reads the table.", "<img", "<td>x | y</td>",
                                     "<p>After.</p>")]
    assert order == sorted(order)


def test_raw_html_in_the_text_is_shown_as_text(tmp_path: Path) -> None:
    html = Report("T", "", [Section("S", ["<script>alert(1)</script> task"])]).html(tmp_path)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_missing_figure_is_named(tmp_path: Path) -> None:
    html = Report("T", "", [Section("S", [Figure(tmp_path / "gone.png", "lost")])]).html(tmp_path)
    assert "figure missing" in html and "gone.png" in html and "<img" not in html


def test_only_pictures_are_embedded(tmp_path: Path) -> None:
    """An image link in the text to another file does not copy that file into the page."""
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    html = Report("T", "", [Section("S", [f"![x]({secret})", "![y](secret.txt)"])]).html(tmp_path)
    assert "<img" not in html and html.count("figure missing") == 2
    assert "cGFzc3dvcmQ" not in html  # base64 of "password"


def test_cohort_montage(tmp_path: Path, synthetic_cohort: Path) -> None:
    out = cohort_montage(synthetic_cohort, tmp_path / "cohort.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reference_is_current() -> None:
    committed = (REPO / "docs" / "cli.md").read_text()
    assert committed == cli_reference_markdown(), "run `make docs` to regenerate docs/cli.md"


def test_figure_names_and_captions_with_markdown_characters(tmp_path: Path) -> None:
    folder = tmp_path / "é dir"
    folder.mkdir()
    img = _png(folder / "a (1).png")
    html = Report("T", "", [Section("S", [Figure(img, "cap [x] *y* a_b")])]).html(tmp_path)
    assert html.count('src="data:image/png;base64,') == 1
    assert '<img alt="cap [x] *y* a_b"' in html and "<em>cap [x] *y* a_b</em>" in html
