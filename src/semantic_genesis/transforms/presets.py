"""Pretext presets: what the network sees (input), what it restores (target), what it classifies.

``build_preset(name, **options)`` returns a callable ``preset(x, generator) -> Perturbed`` that
works on a batch ``(N, C, X, Y, Z)`` in [0, 1] on the batch's device:

- ``sg``: the reference Semantic Genesis loader (method.md §3.2): elastic warp of the input,
  then exactly one of local shuffle (5 blocks) / Bézier / in-painting (1 box, noise) /
  out-painting (1 box kept, noise), each with p = 0.25, no flips. The target is the *un-warped*
  original; ``warp_target=True`` warps the target with the same field (method.md §3.2 asks for
  the switch), ``elastic=False`` drops the warp.
- ``mg``: Models Genesis (method.md §3.1, ``pytorch/config.py``): flips (0.4, up to 3, input and
  target, drawn among the channel's no-op, x and y as the reference: never depth), local
  shuffle with 10,000 blocks (0.5), Bézier (0.9), painting (0.9: out-painting 0.8 / in-painting
  0.2, up to 5 boxes with continuation 0.95).
- ``inpaint``: context-encoder-style in-painting (one box of sides [dim // 4, dim // 2] filled
  with the sample's mean intensity); ``shuffle``: context restoration (swap 10 pairs of patches);
  ``identity``: auto-encoder.
- ``rotation``: the input is rotated by one of 8 shape-preserving rotations and ``aux`` holds the
  rotation index (``n_aux_classes`` = 8). The target is the rotated input itself, so a restoration
  loss would only be an auto-encoder: the engine should train the rotation head on ``aux`` only.
- ``rubik``: Rubik's cube (Zhuang et al. 2019, :mod:`.rubik`): the 2 x 2 x 2 sub-cubes
  rearranged and turned in place; ``aux`` ``(N, 17)`` holds the permutation class and the 16
  turn flags.

Validation with fixed perturbations: build a fresh generator with the same seed at the start of
every validation pass and iterate the validation batches in a fixed order (no shuffling), e.g.
``g = preset.generator(seed, device)``; every epoch then sees identical perturbed inputs, so
validation losses compare across epochs. Under DDP give each rank its own seed
(``derive_seed(seed, "val", rank)`` from ``semantic_genesis.utils.seed``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from semantic_genesis.transforms.base import Params, Perturbation, put_rows, rand, take_rows
from semantic_genesis.transforms.bezier import BezierIntensity
from semantic_genesis.transforms.elastic import ElasticDeform
from semantic_genesis.transforms.flip import MG_FLIP_CHOICES, Flip
from semantic_genesis.transforms.inpainting import InPainting
from semantic_genesis.transforms.local_shuffle import LocalPixelShuffle
from semantic_genesis.transforms.outpainting import OutPainting
from semantic_genesis.transforms.patch_swap import PatchSwap
from semantic_genesis.transforms.rotation import Rotation
from semantic_genesis.transforms.rubik import N_PERMUTATIONS, RubiksCube, rubik_labels


@dataclass
class Perturbed:
    """A perturbed batch.

    Attributes:
        input: what the network sees ``(N, C, X, Y, Z)``.
        target: what the decoder restores ``(N, C, X, Y, Z)``.
        aux: a LongTensor ``(N,)`` of pretext classes (rotation index) or None.
        applied: per sample, the perturbations applied, joined by ``+`` (for logging).
        params: per perturbation name, the parameters it drew (see each class).
    """

    input: torch.Tensor
    target: torch.Tensor
    aux: torch.Tensor | None
    applied: list[str]
    params: dict[str, Params] = field(default_factory=dict)


class Preset:
    """Base of the presets: a named, configured pipeline of perturbations.

    Attributes:
        name: the preset's name.
        options: the options it was built with (stored with every run).
        n_aux_classes: classes of ``aux`` (0 when the preset has no auxiliary label).
    """

    name = "identity"
    n_aux_classes = 0

    def __init__(self, **options: object) -> None:
        self.options = dict(options)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Perturbed:
        if x.ndim != 5:
            raise ValueError(f"expected a batch (N, C, X, Y, Z), got shape {tuple(x.shape)}")
        return self.perturb(x, generator)

    def perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> Perturbed:
        return Perturbed(x, x, None, ["identity"] * x.shape[0])

    @staticmethod
    def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
        """A generator on ``device`` seeded with ``seed`` (make a fresh one per validation pass)."""
        return torch.Generator(device=device).manual_seed(int(seed))

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}[{self.name}]({opts})"


class Identity(Preset):
    """Auto-encoder: input and target are the batch itself."""

    def __init__(self) -> None:
        super().__init__()


def _names(applied: list[list[str]]) -> list[str]:
    return ["+".join(a) if a else "identity" for a in applied]


def _run(
    t: Perturbation,
    x: torch.Tensor,
    generator: torch.Generator | None,
    applied: list[list[str]],
    params: dict[str, Params],
) -> torch.Tensor:
    """Apply ``t`` (with its own probability) and record it for the samples it touched."""
    out, p = t.forward(x, generator)
    params[t.name] = p
    for i in p["active"].nonzero().squeeze(1).tolist():
        applied[i].append(t.name)
    return out


Source = Callable[[torch.Tensor, torch.Tensor, Perturbation, Params, torch.Tensor], None]


def _shaped(x: torch.Tensor, k: int) -> torch.Tensor:
    """A batch of ``k`` samples shaped like those of ``x``, without a copy (a view repeating
    the first): what a choice's :meth:`Perturbation.sample` needs, which reads only the
    shape, device and dtype."""
    return x[:1].expand(k, *x.shape[1:])


def _one_of(
    choices: list[Perturbation],
    weights: list[float],
    x: torch.Tensor,
    generator: torch.Generator | None,
    applied: list[list[str]],
    params: dict[str, Params],
    out: torch.Tensor | None = None,
    source: Source | None = None,
) -> torch.Tensor:
    """Apply exactly one of ``choices`` to each sample (chosen with ``weights``), into ``out``
    (may be ``x`` itself when the caller owns it: a sample is read before it is written).

    Each choice first draws its parameters (from the samples' shape); then ``source(x, idx,
    choice, params, out)``, if given, writes the input of its samples ``idx`` into ``out[idx]``
    (the sg preset warps them there, only where the choice reads them) and the choice is
    applied to those rows of ``out`` in place; without ``source`` it reads ``x[idx]``
    (:meth:`Perturbation.apply_rows`). The random draws come in the same order as with
    ``choice.forward``."""
    n = x.shape[0]
    cum = torch.tensor(weights, device=x.device).cumsum(0)
    cum = cum / cum[-1]
    pick = torch.searchsorted(cum, rand((n,), generator, x.device), right=True)
    pick.clamp_(max=len(choices) - 1)
    if out is None:
        # every sample gets exactly one choice; contiguous whatever x is (the CPU paths work on
        # its rows in place)
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    for k, t in enumerate(choices):
        idx = (pick == k).nonzero().squeeze(1)
        if idx.numel():
            p = t.sample(_shaped(x, len(idx)), generator)
            if source is not None:
                source(x, idx, t, p, out)
            t.apply_rows(x if source is None else out, out, idx, p, generator)
            p["active"] = torch.ones(len(idx), dtype=torch.bool, device=x.device)
            params[t.name] = {"index": idx, **p}
            for i in idx.tolist():
                applied[i].append(t.name)
    return out


def _kept_box(p: Params) -> tuple[torch.Tensor, torch.Tensor]:
    """Corner and size ``(N, 3)`` of the box around out-painting's kept boxes: the only voxels
    of its input that out-painting reads (it replaces the others with noise)."""
    enabled = p["enabled"][..., None]
    lo = torch.where(enabled, p["corner"], torch.iinfo(p["corner"].dtype).max).amin(1)
    hi = torch.where(enabled, p["corner"] + p["size"], 0).amax(1)
    return lo, hi - lo


class SemanticGenesis(Preset):
    """The reference Semantic Genesis perturbations (see the module docstring)."""

    name = "sg"

    def __init__(
        self,
        warp_target: bool = False,
        elastic: bool = True,
        n_blocks: int = 5,
        field: str = "lowrank",
    ) -> None:
        super().__init__(warp_target=warp_target, elastic=elastic, n_blocks=n_blocks, field=field)
        self.warp_target = warp_target
        self.elastic = ElasticDeform(field=field) if elastic else None
        self.choices: list[Perturbation] = [
            LocalPixelShuffle(n_blocks=n_blocks),
            BezierIntensity(),
            InPainting(),
            OutPainting(),
        ]

    def perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> Perturbed:
        applied: list[list[str]] = [[] for _ in range(x.shape[0])]
        params: dict[str, Params] = {}
        inputs, target, source = x, x, None
        if self.elastic is not None:
            warp = self.elastic.sample(x, generator, compact=True)
            warp["active"] = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
            params["elastic"] = warp
            for a in applied:
                a.append("elastic")
            if self.warp_target:
                inputs = target = self.elastic.apply(x, warp)
            else:
                source = functools.partial(self._warp, warp)
        out = _one_of(self.choices, [0.25] * 4, inputs, generator, applied, params, None, source)
        return Perturbed(out, target, None, _names(applied), params)

    def _warp(
        self,
        warp: Params,
        x: torch.Tensor,
        idx: torch.Tensor,
        t: Perturbation,
        p: Params,
        out: torch.Tensor,
    ) -> None:
        """Write the warped input of one choice's samples ``idx`` into ``out[idx]``:
        out-painting reads only its kept box, so only that box is warped (on CPU; the output
        is the same, for a fraction of the cost)."""
        region = _kept_box(p) if isinstance(t, OutPainting) else None
        self.elastic.warp_rows(x, out, idx, {"field": warp["field"]}, region)


class ModelsGenesis(Preset):
    """The Models Genesis perturbations (see the module docstring)."""

    name = "mg"

    def __init__(
        self,
        flip_rate: float = 0.4,
        local_rate: float = 0.5,
        n_blocks: int = 10_000,
        nonlinear_rate: float = 0.9,
        paint_rate: float = 0.9,
        inpaint_rate: float = 0.2,
    ) -> None:
        super().__init__(
            flip_rate=flip_rate,
            local_rate=local_rate,
            n_blocks=n_blocks,
            nonlinear_rate=nonlinear_rate,
            paint_rate=paint_rate,
            inpaint_rate=inpaint_rate,
        )
        self.flip = Flip(flip_rate=flip_rate, choices=MG_FLIP_CHOICES)
        self.shuffle = LocalPixelShuffle(n_blocks=n_blocks, prob=local_rate)
        self.bezier = BezierIntensity(prob=nonlinear_rate)
        self.paint_rate = paint_rate
        self.inpaint_rate = inpaint_rate
        self.paint = [
            InPainting(n_boxes=5, continue_prob=0.95),
            OutPainting(n_boxes=5, continue_prob=0.95),
        ]

    def perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> Perturbed:
        n = x.shape[0]
        applied: list[list[str]] = [[] for _ in range(n)]
        params: dict[str, Params] = {}
        flipped, p = self.flip.forward(x, generator)
        params["flip"] = p
        for i in p["axes"].any(1).nonzero().squeeze(1).tolist():
            applied[i].append("flip")
        out = _run(self.shuffle, flipped, generator, applied, params)
        out = _run(self.bezier, out, generator, applied, params)
        painted = rand((n,), generator, x.device) < self.paint_rate
        idx = painted.nonzero().squeeze(1)
        if idx.numel():
            sub_applied = [applied[i] for i in idx.tolist()]
            weights = [self.inpaint_rate, 1.0 - self.inpaint_rate]
            sub_params: dict[str, Params] = {}
            sub = take_rows(out, idx)  # a copy: painted in place
            _one_of(self.paint, weights, sub, generator, sub_applied, sub_params, sub)
            put_rows(out, idx, sub)
            for name, p in sub_params.items():
                params[name] = {**p, "index": idx[p["index"]]}
        return Perturbed(out, flipped, None, _names(applied), params)


class Single(Preset):
    """One perturbation on the input; the target is the original (pretext baselines)."""

    def __init__(self, name: str, make: Callable[[], Perturbation], **options: object) -> None:
        super().__init__(**options)
        self.name = name
        self.transform = make()

    def perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> Perturbed:
        applied: list[list[str]] = [[] for _ in range(x.shape[0])]
        params: dict[str, Params] = {}
        out = _run(self.transform, x, generator, applied, params)
        return Perturbed(out, x, None, _names(applied), params)


class RotationPreset(Preset):
    """Rotation pretext: ``aux`` = rotation index in 0..7, target = the rotated input."""

    name = "rotation"
    n_aux_classes = Rotation.n_classes

    def __init__(self) -> None:
        super().__init__()
        self.rotation = Rotation()

    def perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> Perturbed:
        out, p = self.rotation.forward(x, generator)
        applied = [f"rotation-{k}" for k in p["k"].tolist()]
        return Perturbed(out, out, p["k"], applied, {"rotation": p})


class RubikPreset(Preset):
    """Rubik's cube pretext (:mod:`.rubik`): ``aux`` ``(N, 17)`` = the permutation class, then
    the 8 horizontal and 8 vertical turn flags; the target is the scrambled input itself
    (nothing is restored); ``n_aux_classes`` = the permutation classes."""

    name = "rubik"

    def __init__(self, n_permutations: int = N_PERMUTATIONS, gap_divisor: int = 16) -> None:
        super().__init__(n_permutations=n_permutations, gap_divisor=gap_divisor)
        self.rubik = RubiksCube(n_permutations, gap_divisor)
        self.n_aux_classes = n_permutations

    def perturb(self, x: torch.Tensor, generator: torch.Generator | None) -> Perturbed:
        out, p = self.rubik.forward(x, generator)
        applied = [f"rubik-{k}" for k in p["perm"].tolist()]
        return Perturbed(out, out, rubik_labels(p), applied, {"rubiks-cube": p})


def _inpaint(side_divisors: tuple[int, int] = (4, 2), fill: str | float = "mean") -> Preset:
    return Single(
        "inpaint",
        lambda: InPainting(side_divisors=side_divisors, fill=fill, margin=0),
        side_divisors=side_divisors,
        fill=fill,
    )


def _shuffle(n_swaps: int = 10, patch_divisor: int = 8) -> Preset:
    return Single(
        "shuffle",
        lambda: PatchSwap(n_swaps=n_swaps, patch_divisor=patch_divisor),
        n_swaps=n_swaps,
        patch_divisor=patch_divisor,
    )


PRESETS: dict[str, Callable[..., Preset]] = {
    "sg": SemanticGenesis,
    "mg": ModelsGenesis,
    "inpaint": _inpaint,
    "shuffle": _shuffle,
    "identity": Identity,
    "rotation": RotationPreset,
    "rubik": RubikPreset,
}


def build_preset(name: str, **options: object) -> Preset:
    """The preset ``name`` (``sg``, ``mg``, ``inpaint``, ``shuffle``, ``identity``,
    ``rotation``, ``rubik``) configured with ``options`` (see each preset's arguments)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    try:
        return PRESETS[name](**options)
    except TypeError as exc:
        raise ValueError(f"bad options for preset {name!r}: {exc}") from None
