"""The demo report's probe table (method.md §7.3) from the benchmark's summary.json."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from semantic_genesis.benchmark.results import _finite
from semantic_genesis.benchmark.statistics import paired_comparisons, summarise
from semantic_genesis.report.demo import _probe_section, _results_sections
from semantic_genesis.utils.atomic import write_json


def _rows(init: str, protocol: str, scores: list[float]) -> list[dict]:
    return [{"task": "ncc", "protocol": protocol, "init": init, "label_fraction": 1.0,
             "seed": i, "metric": "auc", "score": s} for i, s in enumerate(scores)]


def test_probe_table_shows_each_probe_with_its_paired_difference(tmp_path: Path) -> None:
    rows = (_rows("scratch", "probe-logreg", [0.70, 0.72, 0.71])
            + _rows("sg", "probe-logreg", [0.60, 0.63, 0.62])
            + _rows("scratch", "finetune", [0.8, 0.7, 0.75]))
    cells = summarise(rows)
    paired = paired_comparisons(cells, ["scratch"])
    write_json(tmp_path / "benchmark" / "summary.json", _finite({
        "cells": [dataclasses.asdict(c) for c in cells],
        "paired": [dataclasses.asdict(c) for c in paired]}))
    section = _probe_section(tmp_path)
    assert section is not None and section.title == "Frozen-feature probes"
    table = section.blocks[-1]
    assert [r[:3] for r in table.rows] == [["ncc", "logreg", "scratch"], ["ncc", "logreg", "sg"]]
    sg = table.rows[1]
    assert sg[5].startswith("0.617 ±") and sg[6].startswith("-0.093 [")
    assert "Frozen-feature probes" in [s.title for s in _results_sections(tmp_path, [])]
    # a benchmark without probes: no section
    write_json(tmp_path / "benchmark" / "summary.json", _finite({
        "cells": [dataclasses.asdict(c) for c in summarise(rows[-3:])]}))
    assert _probe_section(tmp_path) is None
