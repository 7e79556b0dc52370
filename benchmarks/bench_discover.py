"""Self-discovery against the reference, timed in the same run (method.md §14).

Figures (JSON with ``--json``):

1. ``air_test``: seconds per trial of the reference's air test (a plain-Python port of its
   4-deep loop, timed on ``--loop-trials`` trials) and of ours (``cube_scores`` on 200 random
   corners of a memory-mapped volume, reading the region from disk included), and the ratio.
2. ``crop_multires``: seconds per training instance to cut the base cube and the two
   multi-resolution cubes (side U[50, 79], jitter U[-10, 9], resized to 64 x 64 x 32): the
   reference loads the whole volume (``np.load``) and resizes with scikit-image per instance;
   ours is ``PatternDataset`` on memory-mapped volumes (three items per instance).
3. ``memory``: the peak RSS that ``discover`` adds (features from a file, so it measures the
   discovery itself, not auto-encoder training) in a fresh process, against the budget
   "twice the largest volume plus the features".

The cohort is ``--n`` built-in phantoms at their default size (233 x 233 x 150, float16) unless
``--cohort`` names a prepared one; ``--spacing 0.68 0.68 1.0`` resamples them to LUNA16-sized
514 x 514 x 300 volumes, where the reference's whole-volume loads cost what they cost on real
data. Run: ``python benchmarks/bench_discover.py --json``.
Threads are left at their defaults; the machine's load moves absolute times, not the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("SEMGEN_QUIET", "1")

from semantic_genesis.discovery.coordinates import (  # noqa: E402
    CoordinateRules,
    corner_bounds,
    cube_scores,
    draw_corners,
)
from semantic_genesis.io.manifests import open_volume, read_cohort  # noqa: E402

# the plain-loop port of the reference air test is test code (tests/discovery/reference.py):
# import it from the repository this script lives in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.discovery.reference import reference_air_score  # noqa: E402


def make_cohort(root: Path, n: int, spacing: tuple[float, float, float] | None) -> Path:
    """``n`` default-size phantoms, prepared, optionally resampled to ``spacing`` (e.g.
    0.68 0.68 1.0 gives LUNA16-like 514 x 514 x 300 volumes)."""
    from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
    from semantic_genesis.prepare.cohort import PrepareConfig, prepare

    generate_phantoms(root / "raw", PhantomConfig(n=n, seed=0))
    prepare(
        [root / "raw" / "images"],
        root / "cohort",
        PrepareConfig(modality="ct", val_fraction=0.25, spacing=spacing),
    )
    return root / "cohort"


def bench_air_test(cohort: Path, loop_trials: int) -> dict:
    record = max(read_cohort(cohort), key=lambda r: np.prod(r.shape))
    vol = open_volume(cohort, record)
    rules = CoordinateRules()
    lo, hi = corner_bounds(vol.shape, rules)
    corners = draw_corners(np.random.default_rng(0), lo, hi, rules.trials)
    t = time.perf_counter()
    slow = [
        reference_air_score(np.asarray(vol[x : x + 64, y : y + 64, z : z + 35]), (64, 64, 32))
        for x, y, z in corners[:loop_trials]
    ]
    loop_s = (time.perf_counter() - t) / loop_trials
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        fast = cube_scores(vol, corners, rules)
        best = min(best, time.perf_counter() - t)
    assert np.array_equal(fast[:loop_trials], slow), "vectorised and loop scores differ"
    vec_s = best / len(corners)
    return {
        "volume": list(vol.shape),
        "patch": list(rules.patch),
        "trials": len(corners),
        "loop_s_per_trial": loop_s,
        "loop_trials_timed": loop_trials,
        "vectorised_s_per_trial": vec_s,
        "speedup": loop_s / vec_s,
        "accepted_fraction": float((fast <= rules.max_score).mean()),
    }


def discover_for_bench(cohort: Path, out: Path, max_tissue: float) -> dict:
    """Discover with random features from a file (the patterns, not their quality, matter)."""
    from semantic_genesis.discovery import DiscoverConfig, discover

    ids = sorted(r.id for r in read_cohort(cohort))
    feats = out.parent / "bench-features.npz"
    np.savez(
        feats,
        ids=np.array(ids),
        features=np.random.default_rng(0).normal(size=(len(ids), 512)).astype(np.float32),
    )
    config = DiscoverConfig(
        n_classes=len(ids), features=str(feats), device="cpu", max_tissue=max_tissue
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small cohort: K and C are clipped
        result = discover(cohort, out, config)
    return {
        "n_classes": result.n_classes,
        "n_patterns": result.n_patterns,
        "timings": result.timings,
    }


def reference_instance(path: Path, corner, rng: np.random.Generator) -> list[np.ndarray]:
    """The reference's per-instance work (method.md §2.5): whole-volume load, base crop, two
    multi-resolution crops resized with scikit-image."""
    from skimage.transform import resize

    im = np.load(path)
    x, y, z = corner
    cubes = [im[x : x + 64, y : y + 64, z : z + 32]]
    for _ in range(2):
        s = rng.integers(50, 80)
        dx, dy = rng.integers(-10, 10, size=2)
        crop = im[x + dx : x + dx + s, y + dy : y + dy + s, z : z + 32]
        cubes.append(resize(crop, (64, 64, 32), preserve_range=True))
    return cubes


def bench_crop(cohort: Path, patterns: Path, n_instances: int, rounds: int = 3) -> dict:
    """Both single-threaded (ours with one torch thread, as in a DataLoader worker); the best
    of ``rounds`` rounds over ``n_instances`` instances (the rows are cycled if fewer)."""
    import torch

    from semantic_genesis.io.manifests import read_patterns
    from semantic_genesis.pretrain.dataset import PatternDataset

    records = {r.id: r for r in read_cohort(cohort)}
    rows = [r for r in read_patterns(patterns) if r.split == "train"]
    order = [i % len(rows) for i in range(n_instances)]
    ds = PatternDataset(patterns, split="train", multires=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ds.cube(0)  # open the first map outside the timing, as a worker would have
    ref_s = ours_s = np.inf
    for k in range(rounds):
        rng = np.random.default_rng(k)
        t = time.perf_counter()
        for i in order:
            r = rows[i]
            reference_instance(cohort / records[r.patient_id].file, (r.x, r.y, r.z), rng)
        ref_s = min(ref_s, (time.perf_counter() - t) / len(order))
        t = time.perf_counter()
        for i in order:
            for res in range(3):
                ds.cube(3 * i + res)
        ours_s = min(ours_s, (time.perf_counter() - t) / len(order))
    torch.set_num_threads(threads)
    return {
        "instances": len(order),
        "rounds": rounds,
        "reference_s_per_instance": ref_s,
        "ours_s_per_instance": ours_s,
        "speedup": ref_s / ours_s,
    }


_CHILD = """
import json, os, sys, threading, time, warnings
os.environ["SEMGEN_QUIET"] = "1"
warnings.simplefilter("ignore")
import numpy as np, psutil, torch, faiss
from matplotlib.figure import Figure
from semantic_genesis.discovery import DiscoverConfig, discover
from semantic_genesis.utils.provenance import run_info
run_info()  # warm up what is loaded once per process (fonts, faiss), not per volume
fig = Figure(); ax = fig.add_axes((0, 0, 1, 1)); ax.imshow(np.zeros((8, 8)))
ax.text(0, 0, "warm-up"); fig.suptitle("fonts"); fig.savefig(os.devnull, format="png")
faiss.IndexFlatL2(4).add(np.zeros((2, 4), np.float32))
proc, peak, done = psutil.Process(), [0], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        time.sleep(0.001)
before = proc.memory_info().rss
thread = threading.Thread(target=sample); thread.start()
discover(sys.argv[1], sys.argv[2], DiscoverConfig(n_classes=int(sys.argv[4]),
         features=sys.argv[3], device="cpu", max_tissue=float(sys.argv[5])))
