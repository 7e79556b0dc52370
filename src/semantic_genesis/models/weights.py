"""Load any supported weights into a model and say exactly what happened (method.md §6, §12.6).

Sources understood by :func:`load_weights`:

- our checkpoints: a dict with ``state_dict`` and ``model_card`` (design.md, file contracts);
- the official Semantic Genesis ``.pt``: a dict with ``state_dict``; keys possibly prefixed by
  ``module.`` (DataParallel) and/or ``classficationNet.`` (sic); ``projection_head*`` and
  ``prototypes*`` keys are leftovers of other wrappers and are dropped;
- the Models Genesis ``.pt`` (``module.`` prefix), any plain state dict, and dicts that keep the
  weights under ``model_state_dict`` or ``model``;
- the official Keras ``.h5`` (:mod:`semantic_genesis.models.keras`);
- Hugging Face-format weights (``config.json`` + ``model.safetensors``; ``hf_weights``).

Unlike the reference README loader, which prints "not found" and carries on with random weights
(bug §9.24), every key ends up in exactly one list of the :class:`LoadReport`. Every ``.pt`` is
read through :func:`~semantic_genesis.models.checkpoint.read_checkpoint` (``weights_only=True``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semantic_genesis.models.build import builtin_builder, check_fits
from semantic_genesis.models.build import guess_model_kwargs as guess_model_kwargs  # re-export
from semantic_genesis.models.card import ModelCard
from semantic_genesis.models.checkpoint import nonfinite_tensors, read_checkpoint, unwrap_model
from semantic_genesis.models.hf_weights import is_hf_source, read_hf_files
from semantic_genesis.models.keras import read_keras_h5
from semantic_genesis.models.unet import HEAD_PREFIX
from semantic_genesis.utils.errors import SemgenError

#: Prefixes stripped from source keys (DataParallel, the official SG wrapper, torch.compile).
STRIP_PREFIXES = ("module.", "classficationNet.", "classificationNet.", "_orig_mod.")
#: Substrings of keys that belong to other wrappers and are always dropped.
DROP_MARKERS = ("projection_head", "prototypes")
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
_RUNNING = (".running_mean", ".running_var", ".num_batches_tracked")
_H5_SUFFIXES = (".h5", ".hdf5", ".keras")


@dataclass
class SourceWeights:
    """Weights read from a file or dict, keys already in reference naming."""

    state: dict[str, torch.Tensor]
    source: str
    format: str
    card: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)
    extras: list[str] = field(default_factory=list)  # other top-level entries (epoch, optimizer)
    nonfinite: list[str] = field(default_factory=list)  # tensors holding NaN or infinity


@dataclass
class LoadReport:
    """What :func:`load_weights` did with every key.

    Source keys land in exactly one of ``matched``, ``adapted``, ``dropped`` (on purpose, with
    the reason), ``unexpected`` or ``shape_mismatch``; ``missing`` lists the model's keys that
    kept their initial values; ``nonfinite`` the source tensors holding NaN or infinity. ``ok``
    means nothing unexpected, missing, mis-shaped or non-finite.
    """

    source: str = ""
    format: str = ""
    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    adapted: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    nonfinite: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatch or self.nonfinite)

    def problems(self) -> list[str]:
        """One line per kind of problem (empty when ``ok``)."""
        out = []
        if self.nonfinite:
            out.append(f"{len(self.nonfinite)} holding NaN or infinity ({_few(self.nonfinite)})")
        if self.missing:
            out.append(f"{len(self.missing)} missing ({_few(self.missing)})")
        if self.unexpected:
            out.append(f"{len(self.unexpected)} unexpected ({_few(self.unexpected)})")
        if self.shape_mismatch:
            items = [f"{k} {tuple(s)} vs model {tuple(t)}" for k, s, t in self.shape_mismatch]
            out.append(f"{len(items)} with a different shape ({_few(items)})")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"load report: {self.source} [{self.format}]"]
        rows = [
            ("matched", self.matched),
            ("adapted", [f"{k}: {h}" for k, h in self.adapted]),
            ("dropped", _by_reason(self.dropped)),
            ("missing", self.missing),
            ("unexpected", self.unexpected),
            (
                "shape mismatch",
                [f"{k}: {tuple(s)} vs model {tuple(t)}" for k, s, t in self.shape_mismatch],
            ),
            ("NaN / inf", self.nonfinite),
        ]
        counts = {
            "matched": len(self.matched),
            "adapted": len(self.adapted),
            "dropped": len(self.dropped),
        }
        for name, items in rows:
            lines.append(f"  {name:<15}{counts.get(name, len(items)):>6}")
            if name != "matched":
                lines.extend(f"  {'':<21}{item}" for item in _cap(items))
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _few(items: list[str], n: int = 4) -> str:
    return ", ".join(items[:n]) + (f", ... {len(items) - n} more" if len(items) > n else "")


def _cap(items: list[str], n: int = 8) -> list[str]:
    return items[:n] + ([f"... {len(items) - n} more"] if len(items) > n else [])


def _by_reason(dropped: list[tuple[str, str]]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for key, why in dropped:
        groups.setdefault(why, []).append(key)
    return [f"{why}: {len(keys)} ({_few(keys, 2)})" for why, keys in groups.items()]


def adapt_input_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a first-conv weight ``(out, c, *k)`` to ``in_channels`` inputs, as timm does.

    From one channel: repeat and divide by ``in_channels``, so identical input channels give
    exactly the original response. To one channel: sum. Otherwise: cycle the channels and
    rescale by ``c / in_channels``.
    """
    src = weight.shape[1]
    if src == in_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = math.ceil(in_channels / src)
    tiled = weight.repeat(1, repeats, *([1] * (weight.dim() - 2)))[:, :in_channels]
    return tiled * (src / in_channels)


