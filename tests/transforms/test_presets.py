"""Presets: what goes in, what is restored, and the reference's choice frequencies."""

from __future__ import annotations

import pytest
import torch

from semantic_genesis.transforms import ElasticDeform, Perturbed, build_preset
from semantic_genesis.transforms.rotation import rotate

FOUR = ("local-shuffle", "non-linear", "in-paint", "out-paint")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", ["sg", "mg", "inpaint", "shuffle", "identity", "rotation"])
def test_every_preset(name):
    x = torch.rand(6, 1, 32, 32, 16, generator=gen(1))
    preset = build_preset(name)
    a, b = preset(x, gen(5)), preset(x, gen(5))
    assert isinstance(a, Perturbed)
    assert a.input.shape == x.shape and a.target.shape == x.shape
    assert float(a.input.min()) >= 0 and float(a.input.max()) <= 1
    assert torch.equal(a.input, b.input) and torch.equal(a.target, b.target)
    assert len(a.applied) == 6 and all(isinstance(s, str) for s in a.applied)
    assert (a.aux is not None) == (name == "rotation")
    assert preset.n_aux_classes == (8 if name == "rotation" else 0)


def test_sg_applies_exactly_one_of_four_with_equal_odds():
    preset = build_preset("sg")
    preset.choices[1].n_samples = 2000  # curve resolution is irrelevant to the choice odds
    counts = dict.fromkeys(FOUR, 0)
    g = gen(0)
    for _ in range(4):
        x = torch.rand(1000, 1, 12, 12, 8, generator=g)
        out = preset(x, g)
        for s in out.applied:
            parts = s.split("+")
            assert parts[0] == "elastic" and len(parts) == 2 and parts[1] in FOUR
            counts[parts[1]] += 1
        index = torch.cat([out.params[k]["index"] for k in FOUR])
        assert torch.equal(index.sort().values, torch.arange(1000))  # a partition of the batch
    for name, c in counts.items():
        assert abs(c / 4000 - 0.25) < 0.03, (name, c)


def test_sg_target_is_the_unwarped_original_unless_asked():
    x = torch.rand(4, 1, 32, 32, 16, generator=gen(1))
    out = build_preset("sg")(x, gen(2))
    assert torch.equal(out.target, x)
    warped = build_preset("sg", warp_target=True)(x, gen(2))
    expect = ElasticDeform().apply(x, warped.params["elastic"])
    assert torch.allclose(warped.target, expect)
    assert not torch.equal(warped.target, x)
    assert torch.equal(warped.input, out.input)  # same draws, only the target differs
    plain = build_preset("sg", elastic=False)(x, gen(2))
    assert all("elastic" not in s for s in plain.applied)


def test_mg_flips_input_and_target_alike():
    x = torch.rand(64, 1, 16, 16, 8, generator=gen(1))
    out = build_preset("mg")(x, gen(3))
    axes = out.params["flip"]["axes"]
    assert 0 < int(axes.any(1).sum()) < 64
    for i in range(64):
        dims = [2 + a for a in range(3) if axes[i, a]]
        expect = x[i : i + 1].flip(dims) if dims else x[i : i + 1]
        assert torch.equal(out.target[i : i + 1], expect)
    painted = sum("paint" in s for s in out.applied)
    assert 45 < painted <= 64  # paint_rate 0.9
    inpainted = sum("in-paint" in s for s in out.applied)
    assert inpainted < painted / 2  # in-painting 0.2 of painting


def test_rotation_aux_and_identity():
    x = torch.rand(16, 1, 8, 8, 4, generator=gen(1))
    out = build_preset("rotation")(x, gen(2))
    assert out.aux.dtype == torch.long and out.aux.shape == (16,)
    for i in range(16):
        assert torch.equal(out.input[i : i + 1], rotate(x[i : i + 1], int(out.aux[i])))
    assert torch.equal(out.target, out.input)
    same = build_preset("identity")(x, gen(0))
    assert torch.equal(same.input, x) and torch.equal(same.target, x)


def test_validation_generator_gives_the_same_batch_every_epoch():
    preset = build_preset("sg")
    x = torch.rand(8, 1, 16, 16, 8, generator=gen(1))
    first = preset(x, preset.generator(123)).input
    second = preset(x, preset.generator(123)).input
    assert torch.equal(first, second)


def test_bad_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        build_preset("simclr")
    with pytest.raises(ValueError, match="bad options"):
        build_preset("sg", flip_rate=0.3)
    with pytest.raises(ValueError):
        build_preset("sg")(torch.rand(1, 8, 8, 8))


@pytest.mark.parametrize("name", ["sg", "mg"])
def test_presets_take_non_contiguous_batches(name):
    x = torch.rand(6, 2, 24, 24, 16, generator=torch.Generator().manual_seed(0))
    preset = build_preset(name)
    expect = preset(x, torch.Generator().manual_seed(1))
    got = preset(
        x.contiguous(memory_format=torch.channels_last_3d), torch.Generator().manual_seed(1)
    )
    assert torch.allclose(got.input, expect.input, atol=1e-6) and got.applied == expect.applied
    wide = torch.rand(6, 1, 24, 24, 40, generator=torch.Generator().manual_seed(0))
    sliced = wide[..., 4:20]  # a view with gaps between its rows
    got = preset(sliced, torch.Generator().manual_seed(1))
    same = preset(sliced.contiguous(), torch.Generator().manual_seed(1))
    assert torch.allclose(got.input, same.input, atol=1e-6)
