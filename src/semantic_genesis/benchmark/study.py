"""The study's two overview tables (docs/results.md), from a benchmark's result rows.

- **Every initialisation against scratch**: one column per (task, protocol), each cell the
  mean ± sample std over seeds, marked ▲ / ▼ where the paired t-test against ``baseline`` over
  the shared seeds gives p < 0.05 (better / worse).
- **What semantics adds**: for every init ``X`` that has a partner ``X-sem`` (``X`` plus
  self-classification of the discovered patterns), and every ``X-no-sem`` that has a partner
  ``X`` (Semantic Genesis ``sg`` and ``sg-no-sem``), the paired difference (with semantics −
  without) with its bootstrap 95 % interval and paired-t p (:func:`.statistics.paired_stats`).

Only the largest label fraction of each (task, protocol) is used. With many cells, about one
test in twenty is "significant" by chance at p < 0.05: the tables say how many were made.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from semantic_genesis.benchmark.statistics import paired_stats

SEM_SUFFIX = "-sem"
NO_SEM_SUFFIX = "-no-sem"


def _scores(rows: Iterable[dict[str, Any]]) -> tuple[dict, list[str], list[tuple[str, str]]]:
    """``{(task, protocol): {init: {seed: score}}}`` at each column's largest label fraction,
    the inits in first-seen order and the columns in first-seen order."""
    rows = list(rows)
    top: dict[tuple[str, str], float] = {}
    for r in rows:
        key = (r["task"], r.get("protocol") or "finetune")
        top[key] = max(top.get(key, 0.0), float(r["label_fraction"]))
    table: dict[tuple[str, str], dict[str, dict[int, float]]] = defaultdict(dict)
    inits: list[str] = []
    for r in rows:
        key = (r["task"], r.get("protocol") or "finetune")
        if float(r["label_fraction"]) != top[key]:
            continue
        score = float(r["score"]) if r.get("score") not in (None, "") else math.nan
        table[key].setdefault(r["init"], {})[int(r["seed"])] = score
        if r["init"] not in inits:
            inits.append(r["init"])
    return table, inits, list(top)


def _pair(a: dict[int, float], b: dict[int, float]) -> dict[str, Any]:
    seeds = sorted(set(a) & set(b))
    return paired_stats([a[s] for s in seeds], [b[s] for s in seeds])


def _mean_std(values: Iterable[float]) -> str:
    v = [x for x in values if not math.isnan(x)]
    if not v:
        return "–"
    return f"{sum(v) / len(v):.3f} ± {_std(v):.3f}"


def _column(key: tuple[str, str]) -> str:
    task, protocol = key
    return f"{task} ({protocol})"


def overview_table(rows: Iterable[dict[str, Any]], baseline: str = "scratch") -> str:
    """Markdown: every init (rows) x every (task, protocol) (columns), against ``baseline``."""
    table, inits, columns = _scores(rows)
    lines = ["| init | " + " | ".join(_column(c) for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    tests = 0
    for init in inits:
        cells = []
        for col in columns:
            mine = table[col].get(init)
            if mine is None:
                cells.append("")
                continue
            text = _mean_std(mine.values())
            base = table[col].get(baseline)
            if init != baseline and base:
                stats = _pair(mine, base)
                tests += not math.isnan(stats["p"])
                if stats["p"] < 0.05:
                    text += " ▲" if stats["mean_diff"] > 0 else " ▼"
            cells.append(text)
        lines.append(f"| {init} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"▲ / ▼: paired t-test against `{baseline}` over shared seeds, p < 0.05 "
                 f"({tests} tests; about {tests / 20:.1f} expected by chance).")
    return "\n".join(lines)


def semantic_pairs(inits: list[str]) -> list[tuple[str, str]]:
    """``(without, with semantics)`` pairs among ``inits``: ``X`` / ``X-sem`` and
    ``X-no-sem`` / ``X``."""
    pairs = []
    for i in inits:
        if i.endswith(NO_SEM_SUFFIX) and i[: -len(NO_SEM_SUFFIX)] in inits:
            pairs.append((i, i[: -len(NO_SEM_SUFFIX)]))
        elif i.endswith(SEM_SUFFIX) and not i.endswith(NO_SEM_SUFFIX) \
                and i[: -len(SEM_SUFFIX)] in inits:
            pairs.append((i[: -len(SEM_SUFFIX)], i))
    return pairs


def semantics_table(rows: Iterable[dict[str, Any]]) -> str:
    """Markdown: with semantics − without, for every :func:`semantic_pairs` pair, per (task,
    protocol)."""
    table, inits, columns = _scores(rows)
    pairs = semantic_pairs(inits)
    lines = ["| method | " + " | ".join(_column(c) for c in columns) + " |",
             "|---|" + "---|" * len(columns)]
    tests = significant = 0
    for base, sem in pairs:
        cells = []
        for col in columns:
            a, b = table[col].get(sem), table[col].get(base)
            if not a or not b:
                cells.append("")
                continue
            s = _pair(a, b)
            if math.isnan(s["mean_diff"]):
                cells.append("–")
                continue
            lo, hi = s["diff_ci"]
            p = "–" if math.isnan(s["p"]) else f"{s['p']:.2g}"
            tests += not math.isnan(s["p"])
            significant += s["p"] < 0.05
            cells.append(f"{s['mean_diff']:+.3f} [{lo:+.3f}, {hi:+.3f}] p {p}")
        lines.append(f"| {base} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Each cell: mean paired difference (with semantics − without) [bootstrap 95 % "
                 f"interval], paired t-test p; {significant} of {tests} tests at p < 0.05, "
                 f"about {tests / 20:.1f} expected by chance.")
    return "\n".join(lines)


def study_figure(rows: Iterable[dict[str, Any]], path: Any, baseline: str = "scratch") -> None:
    """``study.png``: one panel per (task, protocol); one line per method, its score without
    semantics (open circle) and with (filled), mean ± std over seeds; the baseline's mean as a
    dashed line. Inits without a partner (scratch, self-classification) get one marker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from semantic_genesis.utils.atomic import atomic_path

    table, inits, columns = _scores(rows)
    pairs = semantic_pairs(inits)
    paired = {name for pair in pairs for name in pair}
    lines = [(i, None, i) for i in inits if i not in paired]
    lines += [(a, b, b if a.endswith(NO_SEM_SUFFIX) else a) for a, b in pairs]
    ncols = min(4, len(columns))
    nrows = math.ceil(len(columns) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, nrows * (0.3 * len(lines) + 1.2)),
                             sharey=True, squeeze=False)
    for ax in axes.flat[len(columns):]:
        ax.set_visible(False)
    for ax, col in zip(axes.flat, columns, strict=False):  # the rest are hidden
        for y, (without, with_sem, _) in enumerate(lines):
            for name, face in ((without, "white"), (with_sem, "C0")):
                scores = [v for v in (table[col].get(name) or {}).values() if not math.isnan(v)]
                if not scores:
                    continue
                mean = sum(scores) / len(scores)
                std = _std(scores)
                ax.errorbar(mean, y, xerr=std, fmt="o", color="C0", mfc=face, capsize=2, ms=5)
        base = [v for v in (table[col].get(baseline) or {}).values() if not math.isnan(v)]
        if base:
            ax.axvline(sum(base) / len(base), color="grey", ls="--", lw=1)
        ax.set_title(_column(col), fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(lines)), [label for *_, label in lines])
    axes[0][0].invert_yaxis()  # shared: every row of panels
    fig.suptitle("open: without semantics, filled: with semantics (mean ± std over seeds); "
                 f"dashed: {baseline}", fontsize=9)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((x - mean) ** 2 for x in values) / (len(values) - 1))
