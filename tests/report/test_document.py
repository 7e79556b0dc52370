"""The report renders to HTML (self-contained) and Markdown; the CLI reference cannot drift."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from semantic_genesis.report import Report, Section, Table, cohort_montage  # noqa: E402
from semantic_genesis.report.cli_reference import cli_reference_markdown  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_report_html_and_markdown(tmp_path: Path) -> None:
    img = tmp_path / "fig.png"
    plt.plot([0, 1], [1, 0])
    plt.savefig(img)
    plt.close()
    rep = Report("Demo", "lead <text>", [Section(
        "Results", ["a & b"], [Table(["init", "AUC"], [["scratch", "0.71 ± 0.02"]])],
        [(img, "a curve")])])
    html_path, md_path = rep.write(tmp_path)
    html = html_path.read_text()
    assert "data:image/png;base64," in html and "lead &lt;text&gt;" in html
    assert '<td class="num">0.71 ± 0.02</td>' in html
    md = md_path.read_text()
    assert "| scratch | 0.71 ± 0.02 |" in md and "](fig.png)" in md


def test_cohort_montage(tmp_path: Path, synthetic_cohort: Path) -> None:
    out = cohort_montage(synthetic_cohort, tmp_path / "cohort.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reference_is_current() -> None:
    committed = (REPO / "docs" / "cli.md").read_text()
    assert committed == cli_reference_markdown(), "run `make docs` to regenerate docs/cli.md"
