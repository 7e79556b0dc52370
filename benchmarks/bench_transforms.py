"""Cubes per second of the batched torch perturbations against the reference's per-cube numpy.

    python benchmarks/bench_transforms.py --preset sg --device cpu --batch 32 --json

For each perturbation of the preset, and for the whole sample path, the torch version
(``semantic_genesis.transforms``, one batch of ``--batch`` cubes) and a straightforward per-cube
numpy version written below the way the reference writes it (scipy ``gaussian_filter`` +
``map_coordinates`` elastic warp, ``np.interp`` Bézier mapping over 100,000 curve samples, Python
loops over blocks and boxes) are timed in the same run, and the ratio is reported.

Per core: both sides run with ``--threads`` threads (default 1: torch, OpenMP and BLAS are
limited through the environment before numpy and torch are imported). On CPU the timer is the
process CPU time (``time.process_time``), which stays meaningful on a shared machine where wall
time does not; the best of ``--repeats`` runs is kept. On CUDA the timer is wall time after
``torch.cuda.synchronize()``. Timings are for 64 x 64 x 32 cubes unless ``--size`` says otherwise.
Minor page faults per cube are reported too: on a virtual machine each fresh page of a large
allocation costs microseconds of system time, which the process CPU time includes. By default
both sides run with glibc keeping freed memory for reuse, as every ``semgen`` command sets it
(``semantic_genesis.utils.memory``); ``--malloc default`` measures glibc's defaults instead.

On CPU the perturbations use the compiled kernels (``semantic_genesis.transforms.native``: the
elastic warp, the Bézier look-up, the painting noise) when they are built; ``"kernels"`` in the
JSON says which, and each row also gives ``fallback_ms_per_cube``, the same torch transform
timed in the same run with the kernels switched off (``SEMGEN_NATIVE=0``, the code an install
without a C compiler runs), and ``kernels_speedup``. Set ``SEMGEN_NATIVE=0`` to time only that.

The ``noise`` row times the painting fill alone, one U[0, 1) value per voxel of every cube
(``painting.uniform_noise``: the kernel's noise stream, or without the kernels the same stream
computed by numpy) against numpy's ``np.random.rand`` per cube.

The ``sg`` row compares the mixture of the four perturbations that the torch batch drew with the
one the numpy cubes drew; ``speedup_vs_expected`` compares expected costs instead: numpy's warp
plus the mean of its four rows, against the torch preset averaged over ``--seeds`` batches.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import time


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=["sg", "mg"], default="sg")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--batch", type=int, default=16, help="cubes per torch batch")
    p.add_argument("--numpy-cubes", type=int, default=32, help="cubes per numpy timing run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--seeds", type=int, default=8, help="random mixtures averaged for the sg expected cost"
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--size", type=int, nargs=3, default=[64, 64, 32])
    p.add_argument(
        "--malloc",
        choices=["semgen", "default"],
        default="semgen",
        help="semgen: glibc keeps freed memory, as every semgen command sets it "
        "(semantic_genesis.utils.memory), for both sides; default: glibc's defaults",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p.parse_args()


# ------------------------------------------------------------------------------------------------
# per-cube numpy baseline, written like the reference (ModelsGenesis pytorch/utils.py and
# SemanticGenesis pytorch/utils/purturbation.py); cubes are (1, X, Y, Z) float arrays


def np_elastic(img, alpha=991.0, sigma=8.0):
    import numpy as np
    from scipy.ndimage import gaussian_filter, map_coordinates

    cube = img[0]
    shape = cube.shape
    dx = gaussian_filter(np.random.rand(*shape) * 2 - 1, sigma, mode="constant", cval=0) * alpha
    dy = gaussian_filter(np.random.rand(*shape) * 2 - 1, sigma, mode="constant", cval=0) * alpha
    x, y, z = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), np.arange(shape[2]))
    idx = np.reshape(y + dy, (-1, 1)), np.reshape(x + dx, (-1, 1)), np.reshape(z, (-1, 1))
    return map_coordinates(cube, idx, order=1, mode="reflect").reshape(shape)[None]


def np_bezier(img, prob=1.0):
    import numpy as np
    from scipy.special import comb

    if random.random() >= prob:
        return img
    points = [
        [0, 0],
        [random.random(), random.random()],
        [random.random(), random.random()],
        [1, 1],
    ]
    t = np.linspace(0.0, 1.0, 100_000)
    poly = np.array([comb(3, i) * t ** (3 - i) * (1 - t) ** i for i in range(4)])
    xvals = np.dot([p[0] for p in points], poly)
    yvals = np.dot([p[1] for p in points], poly)
    if random.random() < 0.5:
        xvals = np.sort(xvals)
    else:
        xvals, yvals = np.sort(xvals), np.sort(yvals)
    return np.interp(img, xvals, yvals)


def np_shuffle(img, n_blocks, prob=1.0):
    import numpy as np

    if random.random() >= prob:
        return img
    out, orig = img.copy(), img.copy()
    _, rows, cols, deps = img.shape
    for _ in range(n_blocks):
        bx, by, bz = (
            random.randint(1, rows // 10),
            random.randint(1, cols // 10),
            random.randint(1, deps // 10),
        )
        x, y, z = (
            random.randint(0, rows - bx),
            random.randint(0, cols - by),
            random.randint(0, deps - bz),
        )
        window = orig[0, x : x + bx, y : y + by, z : z + bz].flatten()
        np.random.shuffle(window)
        out[0, x : x + bx, y : y + by, z : z + bz] = window.reshape((bx, by, bz))
    return out


def _np_kept_box(dims):
    sides = [d - random.randint(3 * d // 7, 4 * d // 7) for d in dims]
    return sides, [random.randint(3, d - s - 3) for d, s in zip(dims, sides, strict=True)]


def np_inpaint(img, n_boxes=1, cont=1.0):
    import numpy as np

    img = img.copy()
    dims = img.shape[1:]
    cnt = n_boxes
    while cnt > 0 and random.random() < cont:
        s = [random.randint(d // 6, d // 3) for d in dims]
        c = [random.randint(3, d - si - 3) for d, si in zip(dims, s, strict=True)]
        img[:, c[0] : c[0] + s[0], c[1] : c[1] + s[1], c[2] : c[2] + s[2]] = np.random.rand(*s)
        cnt -= 1
    return img


def np_outpaint(img, n_boxes=1, cont=1.0):
    import numpy as np

    out = np.random.rand(*img.shape)
    dims = img.shape[1:]
    for b in range(n_boxes):
        if b and random.random() >= cont:
            break
        s, c = _np_kept_box(dims)
        box = (slice(None), *(slice(ci, ci + si) for ci, si in zip(c, s, strict=True)))
        out[box] = img[box]
    return out


def np_flip(x, y, prob=0.4):
    import numpy as np

    cnt = 3
    while random.random() < prob and cnt > 0:
        axis = random.choice([1, 2, 3])
        x, y = np.flip(x, axis=axis), np.flip(y, axis=axis)
        cnt -= 1
    return x, y


def np_sg(img, elastic=True):
    """The SG loader: elastic warp, then exactly one of four."""
    x = np_elastic(img) if elastic else img
    r = random.random()
    if r <= 0.25:
        return np_shuffle(x, 5)
    if r <= 0.5:
        return np_bezier(x)
    if r <= 0.75:
        return np_inpaint(x)
    return np_outpaint(x)


def np_mg(img):
    """The MG pair generator for one cube."""
    x, _ = np_flip(img, img)
    x = np_shuffle(x, 10_000, prob=0.5)
    x = np_bezier(x, prob=0.9)
    if random.random() < 0.9:
        x = np_inpaint(x, 5, 0.95) if random.random() < 0.2 else np_outpaint(x, 5, 0.95)
    return x


# ------------------------------------------------------------------------------------------------


# the rows whose torch side uses the compiled kernels (the others time the same code either way)
KERNEL_ROWS = {
    "elastic", "non-linear", "in-paint", "out-paint", "noise", "sg-no-elastic", "sg", "mg",
}  # fmt: skip


def np_noise(img):
    """The painting fill of one whole cube, as the reference draws it."""
    import numpy as np

    return np.random.rand(*img.shape)


def noise(batch, generator):
    """The painting fill of the whole batch: one U[0, 1) value per voxel (painting.py)."""
    from semantic_genesis.transforms.painting import uniform_noise

    return uniform_noise(tuple(batch.shape), generator, batch.device)


def cases(preset: str):
    """(name, torch callable factory, numpy per-cube callable) for the preset's parts."""
    from semantic_genesis import transforms as T

    if preset == "sg":
        return [
            ("elastic", T.ElasticDeform(), np_elastic),
            ("local-shuffle", T.LocalPixelShuffle(n_blocks=5), lambda c: np_shuffle(c, 5)),
            ("non-linear", T.BezierIntensity(), np_bezier),
            ("in-paint", T.InPainting(), np_inpaint),
            ("out-paint", T.OutPainting(), np_outpaint),
            ("noise", noise, np_noise),
            ("sg-no-elastic", T.build_preset("sg", elastic=False), lambda c: np_sg(c, False)),
            ("sg", T.build_preset("sg"), np_sg),
        ]
    return [
        ("flip", T.Flip(), lambda c: np_flip(c, c)[0].copy()),
        ("local-shuffle", T.LocalPixelShuffle(n_blocks=10_000), lambda c: np_shuffle(c, 10_000)),
        ("non-linear", T.BezierIntensity(), np_bezier),
        ("in-paint", T.InPainting(n_boxes=5, continue_prob=0.95), lambda c: np_inpaint(c, 5, 0.95)),
        (
            "out-paint",
            T.OutPainting(n_boxes=5, continue_prob=0.95),
            lambda c: np_outpaint(c, 5, 0.95),
        ),
        ("noise", noise, np_noise),
        ("mg", T.build_preset("mg"), np_mg),
    ]


