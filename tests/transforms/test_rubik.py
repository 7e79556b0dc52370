"""Rubik's cube (Zhuang et al. 2019, method.md §3.4): the permutation table, the rearrangement
and turns (invertible, labelled right), the gap, and the ``rubik`` preset."""

from __future__ import annotations

import itertools

import pytest
import torch

from semantic_genesis.transforms import build_preset
from semantic_genesis.transforms.rubik import (
    RubiksCube,
    hamming_permutations,
    join,
    rubik_labels,
    split,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_the_permutation_table_is_fixed_distinct_and_far_apart() -> None:
    table = hamming_permutations(100)
    assert table.shape == (100, 8)
    assert torch.equal(table[0], torch.arange(8))  # class 0 = the solved cube
    assert all(sorted(row.tolist()) == list(range(8)) for row in table)
    assert len({tuple(row.tolist()) for row in table}) == 100
    nearest = min(int((a != b).sum()) for a, b in itertools.combinations(table, 2))
    assert nearest >= 6  # any two classes differ in at least 6 of the 8 positions
    hamming_permutations.cache_clear()
    assert torch.equal(hamming_permutations(100), table)  # deterministic


def test_split_and_join_cut_the_cube_into_its_octants() -> None:
    x = torch.rand(2, 1, 8, 6, 4, generator=gen(1))
    parts = split(x)
    assert parts.shape == (2, 8, 1, 4, 3, 2)
    assert torch.equal(parts[:, 5], x[:, :, 4:, :3, 2:])  # 5 = (1, 0, 1)
    assert torch.equal(join(parts), x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scrambling_is_undone_exactly(seed: int) -> None:
    x = torch.rand(6, 2, 8, 8, 4, generator=gen(seed))
    rubik = RubiksCube(gap_divisor=0)
    out, params = rubik.forward(x, gen(seed + 10))
    assert not torch.equal(out, x)
    assert torch.equal(rubik.unscramble(out, params), x)


def test_each_position_holds_the_labelled_sub_cube_turned_as_flagged() -> None:
    """Direct check against the definition: position j holds sub-cube perm[j]; a horizontal
    flag reverses x and y, a vertical one y and z."""
    x = torch.rand(4, 1, 8, 8, 6, generator=gen(3))
    rubik = RubiksCube(gap_divisor=0)
    out, params = rubik.forward(x, gen(4))
    labels = rubik_labels(params)
    assert labels.shape == (4, 17) and labels.dtype == torch.long
    before, after = split(x), split(out)
    for i in range(4):
        order = hamming_permutations(100)[labels[i, 0]]
        for j in range(8):
            expected = before[i, int(order[j])]
            if labels[i, 1 + j]:
                expected = expected.flip(1, 2)  # (C, x, y, z): about z
            if labels[i, 9 + j]:
                expected = expected.flip(2, 3)  # about x
            assert torch.equal(after[i, j], expected)


def test_the_four_turn_states_are_distinct_proper_rotations() -> None:
    """None / horizontal / vertical / both give four different sub-cubes, each a rotation
    (an even number of reversed axes, so no mirror image)."""
    x = torch.rand(1, 1, 4, 4, 4, generator=gen(5))
    rubik = RubiksCube(gap_divisor=0)
    seen = []
    for h, v in itertools.product([False, True], repeat=2):
        flips = torch.zeros(1, 2, 8, dtype=torch.bool)
        flips[0, 0, 0], flips[0, 1, 0] = h, v
        params = {"perm": torch.zeros(1, dtype=torch.long), "flips": flips}
        seen.append(split(rubik.scramble(x, params))[0, 0])
    assert all(not torch.equal(a, b) for a, b in itertools.combinations(seen, 2))
    assert torch.equal(seen[3], split(x)[0, 0].flip(1, 3))  # both = the half turn about y


def test_the_gap_blanks_the_internal_faces_with_the_cube_mean() -> None:
    x = torch.rand(2, 1, 32, 32, 16, generator=gen(6))
    rubik = RubiksCube(gap_divisor=16)
    out, params = rubik.forward(x, gen(7))
    mask = rubik.gap_mask((32, 32, 16), x.device)
    assert mask[14:18].all() and mask[:, 14:18].all() and mask[:, :, 7:9].all()
    assert not mask[:14, :14, :7].any() and int(mask.sum()) == 32**2 * 16 - 28 * 28 * 14
    mean = x.mean(dim=(2, 3, 4), keepdim=True).expand_as(x)
    assert torch.equal(out[:, :, mask], mean[:, :, mask])
    assert torch.equal(out[:, :, ~mask], rubik.scramble(x, params)[:, :, ~mask])
    assert RubiksCube(gap_divisor=0).gap_mask((32, 32, 16), x.device) is None


def test_an_odd_size_is_refused() -> None:
    with pytest.raises(ValueError, match="even size"):
        RubiksCube().forward(torch.rand(1, 1, 8, 8, 5))


def test_the_rubik_preset_labels_every_cube() -> None:
    x = torch.rand(64, 1, 16, 16, 8, generator=gen(8))
    preset = build_preset("rubik")
    a, b = preset(x, gen(9)), preset(x, gen(9))
    assert torch.equal(a.input, b.input) and torch.equal(a.aux, b.aux)
    assert a.aux.shape == (64, 17) and preset.n_aux_classes == 100
    assert int(a.aux[:, 0].min()) >= 0 and int(a.aux[:, 0].max()) < 100
    assert set(a.aux[:, 1:].unique().tolist()) == {0, 1}
    assert len(a.aux[:, 0].unique()) > 30  # classes drawn uniformly, not a constant
    assert float(a.aux[:, 1:].float().mean()) == pytest.approx(0.5, abs=0.1)
    assert torch.equal(a.target, a.input)
