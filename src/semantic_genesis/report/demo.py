"""`semgen demo`: the whole chain on built-in data, then a report a person can look at.

    phantoms -> prepare -> discover -> pretrain (Semantic Genesis, Models Genesis)
             -> fine-tune scratch vs MG vs SG on the phantom targets (+ the real CT sample)
             -> report.html / report.md

The chain itself is :func:`semantic_genesis.benchmark.experiment.run_experiment` with the
shipped ``configs/demo.yaml`` (about 4 minutes on 2 idle CPU cores, 3.6 measured) or
``configs/demo-quick.yaml`` (a few minutes; tiny settings, only to see every stage work). Every
stage resumes, so a re-run after an interruption continues, and a finished demo re-run only
rebuilds the report.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from semantic_genesis.report import Figure, Report, Section, Table, cohort_montage
from semantic_genesis.report.document import Block
from semantic_genesis.utils.atomic import write_json
from semantic_genesis.utils.errors import SemgenError
from semantic_genesis.utils.outdir import claim_output
from semantic_genesis.utils.progress import say
from semantic_genesis.utils.provenance import run_info

#: the real-CT target needs the pyradiomics sample download; the demo drops it when offline
REAL_CT_TASK = "lung-tumour"
#: the file that marks a demo folder written before output folders had a marker
DEMO_LEGACY = ("report.html",)


@dataclass
class DemoResult:
    """Where the report is, and how long the demo took."""

    out_dir: Path
    report_html: Path
    report_md: Path
    seconds: float
    notes: list[str]


def _demo_config(quick: bool) -> Any:
    from semantic_genesis.benchmark.experiment import load_experiment_config

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
    """Run (or resume) the demo chain in ``out_dir`` and write ``report.html``/``report.md``.

    The folder is claimed for the demo (:func:`~semantic_genesis.utils.outdir.claim_output`):
    new, empty, or a demo folder (``report.html`` marks one of an earlier release); each stage
    claims its own subfolder.
    """
    from semantic_genesis.benchmark.experiment import run_experiment

    with claim_output(out_dir, "demo", legacy=DEMO_LEGACY, settings={"quick": quick}) as out:
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


#: the stages in the order the chain runs them (a resumed run records them by name)
CHAIN = ("phantoms-pretrain", "phantoms-target", "prepare", "discover", "pretrain", "benchmark")


def _chain_position(stage: str) -> tuple[int, str]:
    """Where a stage (``pretrain-<method>`` by its prefix) comes in :data:`CHAIN`."""
    base = "pretrain" if stage.startswith("pretrain-") else stage
    return (CHAIN.index(base) if base in CHAIN else len(CHAIN), stage)


def _stages_section(out: Path) -> Section:
    times = _read_json(out / "experiment.json").get("stage_seconds", {})
    rows = [[name, f"{times[name]:.1f}"] for name in sorted(times, key=_chain_position)]
    rows.append(["total", f"{sum(times.values()):.1f}"])
    info = run_info()
    hw = info["hardware"]
    device = hw.get("gpu") or f"{hw['cpu_count']} CPU cores ({hw['processor']})"
    kernels = info["native_kernels"]["summary"]
    return Section("Stages and hardware", [
        f"Ran on {device}, {hw['memory_gib']} GiB memory, torch {info['torch']}; "
        f"perturbations on CPU: {kernels}. Times are wall-clock seconds of the run that did "
        "the stage (a resumed demo keeps the earlier times).",
        Table(["stage", "seconds"], rows)])


def _cohort_section(out: Path) -> Section:
    from semantic_genesis.io.manifests import read_cohort

    records = read_cohort(out / "cohort")
    png = cohort_montage(out / "cohort", out / "report-cohort.png")
    n_val = sum(r.split == "val" for r in records)
    shape = records[0].shape if records else ()
    spacing = records[0].spacing if records else ()
    return Section("Cohort", [
        f"{len(records)} synthetic chest CTs ({n_val} for validation), e.g. {shape} voxels at "
        f"{spacing} mm; intensities clipped to [-1000, 1000] HU and scaled to [0, 1].",
        Figure(png, "Central axial slice of every prepared volume")])


def _patterns_section(out: Path) -> Section:
    info = _read_json(out / "patterns" / "discover.json")
    return Section("Self-discovery", [
        f"{info.get('n_classes', '?')} anatomical patterns discovered with patch "
        f"{info.get('patch', '?')}. Each row of the montage is one pseudo-class: the crop in "
        "the reference patient and in its nearest neighbours, at the same voxel coordinate.",
        Figure(out / "patterns" / "patterns.png", "Discovered classes")])


def _pretrain_section(out: Path) -> Section:
    runs = sorted(p for p in (out / "pretrain").glob("*") if p.is_dir())
    rows, figures = [], []
    for run in runs:
        last = _last_row(run / "metrics.csv")
        summary = _read_json(run / "run.json").get("result", {})
        rows.append([run.name, summary.get("method", run.name), last.get("epoch", "–"),
                     _fmt(last.get("val_loss")), _fmt(last.get("val_mse")),
                     _fmt(last.get("val_acc"), 3), _fmt(last.get("probe_auc"), 3)])
        figures += [Figure(run / "curves.png", f"{run.name}: training curves"),
                    Figure(run / "restorations.png",
                           f"{run.name}: perturbed input, restoration and target")]
    return Section("Pre-training", [
        "Semantic Genesis (self-classification + self-restoration) and Models Genesis "
        "(self-restoration only) on the discovered patterns.",
        Table(["run", "method", "epochs", "val loss", "val MSE", "val class acc",
               "online probe AUC"], rows),
        *figures])


#: a Markdown line that is only an image: ![alt](path)
_IMAGE_LINE = re.compile(r"^!\[([^\]]*)\]\(([^)\s]+)\)\s*$")


def _results_sections(out: Path, notes: list[str]) -> list[Section]:
    """An overview (what the scores mean, the plot), then one section per task of results.md,
    its Markdown kept as written: the table first, then the text that reads the next one."""
    bench = out / "benchmark"
    results = bench / "results.md"
    md = results.read_text(encoding="utf-8") if results.is_file() else ""
    preamble, tasks, images = _split_results(md)
    intro: list[Block] = [
        "Fine-tuning from scratch, from Models Genesis (mg) and from Semantic Genesis (sg). "
        "With demo-sized data and training the differences are small and noisy: this shows the "
        "harness at work, not the paper's result. Segmentation scores near 0 mean that the few "
        "demo epochs did not converge; run `semgen benchmark` with the recipe settings for real "
        "numbers.", *notes]
    if not md:
        intro.append(f"No results: {results} is missing (the benchmark did not finish).")
    intro += [preamble] if preamble else []
    intro += [Figure(bench / unquote(src), "Scores per initialisation") for src in images]
    sections = [Section("Target tasks", intro)]
    probes = _probe_section(out)
    sections += [probes] if probes is not None else []
    sections += [Section(f"Target task: {title}", [text]) for title, text in tasks]
    return sections


def _probe_section(out: Path) -> Section | None:
    """The frozen-feature probes (method.md §7.3) of the benchmark's summary.json in one table:
    per task, probe and initialisation the mean ± std over the probe seeds, and the paired
    difference against scratch with its 95 % interval and paired t-test p. None when the
    benchmark ran no probe."""
    summary = _read_json(out / "benchmark" / "summary.json")
    cells = [c for c in summary.get("cells", []) if c.get("protocol", "finetune") != "finetune"]
    if not cells:
        return None
    paired = {(c["task"], c["protocol"], c["fraction"], c["init"]): c
              for c in summary.get("paired", []) if c.get("baseline") == "scratch"}
    rows = []
    for c in cells:
        p = paired.get((c["task"], c["protocol"], c["fraction"], c["init"]), {})
        ci = p.get("diff_ci") or [None, None]
        diff = ("–" if p.get("mean_diff") is None else
                f"{p['mean_diff']:+.3f} [{_fmt(ci[0], 2)}, {_fmt(ci[1], 2)}]")
        rows.append([c["task"], c["protocol"].removeprefix("probe-"), c["init"],
                     f"{100 * c['fraction']:.3g} %", str(c["n"]),
                     f"{_fmt(c['mean'], 3)} ± {_fmt(c['std'], 2)}", diff, _fmt(p.get("p"), 2)])
    return Section("Frozen-feature probes", [
        "What each encoder knows before any fine-tuning: its frozen features (every encoder "
        "level pooled for classification, every level at sampled voxels for segmentation) fed to a "
        "logistic regression and a 5-nearest-neighbour vote (AUC) or a voxel head (Dice), over "
        "seeded per-patient splits shared by every initialisation, so differences are paired "
        "by seed. Scratch is a random encoder of the same shape: an encoder that probes below "
        "it has lost information the random one keeps.",
        Table(["task", "probe", "init", "labels", "seeds", "mean ± std",
               "vs scratch [95 % CI]", "paired p"], rows)])


def _split_results(md: str) -> tuple[str, list[tuple[str, str]], list[str]]:
    """results.md as (text before the first task, [(task heading, its Markdown)], image
    paths); its ``# `` title is dropped (the report has its own), images are taken out to be
    shown once in the overview."""
    preamble: list[str] = []
    tasks: list[tuple[str, list[str]]] = []
    images: list[str] = []
    for line in md.splitlines():
        image = _IMAGE_LINE.match(line.strip())
        if image:
            images.append(image.group(2))
        elif line.startswith("## "):
            tasks.append((line[3:].strip(), []))
        elif not line.startswith("# "):
            (tasks[-1][1] if tasks else preamble).append(line)
    return ("\n".join(preamble).strip(), [(t, "\n".join(body).strip()) for t, body in tasks],
            images)


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
