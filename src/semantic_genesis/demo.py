"""`semgen demo`: the whole chain on built-in data, then a report a person can look at.

    phantoms -> prepare -> discover -> pretrain (Semantic Genesis, Models Genesis)
             -> fine-tune scratch vs MG vs SG on the phantom targets (+ the real CT sample)
             -> report.html / report.md

The chain itself is :func:`semantic_genesis.finetune.experiment.run_experiment` with the shipped
``configs/demo.yaml`` (about 12 minutes on 2 CPU cores, measured) or ``configs/demo-quick.yaml`` (a few
minutes; tiny settings, only to see every stage work). Every stage resumes, so a re-run after an
interruption continues, and a finished demo re-run only rebuilds the report.
"""

from __future__ import annotations

import copy
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semantic_genesis.report import Report, Section, Table, cohort_montage
from semantic_genesis.utils.atomic import write_json
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.progress import say
from semantic_genesis.utils.provenance import run_info

#: the real-CT target needs the pyradiomics sample download; the demo drops it when offline
REAL_CT_TASK = "lung-tumour"


@dataclass
class DemoResult:
    """Where the report is, and how long the demo took."""

    out_dir: Path
    report_html: Path
    report_md: Path
    seconds: float
    notes: list[str]


def _demo_config(quick: bool) -> Any:
    from semantic_genesis.finetune.experiment import load_experiment_config

    return load_experiment_config("demo-quick" if quick else "demo")


def _drop_real_ct_if_offline(config: Any, notes: list[str]) -> None:
    """Fetch the pyradiomics sample once; without it the real-CT task is left out (and said)."""
    tasks = config.benchmark.get("tasks", [])
    if not any(t.get("target") == REAL_CT_TASK for t in tasks):
        return
    from semantic_genesis.data.samples import fetch_samples

    try:
        fetch_samples()
    except SemgenError as exc:
        config.benchmark["tasks"] = [t for t in tasks if t.get("target") != REAL_CT_TASK]
        notes.append(f"The real-CT target was left out: {exc}")


def run_demo(out_dir: str | Path = "demo-output", quick: bool = False) -> DemoResult:
    """Run (or resume) the demo chain in ``out_dir`` and write ``report.html``/``report.md``."""
    from semantic_genesis.finetune.experiment import run_experiment

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    notes: list[str] = []
    config = copy.deepcopy(_demo_config(quick))
    _drop_real_ct_if_offline(config, notes)
    say(f"demo: running the chain in {out} ({'quick' if quick else 'full'} settings)")
    run_experiment(config, out)
    say("demo: writing the report")
    seconds = time.perf_counter() - t0
    report = build_report(out, quick=quick, notes=notes)
    html_path, md_path = report.write(out)
    write_json(out / "demo.json", {"quick": quick, "seconds": round(seconds, 1),
                                   "notes": notes, "run_info": run_info()})
    say(f"demo: done in {seconds / 60:.1f} min; open {html_path}")
    return DemoResult(out, html_path, md_path, seconds, notes)