def best_time(fn, repeats: int, sync, reseed) -> tuple[float, float]:
    """Best time of ``repeats`` runs of ``fn`` and the mean minor page faults per run;
    ``reseed`` runs before each, so every run draws the same random choices and does the same
    work (the best of random mixtures would favour the cheapest mixture). Page faults are
    reported because on a virtual machine each fresh page of a large allocation costs
    microseconds of (system) CPU time, which the process CPU time includes."""
    clock = time.perf_counter if sync is not None else time.process_time
    reseed()
    fn()  # warm-up (caches, allocator, lazy tables)
    best = float("inf")
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(repeats):
        reseed()
        if sync:
            sync()
        start = clock()
        fn()
        if sync:
            sync()
        best = min(best, clock() - start)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return best, faults / repeats


def main() -> int:
    args = parse()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np
    import torch

    from semantic_genesis.transforms import native
    from semantic_genesis.utils.memory import keep_freed_memory
    from semantic_genesis.utils.provenance import run_info

    malloc_tuned = args.malloc == "semgen" and keep_freed_memory()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    random.seed(0)
    np.random.seed(0)
    gen = torch.Generator(device=device).manual_seed(0)
    batch = torch.rand(args.batch, 1, *args.size, device=device)
    cubes = [np.random.rand(1, *args.size) for _ in range(args.numpy_cubes)]

    rows = []
    parts = cases(args.preset)
    compare_kernels = device.type == "cpu" and native.available()

    def time_torch(transform, seed: int = 1) -> tuple[float, float]:
        """``transform`` on the batch, every run drawing from ``seed``."""
        return best_time(
            lambda: transform(batch, gen), args.repeats, sync, lambda: gen.manual_seed(seed)
        )

    for name, transform, np_fn in parts:
        t_torch, f_torch = time_torch(transform)
        t_numpy, f_numpy = best_time(
            lambda f=np_fn: [f(c) for c in cubes],
            max(1, args.repeats // 2),
            None,
            lambda: (random.seed(1), np.random.seed(1)),
        )
        torch_rate = args.batch / t_torch
        numpy_rate = len(cubes) / t_numpy
        rows.append(
            {
                "name": name,
                "torch_cubes_per_s": round(torch_rate, 1),
                "numpy_cubes_per_s": round(numpy_rate, 2),
                "torch_ms_per_cube": round(1e3 / torch_rate, 4),
                "numpy_ms_per_cube": round(1e3 / numpy_rate, 3),
                "speedup": float(f"{torch_rate / numpy_rate:.3g}"),  # never 0.0 when slower
                "torch_page_faults_per_cube": round(f_torch / args.batch, 1),
                "numpy_page_faults_per_cube": round(f_numpy / len(cubes), 1),
            }
        )
        if compare_kernels and name in KERNEL_ROWS:
            os.environ["SEMGEN_NATIVE"] = "0"  # the torch fallbacks, same batch, same draws
            t_fallback, _ = time_torch(transform)
            del os.environ["SEMGEN_NATIVE"]
            rows[-1]["fallback_ms_per_cube"] = round(1e3 * t_fallback / args.batch, 4)
            rows[-1]["kernels_speedup"] = round(t_fallback / t_torch, 2)
    if args.preset == "sg":
        # the expected cost of one sg cube, free of the luck of one mixture of the four (the
        # "sg" row compares the mixture the torch batch drew with the one the numpy cubes
        # drew). numpy: the warp plus the mean of the four, from the rows above; torch: the
        # whole preset, averaged over --seeds batches, each drawing its own mixture
        ms = {r["name"]: r["numpy_ms_per_cube"] for r in rows}
        four = ("local-shuffle", "non-linear", "in-paint", "out-paint")
        expected = ms["elastic"] + sum(ms[k] for k in four) / 4
        times = [time_torch(parts[-1][1], seed)[0] for seed in range(1, args.seeds + 1)]
        torch_expected = 1e3 * sum(times) / len(times) / args.batch
        rows[-1]["numpy_expected_ms_per_cube"] = round(expected, 3)
        rows[-1]["torch_expected_ms_per_cube"] = round(torch_expected, 4)
        rows[-1]["speedup_vs_expected"] = round(expected / torch_expected, 1)
    result = {
        "benchmark": "transforms",
        "preset": args.preset,
        "device": str(device),
        "batch": args.batch,
        "cube": args.size,
        "numpy_cubes": args.numpy_cubes,
        "torch_threads": torch.get_num_threads(),
        "threads_requested": args.threads,
        "malloc": "keeps freed memory (as semgen)" if malloc_tuned else "glibc defaults",
        "kernels": native.describe() if device.type == "cpu" else "n/a (not CPU)",
        "timer": "wall (cuda synchronize)" if sync else "process CPU time, best of repeats",
        "rows": rows,
        "run_info": run_info(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"kernels: {result['kernels']}")
        for r in rows:
            fallback = f"   (x{r['kernels_speedup']} over torch)" if "kernels_speedup" in r else ""
            print(
                f"{r['name']:>14}: torch {r['torch_cubes_per_s']:>9.1f} cubes/s   numpy "
                f"{r['numpy_cubes_per_s']:>7.2f} cubes/s   x{r['speedup']}{fallback}"
            )
        if "speedup_vs_expected" in rows[-1]:
            print(f"  expected sg mixture: x{rows[-1]['speedup_vs_expected']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
