"""One seed, one dataset: on CPU a seed perturbs a batch the same way whether the compiled
kernels run or not (native.py: the numpy fallback computes the kernel's noise stream), and
kernel_status() says which ran."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semantic_genesis.transforms import InPainting, OutPainting, build_preset, native
from semantic_genesis.transforms.painting import noise_fill_

MASK = 2**64 - 1


def splitmix64_floats(seed: int, count: int) -> list[float]:
    """The stream's definition (csrc/pointwise.c) in plain Python integers: the outputs of a
    splitmix64 generator started at ``seed``, each split into its low and high 32-bit halves,
    whose top 23 bits make ``k / 2**23``."""
    values, state = [], seed
    while len(values) < count:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        values += [((z & 0xFFFFFFFF) >> 9) / 2**23, (z >> 41) / 2**23]
    return values[:count]


def without_kernels(monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """Switch the kernels off as a user does (SEMGEN_NATIVE=0) or as an install without a C
    compiler is (the extension not found)."""
    if how == "env":
        monkeypatch.setenv("SEMGEN_NATIVE", "0")
    else:
        monkeypatch.setattr(native, "_library", lambda: None)
        native.simd.cache_clear()
    assert not native.available() and native.kernel_status()["used"] is False


@pytest.mark.parametrize("seed", [0, 12345, 2**63 - 2, 2**64 - 1])
def test_both_implementations_are_the_streams_definition(seed):
    expect = torch.tensor(splitmix64_floats(seed, 37), dtype=torch.float32)
    assert torch.equal(native.uniform(37, seed), expect)
    assert torch.equal(native.uniform(37, seed, vectorised=False), expect)
    assert torch.equal(torch.from_numpy(native.uniform_numpy(37, seed)), expect)


@pytest.mark.parametrize("offset", [0, 1, 7, 8, 9, 65_537, 2 * 32_768 + 3])
@pytest.mark.parametrize("count", [0, 1, 2, 9, 16, 70_001])
def test_any_stretch_is_the_same_bits_from_kernel_and_numpy(offset, count):
    whole = native.uniform(offset + count, 99)
    part = whole[offset:]
    assert torch.equal(native.uniform(count, 99, offset=offset), part)
    assert torch.equal(native.uniform(count, 99, vectorised=False, offset=offset), part)
    assert np.array_equal(native.uniform_numpy(count, 99, offset), part.numpy())


def test_numpy_stream_is_uniform():
    a = native.uniform_numpy(400_000, 7).astype(np.float64)
    assert abs(a.mean() - 0.5) < 0.003 and abs(a.var() - 1 / 12) < 0.002
    counts = np.histogram(a, bins=100, range=(0, 1))[0]
    assert counts.min() > 0.9 * 4000 and counts.max() < 1.1 * 4000
    assert abs(np.corrcoef(a[0::2], a[1::2])[0, 1]) < 0.01  # the two halves of a word


def batch(shape=(6, 1, 32, 32, 16)) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(1))


def both(monkeypatch: pytest.MonkeyPatch, how: str, perturb, x: torch.Tensor, seed: int = 5):
    """``perturb(x, generator)`` with the kernels, then without, from the same seed."""
    assert native.kernel_status()["used"] is True
    kernels = perturb(x, torch.Generator().manual_seed(seed))
    with monkeypatch.context() as m:
        without_kernels(m, how)
        fallback = perturb(x, torch.Generator().manual_seed(seed))
    native.simd.cache_clear()
    return kernels, fallback


NOISE_ONLY = {  # everything but the warp runs the same float operations on both paths
    "sg-no-elastic": lambda x, g: build_preset("sg", elastic=False)(x, g).input,
    "mg": lambda x, g: build_preset("mg")(x, g).input,
    "in-painting": lambda x, g: InPainting()(x, g),
    "in-painting-mg": lambda x, g: InPainting(n_boxes=5, continue_prob=0.95)(x, g),
    "out-painting": lambda x, g: OutPainting()(x, g),
    "out-painting-mg": lambda x, g: OutPainting(n_boxes=5, continue_prob=0.95)(x, g),
}


@pytest.mark.parametrize("how", ["env", "not-built"])
@pytest.mark.parametrize("name", list(NOISE_ONLY))
def test_same_seed_same_batch_with_and_without_kernels(monkeypatch, name, how):
    x = batch((12, 1, 32, 32, 16))
    kernels, fallback = both(monkeypatch, how, NOISE_ONLY[name], x)
    assert not torch.equal(kernels, x)  # something was perturbed
    assert (kernels - fallback).abs().max() < 1e-5
    assert torch.equal(kernels == x, fallback == x)  # the same voxels painted, shuffled, ...


@pytest.mark.parametrize("how", ["env", "not-built"])
def test_sg_same_seed_same_batch_up_to_the_warps_rounding(monkeypatch, how):
    """sg warps every cube first: the kernel and grid_sample round differently (each point
    within ~2e-6 voxels), so a cube differs by at most 1e-5; a Bézier mapping after the warp
    multiplies a difference by at most its steepest slope."""
    x = batch((16, 1, 64, 64, 32))
    preset = build_preset("sg")
    kernels, fallback = both(monkeypatch, how, lambda x, g: preset(x, g), x, seed=4)
    diff = (kernels.input - fallback.input).flatten(1).abs().amax(1)
    assert kernels.applied == fallback.applied and torch.equal(kernels.target, fallback.target)
    gain = torch.ones(len(x))
    bezier = kernels.params["non-linear"]
    table = preset.choices[1].lut(bezier)
    steepest = table.diff(dim=1).abs().amax(1) * (table.shape[1] - 1)
    gain[bezier["index"]] = steepest.clamp(min=1.0)
    assert float(diff.max()) > 0  # the warps do differ, in the last bits
    assert bool((diff <= 1e-5 * gain).all()), (diff / gain).max()  # gain 1: no Bézier


def test_the_paths_draw_the_same_from_the_generator(monkeypatch):
    """After the same perturbation both generators are in the same state: the kernels draw no
    extra and no fewer random numbers."""
    x = batch()
    states = []
    for native_on in ("1", "0"):
        monkeypatch.setenv("SEMGEN_NATIVE", native_on)
        g = torch.Generator().manual_seed(3)
        build_preset("mg")(x, g)
        states.append(g.get_state())
    assert torch.equal(states[0], states[1])


def test_noise_fill_contiguous_or_not_takes_one_stream(monkeypatch):
    """Contiguous targets get the kernel written straight into them, a list with a strided one
    a bulk stretch copied in, and without the kernels numpy: the same values each way."""
    fills = []
    for strided, env in ((False, "1"), (True, "1"), (False, "0")):
        monkeypatch.setenv("SEMGEN_NATIVE", env)
        first = torch.zeros(20, 20, 24)[..., ::2] if strided else torch.zeros(20, 20, 12)
        targets = [first, torch.zeros(7, 20, 12)]
        noise_fill_(targets, torch.Generator().manual_seed(11))
        fills.append(torch.cat([t.flatten() for t in targets]))
    assert torch.equal(fills[0], fills[1]) and torch.equal(fills[0], fills[2])
    assert float(fills[0].min()) >= 0 and float(fills[0].max()) < 1 and fills[0].std() > 0.2


def test_kernel_status_names_what_ran(monkeypatch):
    status = native.kernel_status()
    assert status == {
        "built": True,
        "used": True,
        "reason": None,
        "isa": "avx2" if native.simd() else "scalar",
        "noise_stream": native.NOISE_STREAM,
        "noise_impl": f"C kernel ({status['isa']})",
    }
    gpu = native.kernel_status("cuda")  # the device need not be here to say what it would get
    assert gpu["built"] is True and gpu["used"] is False and "cuda" in gpu["reason"]
    assert gpu["noise_stream"] == "torch.rand (cuda)"
    monkeypatch.setenv("SEMGEN_NATIVE", "0")
    off = native.kernel_status()
    assert off["used"] is False and "SEMGEN_NATIVE=0" in off["reason"]
    assert off["noise_stream"] == native.NOISE_STREAM and off["noise_impl"] == "numpy"
    monkeypatch.setattr(native, "_library", lambda: None)
    missing = native.kernel_status()
    assert missing["built"] is False and missing["isa"] is None and "not built" in missing["reason"]


def test_a_build_of_other_sources_is_not_used(monkeypatch):
    """An old build left in place takes other arguments: it must not run (nor be reported as
    running), and the numpy stream takes over with the same values."""
    expect = native.noise(1000, 3)
    monkeypatch.setattr(native, "_ABI", native._ABI + 1)
    native._load.cache_clear()
    native.simd.cache_clear()
    try:
        status = native.kernel_status()
        assert status["built"] is False and "reinstall" in status["reason"]
        assert not native.available() and torch.equal(native.noise(1000, 3), expect)
    finally:
        monkeypatch.undo()
        native._load.cache_clear()
        native.simd.cache_clear()
    assert native.kernel_status()["used"] is True