def _check_card(card: Any, source: str) -> None:
    """Refuse a model card with wrong field types or values, or one asking for a network that
    would not fit in memory, before anything is built from it."""
    parsed = ModelCard.from_dict(card, None if source.startswith("<") else source)
    kwargs = {k: v for k, v in parsed.model_kwargs().items() if k != "name"}
    build = builtin_builder(parsed.architecture, **kwargs)
    if build is not None:
        shown = ", ".join(f"{k}={kwargs[k]}" for k in ("width", "n_classes", "in_channels",
                                                       "out_channels"))
        check_fits(build, f"model card fields {shown} ask for a {parsed.architecture} that is "
                   "too large (one of them is wrong)", source)


def _unwrap(obj: dict[str, Any], source: str) -> SourceWeights:
    """Find the state dict inside a checkpoint dict; returns it as ``state`` (not normalised)."""
    card = obj.get("model_card")
    if card is not None:
        _check_card(card, source)
    for key in _WRAPPER_KEYS:
        if isinstance(obj.get(key), dict):
            fmt = "semgen checkpoint" if card else f"checkpoint dict ('{key}')"
            extras = [k for k in obj if k not in (key, "model_card")]
            return SourceWeights(obj[key], source, fmt, card, extras=extras)
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return SourceWeights(obj, source, "plain state dict")
    raise SemgenError(
        "no weights found: expected a state dict or a dict with one of "
        f"{', '.join(_WRAPPER_KEYS)} (found keys {sorted(obj)[:6]})",
        source,
    )


def _normalise(raw: dict[str, Any], src: SourceWeights) -> None:
    """Strip wrapper prefixes, drop wrapper leftovers, fill ``src.state`` in place."""
    stripped: dict[str, int] = {}
    for key, value in raw.items():
        name = key
        while name.startswith(STRIP_PREFIXES):
            prefix = next(p for p in STRIP_PREFIXES if name.startswith(p))
            stripped[prefix] = stripped.get(prefix, 0) + 1
            name = name[len(prefix) :]
        if any(marker in name for marker in DROP_MARKERS):
            src.dropped.append((key, "wrapper leftover (projection head / prototypes)"))
        elif not isinstance(value, torch.Tensor):
            src.dropped.append((key, "not a tensor"))
        elif name in src.state:
            src.dropped.append((key, "duplicate of another key once prefixes are stripped"))
        else:
            src.state[name] = value
    src.notes.extend(f"stripped prefix '{p}' from {n} keys" for p, n in stripped.items())