# ---------------------------------------------------------------------------------------------
# the report


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _last_row(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows[-1] if rows else {}


def _fmt(value: Any, digits: int = 4) -> str:
    try:
        return f"{float(value):.{digits}g}"
    except (TypeError, ValueError):
        return str(value) if value not in (None, "") else "–"


def _stages_section(out: Path) -> Section:
    times = _read_json(out / "experiment.json").get("stage_seconds", {})
    rows = [[name, f"{sec:.1f}"] for name, sec in times.items()]
    rows.append(["total", f"{sum(times.values()):.1f}"])
    hw = run_info()["hardware"]
    device = hw.get("gpu") or f"{hw['cpu_count']} CPU cores ({hw['processor']})"
    return Section("Stages and hardware",
                   [f"Ran on {device}, {hw['memory_gib']} GiB memory, torch "
                    f"{run_info()['torch']}. Times are wall-clock seconds of the run that did "
                    "the stage (a resumed demo keeps the earlier times)."],
                   [Table(["stage", "seconds"], rows)])


def _cohort_section(out: Path) -> Section:
    from semantic_genesis.manifests import read_cohort

    records = read_cohort(out / "cohort")
    png = cohort_montage(out / "cohort", out / "report-cohort.png")
    n_val = sum(r.split == "val" for r in records)
    shape = records[0].shape if records else ()
    spacing = records[0].spacing if records else ()
    return Section("Cohort",
                   [f"{len(records)} synthetic chest CTs ({n_val} for validation), e.g. "
                    f"{shape} voxels at {spacing} mm; intensities clipped to [-1000, 1000] HU "
                    "and scaled to [0, 1]."],
                   figures=[(png, "Central axial slice of every prepared volume")])


def _patterns_section(out: Path) -> Section:
    info = _read_json(out / "patterns" / "discover.json")
    text = [f"{info.get('n_classes', '?')} anatomical patterns discovered with patch "
            f"{info.get('patch', '?')}. Each row of the montage is one pseudo-class: the crop "
            "in the reference patient and in its nearest neighbours, at the same voxel "
            "coordinate."]
    return Section("Self-discovery", text,
                   figures=[(out / "patterns" / "patterns.png", "Discovered classes")])


def _pretrain_section(out: Path) -> Section:
    runs = sorted(p for p in (out / "pretrain").glob("*") if p.is_dir())
    rows, figures = [], []
    for run in runs:
        last = _last_row(run / "metrics.csv")
        summary = _read_json(run / "run.json").get("result", {})
        rows.append([run.name, summary.get("method", run.name), last.get("epoch", "–"),
                     _fmt(last.get("val_loss")), _fmt(last.get("val_mse")),
                     _fmt(last.get("val_acc"), 3)])
        figures += [(run / "curves.png", f"{run.name}: training curves"),
                    (run / "restorations.png", f"{run.name}: input, perturbed, restored, target")]
    return Section("Pre-training",
                   ["Semantic Genesis (self-classification + self-restoration) and Models "
                    "Genesis (self-restoration only) on the discovered patterns."],
                   [Table(["run", "method", "epochs", "val loss", "val MSE", "val class acc"],
                          rows)], figures)


def _results_sections(out: Path, notes: list[str]) -> list[Section]:
    """An overview with results.png, then one section per task of results.md."""
    bench = out / "benchmark"
    md = (bench / "results.md").read_text() if (bench / "results.md").is_file() else ""
    intro = Section("Target tasks",
                    ["Fine-tuning from scratch, from Models Genesis (mg) and from Semantic "
                     "Genesis (sg). With demo-sized data and training the differences are small "
                     "and noisy: this shows the harness at work, not the paper's result. Segmentation "
                     "scores near 0 mean that the few demo epochs did not converge; run "
                     "`semgen benchmark` with the recipe settings for real numbers.", *notes],
                    figures=[(bench / "results.png", "Scores per initialisation")])
    sections = [intro]
    for heading, lines in _markdown_blocks(md):
        target = intro if heading is None else Section(f"Target task: {heading}")
        if target is not intro:
            sections.append(target)
        _fill(target, lines)
    return sections


def _markdown_blocks(md: str) -> list[tuple[str | None, list[str]]]:
    """Split results.md at its ``## `` headings (the text before the first one has None)."""
    blocks: list[tuple[str | None, list[str]]] = [(None, [])]
    for line in md.splitlines():
        if line.startswith("## "):
            blocks.append((line[3:].strip(), []))
        elif not line.startswith("# "):
            blocks[-1][1].append(line)
    return blocks


def _fill(section: Section, lines: list[str]) -> None:
    """Paragraphs and pipe tables of a Markdown block into ``section``."""
    table: list[str] = []
    for line in [*lines, ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if len(table) >= 2:
            cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in table]
            section.tables.append(Table(cells[0], cells[2:]))
        table = []
        text = line.lstrip("> ").strip()
        if text:
            section.paragraphs.append(text.replace("`", ""))


def build_report(out_dir: str | Path, quick: bool = False,
                 notes: list[str] | None = None) -> Report:
    """Assemble the report of a finished demo folder."""
    out = Path(out_dir)
    mode = "quick settings (tiny, to see every stage work)" if quick else "full demo settings"
    lead = ("Semantic Genesis (Haghighi et al., MICCAI 2020) end to end on built-in data, "
            f"{mode}. Re-run `semgen demo` to resume or rebuild this report.")
    sections = [_stages_section(out), _cohort_section(out), _patterns_section(out),
                _pretrain_section(out), *_results_sections(out, notes or [])]
    return Report("semantic-genesis demo", lead, sections)
