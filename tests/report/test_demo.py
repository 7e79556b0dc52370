"""`semgen demo --quick` runs the whole chain on CPU and writes a report with its pictures."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from semantic_genesis.benchmark.results import results_markdown
from semantic_genesis.benchmark.statistics import CellSummary, label_efficiency
from semantic_genesis.cli import main
from semantic_genesis.finetune.plots import plot_results
from semantic_genesis.report import Report, Table
from semantic_genesis.report.demo import _results_sections, _stages_section
from semantic_genesis.utils.outdir import MARKER

PNG = b"\x89PNG\r\n\x1a\n"


def _benchmark_folder(out: Path) -> None:
    """benchmark/results.md and results.png as the benchmark writes them, for two tasks."""
    cells = [CellSummary(task, init, f, metric, 2, m * f, 0.05, [m * f] * 2, 3.0)
             for task, metric in (("ncc", "auc"), ("ncs", "iou"))
             for init, m in (("scratch", 0.6), ("mg", 0.7), ("sg", 0.8)) for f in (0.5, 1.0)]
    config = SimpleNamespace(inits={"scratch": "", "mg": "", "sg": ""}, seeds=[0, 1],
                             label_fractions=[0.5, 1.0], scratch="scratch", models_genesis="mg")
    bench = out / "benchmark"
    bench.mkdir(parents=True)
    (bench / "results.md").write_text(
        results_markdown(cells, label_efficiency(cells), config, {"ncs": "a note"}))
    plot_results(cells, bench / "results.png", ["scratch", "mg", "sg"])


def test_results_render_in_order_with_the_plot(tmp_path: Path) -> None:
    """Each task: heading, its note, its table, then the sentence that reads the next table;
    the plot is an image (embedded), not the text `![results](results.png)`."""
    _benchmark_folder(tmp_path)
    sections = _results_sections(tmp_path, [])
    assert [s.title for s in sections] == ["Target tasks", "Target task: ncc (test AUC)",
                                           "Target task: ncs (test IoU)"]
    html = Report("demo", "", sections).html(tmp_path)
    md = Report("demo", "", sections).markdown(tmp_path)
    assert "![" not in html and "](benchmark/results.png)" in md
    assert html.count('src="data:image/png;base64,') == 1
    ncc, ncs = html.split("<h2>Target task: ")[1:]
    for part in (ncc, ncs):
        table = part.index("<table>")
        reading = part.index("Smallest label fraction")
        assert table < reading < part.index("<table>", table + 1)
    assert ncs.index("a note") < ncs.index("<table>")
    assert "<blockquote>" in html and "<code>scratch</code>" in html


def test_stage_table_follows_the_chain(tmp_path: Path) -> None:
    times = {"benchmark": 3.0, "discover": 2.0, "phantoms-pretrain": 1.0, "pretrain-sg": 4.0,
             "prepare": 0.5, "pretrain-mg": 4.5, "phantoms-target": 1.5}
    (tmp_path / "experiment.json").write_text(json.dumps({"stage_seconds": times}))
    (table,) = [b for b in _stages_section(tmp_path).blocks if isinstance(b, Table)]
    assert [row[0] for row in table.rows] == [
        "phantoms-pretrain", "phantoms-target", "prepare", "discover", "pretrain-mg",
        "pretrain-sg", "benchmark", "total"]
    assert table.rows[-1][1] == "16.5"


@pytest.mark.parametrize("name", ["thesis.tex", "experiment.yaml"])
def test_demo_refuses_a_folder_of_someone_else(tmp_path: Path, name: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / name).write_text("mine")
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 2
    assert name in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert (tmp_path / name).read_text() == "mine"


def test_demo_refuses_a_stage_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / MARKER).write_text(json.dumps({"kind": "prepare"}))
    assert main(["demo", "--quick", "--out", str(tmp_path)]) == 2
    assert "made by `semgen prepare`" in capsys.readouterr().err


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_demo_writes_every_stage(quick_demo: Path) -> None:
    assert json.loads((quick_demo / MARKER).read_text())["kind"] == "demo"
    for rel in ("cohort/cohort.csv", "patterns/patterns.csv", "patterns/patterns.png",
                "pretrain/sg/checkpoints/best.pt", "pretrain/mg/checkpoints/best.pt",
                "benchmark/results.csv", "benchmark/results.md", "benchmark/results.png",
                "report.html", "report.md", "demo.json"):
        assert (quick_demo / rel).is_file(), rel


def test_report_embeds_real_images_and_results(quick_demo: Path) -> None:
    html = (quick_demo / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    # cohort, patterns, 2 x (curves + restorations), results
    assert len(images) >= 6
    assert all(base64.b64decode(b)[:8] == PNG for b in images)
    assert "figure missing" not in html
    for word in ("Cohort", "Self-discovery", "Pre-training", "Target tasks", "scratch", "sg",
                 "mg", "Stages and hardware"):
        assert word in html
    md = (quick_demo / "report.md").read_text()
    assert "| phantom-ncc" in md or "phantom-ncc" in md
    assert "](benchmark/results.png)" in md


def test_rerun_resumes_without_redoing(quick_demo: Path) -> None:
    before = (quick_demo / "pretrain/sg/checkpoints/best.pt").stat().st_mtime_ns
    assert main(["demo", "--quick", "--out", str(quick_demo)]) == 0
    assert (quick_demo / "pretrain/sg/checkpoints/best.pt").stat().st_mtime_ns == before


@pytest.mark.slow
def test_report_screenshot_in_headless_chromium(quick_demo: Path, tmp_path: Path) -> None:
    """Open the report in headless Chromium and keep a screenshot to look at."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "install Debian's chromium (make test-slow does)"
    shot = quick_demo / "report-screenshot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,3000",
                    f"--screenshot={shot}", (quick_demo / "report.html").as_uri()],
                   check=True, capture_output=True, timeout=120)
    data = shot.read_bytes()
    assert data[:8] == PNG and len(data) > 50_000  # a rendered page, not a blank one
    keep = Path(__file__).resolve().parents[1] / "demo-output-quick"
    keep.mkdir(exist_ok=True)
    shutil.copy(shot, keep / "report-screenshot.png")