def source_from_state(
    state: dict[str, Any], source: str, fmt: str, card: dict[str, Any] | None = None
) -> SourceWeights:
    """:class:`SourceWeights` from a state dict read by another reader (safetensors, in
    ``models.hf_weights``): the card checked, the keys normalised, non-finite tensors listed."""
    if card is not None:
        _check_card(card, source)
    src = SourceWeights({}, source, fmt, card)
    _normalise(state, src)
    src.nonfinite = nonfinite_tensors(src.state)
    return src


def read_weights(
    path_or_state: str | Path | dict[str, Any], map_location: str | torch.device = "cpu"
) -> SourceWeights:
    """Read weights from any supported source into reference key names (see module doc).

    Hugging Face-format weights (a folder, a ``.safetensors`` file, ``hf-hub:ORG/NAME``) are
    read by :func:`~semantic_genesis.models.hf_weights.read_hf_files`, without pickle.
    """
    if isinstance(path_or_state, dict):
        src = _unwrap(path_or_state, "<state dict>")
    else:
        if is_hf_source(path_or_state):
            state, card, fmt = read_hf_files(path_or_state)
            return source_from_state(state, str(path_or_state), fmt, card)
        path = Path(path_or_state)
        if path.suffix.lower() in _H5_SUFFIXES or _is_hdf5(path):
            state, notes, dropped, adapted = read_keras_h5(path)
            src = SourceWeights(state, str(path), "Keras .h5", None, notes, dropped, adapted)
            src.nonfinite = nonfinite_tensors(state)
            return src
        src = _unwrap(read_checkpoint(path, map_location), str(path))
    raw, src.state = src.state, {}
    _normalise(raw, src)
    src.nonfinite = nonfinite_tensors(src.state)
    return src


