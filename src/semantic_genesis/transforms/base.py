"""What every perturbation shares: batching, seeded per-sample randomness, boxes.

A perturbation works on a batch ``(N, C, X, Y, Z)`` of cubes in [0, 1], on CPU or GPU, and draws
its own parameters for every sample from a seeded :class:`torch.Generator` (TorchIO's split: first
``sample`` the parameters, then ``apply`` them). The parameters are returned as a dict of tensors
whose first axis is the sample, so they can be logged and tested; bulk per-voxel randomness (noise
fill, the order of shuffled voxels) is drawn in ``apply`` from the same generator and not kept.

A single cube, numpy or torch, ``(X, Y, Z)`` or ``(C, X, Y, Z)``, is accepted too and comes back
in the same form.
"""

from __future__ import annotations

import numpy as np
import torch

Params = dict[str, torch.Tensor]


def rand(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str
) -> torch.Tensor:
    """Uniform [0, 1) floats drawn from ``generator`` (on the generator's device), on ``device``."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def randint(
    low: torch.Tensor | int,
    high: torch.Tensor | int,
    shape: tuple[int, ...],
    generator: torch.Generator | None,
    device: torch.device | str,
) -> torch.Tensor:
    """Integers uniform in ``[low, high]`` (both inclusive, as Python's ``random.randint``);
    ``low``/``high`` may be tensors broadcasting to ``shape`` (a range per sample)."""
    low = torch.as_tensor(low, device=device)
    high = torch.as_tensor(high, device=device)
    span = (high - low + 1).clamp(min=1)
    draw = (rand(shape, generator, device) * span).long()
    return low + torch.minimum(draw, span - 1)


def box_mask(
    corner: torch.Tensor, size: torch.Tensor, enabled: torch.Tensor, spatial: tuple[int, int, int]
) -> torch.Tensor:
    """Union of axis-aligned boxes as a boolean mask ``(N, 1, X, Y, Z)``.

    Args:
        corner: ``(N, B, 3)`` first voxel of each box.
        size: ``(N, B, 3)`` side lengths.
        enabled: ``(N, B)`` which boxes exist.
        spatial: ``(X, Y, Z)``.
    """
    axes = []
    for a, length in enumerate(spatial):
        ar = torch.arange(length, device=corner.device)
        lo = corner[..., a, None]
        m = (ar >= lo) & (ar < lo + size[..., a, None])  # (N, B, L)
        if a == 0:
            m &= enabled[..., None]  # a missing box is empty
        axes.append(m)
    mx, my, mz = axes
    # outer product in float: much faster than a broadcast boolean "and" on CPU
    plane = (mx[..., :, None] & my[..., None, :]).float()  # (N, B, X, Y)
    mask = plane[..., None] * mz[..., None, None, :].float()  # (N, B, X, Y, Z)
    if mask.shape[1] > 1:
        mask = mask.amax(dim=1, keepdim=True)
    return mask > 0.5


def sample_boxes(
    n: int,
    spatial: tuple[int, ...],
    side_lo: torch.Tensor,
    side_hi: torch.Tensor,
    n_boxes: int,
    continue_prob: float,
    first_always: bool,
    margin: int,
    generator: torch.Generator | None,
    device: torch.device | str,
) -> Params:
    """Random boxes as in the reference painting: sides uniform in ``[side_lo, side_hi]`` per
    axis, corner uniform in ``[margin, dim - side - margin]``, box b present only if the
    ``continue_prob`` draws up to it succeeded. Returns ``corner``, ``size`` ``(N, B, 3)`` and
    ``enabled`` ``(N, B)``."""
    shape = (n, n_boxes, 3)
    size = randint(side_lo.to(device), side_hi.to(device), shape, generator, device)
    dims = torch.tensor(spatial, device=device)
    corner = randint(margin, dims - size - margin, shape, generator, device)
    enabled = continuation(n, n_boxes, continue_prob, first_always, generator, device)
    return {"corner": corner, "size": size, "enabled": enabled}


def continuation(
    n: int,
    n_boxes: int,
    prob: float,
    first_always: bool,
    generator: torch.Generator | None,
    device: torch.device | str,
) -> torch.Tensor:
    """``(N, B)`` booleans of the reference's ``while cnt > 0 and random() < prob`` loop: box b
    exists only if every draw up to it succeeded (method.md §3.1)."""
    ok = rand((n, n_boxes), generator, device) < prob
    if first_always:
        ok[:, 0] = True
    return torch.cumprod(ok.long(), dim=1).bool()


class Perturbation:
    """Base class: a perturbation applied with probability ``prob`` per sample.

    Subclasses set ``name`` and implement :meth:`sample` and :meth:`apply`.

    Args:
        prob: probability that a sample is perturbed (the others pass through unchanged).
    """

    name = "perturbation"

    def __init__(self, prob: float = 1.0) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        self.prob = prob

    def sample(self, x: torch.Tensor, generator: torch.Generator | None) -> Params:
        """Draw this perturbation's parameters for every sample of the batch ``x``."""
        raise NotImplementedError

    def apply(
        self, x: torch.Tensor, params: Params, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Perturb every sample of ``x`` with ``params``; never modifies ``x`` in place."""
        raise NotImplementedError

    def apply_rows(
        self,
        src: torch.Tensor,
        out: torch.Tensor,
        rows: torch.Tensor,
        params: Params,
        generator: torch.Generator | None,
    ) -> None:
        """``out[rows] = apply(src[rows], params)`` along the batch axis; ``src`` may be
        ``out`` (in place). The presets perturb chosen samples of a batch they own with it.
        On CPU, into a contiguous ``out``, :meth:`apply_in_rows` works on the rows where they
        are (no intermediate batch, no copy back) where the perturbation has such a path;
        otherwise the rows are copied out, perturbed and copied back."""
        in_place = out.device.type == "cpu" and out.is_contiguous()
        if in_place and self.apply_in_rows(src, out, rows.tolist(), params, generator):
            return
        put_rows(out, rows, self.apply(take_rows(src, rows), params, generator))

    def apply_in_rows(
        self,
        src: torch.Tensor,
        out: torch.Tensor,
        rows: list[int],
        params: Params,
        generator: torch.Generator | None,
    ) -> bool:
        """:meth:`apply_rows` on CPU into a contiguous ``out``, where the rows are; returns
        whether it did (without touching ``out`` if not). The sg/mg choices override it."""
        return False

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, Params]:
        """Perturb a batch ``(N, C, X, Y, Z)``; returns the output and the parameters.

        ``params["active"]`` ``(N,)`` says which samples were perturbed; the other entries have one
        row per *active* sample, in batch order.
        """
        if x.ndim != 5:
            raise ValueError(f"expected a batch (N, C, X, Y, Z), got shape {tuple(x.shape)}")
        n = x.shape[0]
        if self.prob >= 1.0:
            active = torch.ones(n, dtype=torch.bool, device=x.device)
        else:
            active = rand((n,), generator, x.device) < self.prob
        if bool(active.all()):
            params = self.sample(x, generator)
            out = self.apply(x, params, generator)
        else:
            idx = active.nonzero().squeeze(1)
            out = x.clone()
            params = {}
            if idx.numel():
                sub = x[idx]
                params = self.sample(sub, generator)
                out[idx] = self.apply(sub, params, generator)
        params["active"] = active
        return out, params

    def __call__(
        self,
        x: torch.Tensor | np.ndarray,
        generator: torch.Generator | None = None,
        *,
        return_params: bool = False,
    ):
        """Perturb a batch or a single cube (numpy or torch); see :meth:`forward`."""
        batch, restore = as_batch(x)
        out, params = self.forward(batch, generator)
        out = restore(out)
        return (out, params) if return_params else out

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


def take_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``x[idx]`` along the batch axis; ``index_select`` copies whole samples (on CPU about
    10x faster than advanced indexing, which computes an offset per element)."""
    return x.index_select(0, idx)


def put_rows(out: torch.Tensor, idx: torch.Tensor, values: torch.Tensor) -> None:
    """``out[idx] = values`` along the batch axis; on CPU one copy per sample is several times
    faster than ``index_put_``/``index_copy_``."""
    if out.device.type != "cpu":
        out.index_copy_(0, idx, values)
        return
    for j, i in enumerate(idx.tolist()):
        out[i].copy_(values[j])


def copy_rows(src: torch.Tensor, out: torch.Tensor, rows: list[int]) -> None:
    """``out[r] = src[r]`` for each ``r`` of ``rows``; nothing to do when ``src`` is ``out``."""
    if src is not out:
        for r in rows:
            out[r].copy_(src[r])


def as_batch(x: torch.Tensor | np.ndarray):
    """A float32 batch ``(N, C, X, Y, Z)`` from a batch or a single cube, and the function that
    turns a result back into the caller's form (numpy stays numpy, a single cube stays single)."""
    is_numpy = isinstance(x, np.ndarray)
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)) if is_numpy else x
    ndim = t.ndim
    if ndim not in (3, 4, 5):
        raise ValueError(f"expected (X, Y, Z), (C, X, Y, Z) or (N, C, X, Y, Z), got {t.shape}")
    if not t.is_floating_point():
        t = t.float()
    batch = t.reshape((1,) * (5 - ndim) + tuple(t.shape))

    def restore(out: torch.Tensor):
        out = out.reshape(t.shape)
        return out.cpu().numpy() if is_numpy else out

    return batch, restore


class BoxPerturbation(Perturbation):
    """A perturbation drawn as random boxes (in-/out-painting): subclasses say the side range
    per axis (:meth:`side_range`) and whether the first box always exists (``first_always``);
    they set ``n_boxes``, ``continue_prob`` and ``margin``."""

    first_always = False
    n_boxes: int
    continue_prob: float
    margin: int

    def side_range(self, dims: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Smallest and largest box side per axis for cube sides ``dims``."""
        raise NotImplementedError

    def sample(self, x: torch.Tensor, generator: torch.Generator | None) -> Params:
        lo, hi = self.side_range(torch.tensor(x.shape[2:]))
        return sample_boxes(
            x.shape[0],
            x.shape[2:],
            lo.clamp(min=1),
            hi.clamp(min=1),
            self.n_boxes,
            self.continue_prob,
            self.first_always,
            self.margin,
            generator,
            x.device,
        )
