"""`semgen demo --quick` runs the whole chain on CPU and writes a report with its pictures."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from semantic_genesis.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    return out


def test_quick_demo_writes_every_stage(quick_demo: Path) -> None:
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