def _is_hdf5(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def load_weights(
    model: nn.Module,
    path_or_state: str | Path | dict[str, Any] | SourceWeights,
    strict: bool = False,
    map_location: str | torch.device = "cpu",
    allow_nonfinite: bool = False,
) -> LoadReport:
    """Copy weights into ``model`` and return a :class:`LoadReport`.

    Keys are matched by name after the normalisation of :func:`read_weights`. The first conv is
    adapted when only its input channels differ (:func:`adapt_input_conv`). Head keys
    (``clc_out.*``) that the model lacks or shapes differently are dropped, so a U-Net or a
    new-class head can start from a YNet checkpoint; BN running statistics are dropped for
    norms that keep none.

    Raises:
        SemgenError: unreadable source; weights holding NaN or infinity (unless
            ``allow_nonfinite``: then they load and the report names them, as ``semgen info``
            shows); or ``strict`` and some key is missing, unexpected or mis-shaped. The model
            is then left untouched; the exception's ``report`` holds the :class:`LoadReport`.

    A model wrapped by DDP, DataParallel or ``torch.compile`` is loaded through its inner model.
    """
    src = (
        path_or_state
        if isinstance(path_or_state, SourceWeights)
        else read_weights(path_or_state, map_location)
    )
    model = unwrap_model(model)
    target = model.state_dict()
    first_conv = f"{getattr(model, 'first_conv', '')}.weight"
    report = _new_report(src)
    loaded = _sort_keys(src, target, first_conv, report)
    report.missing = [k for k in target if k not in loaded]
    _refuse(report, src, type(model).__name__, strict, allow_nonfinite)
    model.load_state_dict(loaded, strict=False)
    return report


def _new_report(src: SourceWeights) -> LoadReport:
    """Start a report carrying what reading the source already found (and its model card)."""
    report = LoadReport(
        source=src.source,
        format=src.format,
        dropped=list(src.dropped),
        notes=list(src.notes),
        nonfinite=list(src.nonfinite),
    )
    if src.card:
        report.notes.append(
            "model card: "
            + ", ".join(
                f"{k}={src.card.get(k)}"
                for k in ("architecture", "width", "in_channels", "n_classes", "norm", "head")
            )
        )
    return report


def _sort_keys(
    src: SourceWeights, target: dict[str, torch.Tensor], first_conv: str, report: LoadReport
) -> dict[str, torch.Tensor]:
    """Return the tensors to load, recording every other source key in ``report``."""
    verdicts = {k: _verdict(k, v, target, first_conv) for k, v in src.state.items()}
    # a head layer is taken whole or not at all (e.g. a new class count re-initialises fc1 only)
    bad_heads = {
        _module_of(k)
        for k, v in verdicts.items()
        if k.startswith(HEAD_PREFIX) and v in ("shape", "unexpected")
    }
    loaded: dict[str, torch.Tensor] = {}
    for key, value in src.state.items():
        verdict, want = verdicts[key], target.get(key)
        if key.startswith(HEAD_PREFIX) and _module_of(key) in bad_heads:
            layer = _module_of(key) + "."
            has_layer = any(k.startswith(layer) for k in target)
            why = (
                "model's head layer has other shapes"
                if has_layer
                else "model has no such head layer"
            )
            report.dropped.append((key, why))
        elif verdict == "match":
            loaded[key] = value
            if key in src.adapted:
                report.adapted.append((key, src.adapted[key]))
            else:
                report.matched.append(key)
        elif verdict == "adapt":
            loaded[key] = adapt_input_conv(value, want.shape[1])
            how = f"input channels {value.shape[1]} -> {want.shape[1]} (repeated and rescaled, "
            report.adapted.append((key, how + "as timm's adapt_input_conv)"))
        elif verdict == "stats":
            report.dropped.append((key, "model's norm keeps no running statistics"))
        elif verdict == "shape":
            report.shape_mismatch.append((key, tuple(value.shape), tuple(want.shape)))
        else:
            report.unexpected.append(key)
    return loaded


def _refuse(
    report: LoadReport, src: SourceWeights, model_name: str, strict: bool, allow_nonfinite: bool
) -> None:
    """Raise (with the report attached) when the weights must not be loaded."""
    if report.nonfinite and not allow_nonfinite:
        error = SemgenError(
            f"the weights hold NaN or infinite values in {len(report.nonfinite)} tensor(s) "
            f"({_few(report.nonfinite, 3)}): refusing to load them",
            src.source,
        )
    elif strict and (report.missing or report.unexpected or report.shape_mismatch):
        card = ""
        if src.card:
            card = "; the model card says " + ", ".join(
                f"{k}={src.card.get(k)}" for k in ("architecture", "width", "n_classes", "norm")
            )
            card += ": build it with load_model(PATH), or pass strict=False to load what fits"
        problems = "; ".join(p for p in report.problems() if "NaN" not in p)
        error = SemgenError(
            f"weights do not fit {model_name} (strict): {problems}{card}", src.source
        )
    else:
        return
    error.report = report  # type: ignore[attr-defined]
    raise error


def _verdict(
    key: str, value: torch.Tensor, target: dict[str, torch.Tensor], first_conv: str
) -> str:
    """``match``, ``adapt`` (first conv, other input channels), ``stats`` (running statistics
    the model's norm does not keep), ``shape`` or ``unexpected``."""
    want = target.get(key)
    if want is None:
        has_norm = _module_of(key) + ".weight" in target
        return "stats" if key.endswith(_RUNNING) and has_norm else "unexpected"
    if value.shape == want.shape:
        return "match"
    same_but_inputs = (
        value.dim() == want.dim()
        and value.shape[0] == want.shape[0]
        and value.shape[2:] == want.shape[2:]
    )
    return "adapt" if key == first_conv and same_but_inputs else "shape"


def _module_of(key: str) -> str:
    return key.rsplit(".", 1)[0]