done.set(); thread.join()
print(json.dumps({"before": before, "peak": max(peak[0], proc.memory_info().rss)}))
"""


def bench_memory(cohort: Path, tmp: Path, max_tissue: float) -> dict:
    """RSS sampled every millisecond while ``discover`` runs, minus the RSS just before (after
    the libraries are imported and warmed up: fonts, FAISS), in a fresh process."""
    records = read_cohort(cohort)
    feats = tmp / "bench-features.npz"
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(cohort),
            str(tmp / "mem"),
            str(feats),
            str(len(records)),
            str(max_tissue),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rss = json.loads(out.stdout.strip().splitlines()[-1])
    largest = max(np.prod(r.shape) * open_volume(cohort, r).dtype.itemsize for r in records)
    with np.load(feats) as f:
        feature_bytes = f["features"].nbytes
    added = rss["peak"] - rss["before"]
    budget = 2 * largest + feature_bytes
    return {
        "peak_rss_added_bytes": int(added),
        "budget_bytes": int(budget),
        "largest_volume_bytes": int(largest),
        "feature_bytes": int(feature_bytes),
        "rss_before_bytes": rss["before"],
        "within_budget": bool(added <= budget),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--cohort", type=Path, help="a prepared cohort (default: phantoms)")
    parser.add_argument("--n", type=int, default=4, help="phantoms to generate")
    parser.add_argument("--loop-trials", type=int, default=2)
    parser.add_argument("--instances", type=int, default=20)
    parser.add_argument(
        "--spacing",
        type=float,
        nargs=3,
        default=None,
        help="resample the phantoms (0.68 0.68 1.0: LUNA16-sized volumes)",
    )
    parser.add_argument(
        "--max-tissue",
        type=float,
        default=0.3,
        help="air test threshold for the discover run (phantoms rarely hold "
        "a 64-voxel cube with <= 15 %% tissue)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        cohort = args.cohort or make_cohort(tmp, args.n, args.spacing)
        report = {"cohort": str(cohort), "air_test": bench_air_test(cohort, args.loop_trials)}
        report["discover"] = discover_for_bench(cohort, tmp / "patterns", args.max_tissue)
        report["crop_multires"] = bench_crop(cohort, tmp / "patterns", args.instances)
        report["memory"] = bench_memory(cohort, tmp, args.max_tissue)
    if args.json:
        print(json.dumps(report, indent=2, default=float))
        return
    a, c, m = report["air_test"], report["crop_multires"], report["memory"]
    print(
        f"air test: {a['loop_s_per_trial'] * 1e3:.1f} ms (loop) vs "
        f"{a['vectorised_s_per_trial'] * 1e6:.1f} us per trial: {a['speedup']:.0f}x"
    )
    print(
        f"crop + multi-resolution: {c['reference_s_per_instance'] * 1e3:.1f} ms vs "
        f"{c['ours_s_per_instance'] * 1e3:.2f} ms per instance: {c['speedup']:.1f}x"
    )
    print(
        f"peak RSS added by discover: {m['peak_rss_added_bytes'] / 2**20:.1f} MiB "
        f"(budget {m['budget_bytes'] / 2**20:.1f} MiB)"
    )


if __name__ == "__main__":
    main()
