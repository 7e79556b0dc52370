"""Built-in target tasks for the demo, the tests and a first look at a new machine.

- ``phantom-ncc``: nodule false-positive reduction on the synthetic phantoms
  (``semgen phantoms``): classify the candidates of their LUNA16-format ``candidates.csv``
  (nodules vs look-alikes such as vessel crossings). Recipe ncc.
- ``phantom-ncs``: nodule segmentation on the same phantoms (their ``labels/``). Recipe ncs.
- ``lung-tumour``: real chest CT from the pyradiomics 3.0.1 sample data (``semgen samples``):
  train on patches of one CT, test on the other. Two scans with one tumour each: one test case
  is an anecdote, not a benchmark.
- ``mni152-tissue``: real brain MR, the MNI152 (ICBM 2009) T1 template shipped with nilearn;
  grey matter / white matter / other from its probability maps (arg-max, background where both
  are below a threshold), down-sampled for the CPU. One brain: train on the left hemisphere,
  validate on the front and test on the back of the right one.

``prepare_target(name, root, **options)`` writes (once) a data folder in the layout
``semgen finetune`` reads and returns it with the task and the settings to use.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semantic_genesis.io.volume import Volume
from semantic_genesis.utils.atomic import atomic_write_text, write_json
from semantic_genesis.utils.errors import SemgenError

READY = "target.json"


@dataclass
class TargetData:
    """A prepared target: where its data is, which task, which settings, what to tell users."""

    name: str
    data_dir: Path
    task: str
    settings: dict[str, Any] = field(default_factory=dict)  # FinetuneConfig fields
    notes: str = ""


def _phantoms(root: Path, data: str = "", **options: Any) -> Path:
    """An existing phantoms folder (``data``) or one generated under ``root`` (once)."""
    if data:
        path = Path(data)
        if not (path / "candidates.csv").is_file():
            raise SemgenError("not a phantoms folder (no candidates.csv)", path)
        return path
    from semantic_genesis.data.phantoms import PhantomConfig, generate_phantoms
    from semantic_genesis.utils.config import from_dict, to_dict

    config = from_dict(PhantomConfig, options, source="phantom target options")
    tag = hashlib.sha1(json.dumps(to_dict(config), sort_keys=True).encode()).hexdigest()[:10]
    path = root / f"phantoms-{tag}"
    if not (path / READY).is_file():
        generate_phantoms(path, config)
        write_json(path / READY, {"phantoms": options})
    return path


def phantom_ncc(root: Path, **options: Any) -> TargetData:
    """Nodule false-positive reduction on the phantoms (classification, AUC)."""
    path = _phantoms(root, **options)
    return TargetData(
        "phantom-ncc",
        path,
        "classify",
        {"recipe": "ncc", "modality": "ct"},
        "synthetic chest-CT phantoms: candidates are nodules and look-alike "
        "false positives (LUNA16 candidates.csv format).",
    )


def phantom_ncs(root: Path, **options: Any) -> TargetData:
    """Nodule segmentation on the phantoms (IoU)."""
    path = _phantoms(root, **options)
    return TargetData(
        "phantom-ncs",
        path,
        "segment",
        {"recipe": "ncs", "modality": "ct"},
        "synthetic chest-CT phantoms: nodule masks, sliding-window test on whole scans.",
    )


def lung_tumour(root: Path, train_case: str = "lung2", cache_dir: str = "") -> TargetData:
    """The two pyradiomics chest CTs: train on one, test on the other (say how small it is)."""
    from semantic_genesis.data.samples import fetch_samples
    from semantic_genesis.io import read_volume, write_nifti

    cases = ("lung1", "lung2")
    if train_case not in cases:
        raise SemgenError(f"train_case must be lung1 or lung2, got {train_case!r}")
    if not isinstance(cache_dir, str):
        raise SemgenError(f"cache_dir must be text, got {cache_dir!r}")
    path = root / "lung-tumour"
    if not (path / READY).is_file():
        files = fetch_samples(Path(cache_dir) if cache_dir else None)
        for case in cases:
            image = read_volume(files[f"{case}_image"])
            label = read_volume(files[f"{case}_label"])
            write_nifti(image, path / "images" / f"{case}.nii.gz")
            label.array = (np.asarray(label.array) > 0).astype(np.uint8)
            write_nifti(label, path / "labels" / f"{case}.nii.gz")
        test_case = next(c for c in cases if c != train_case)
        atomic_write_text(path / "split.csv", f"id,split\n{train_case},train\n{test_case},test\n")
        write_json(
            path / READY,
            {"source": "pyradiomics 3.0.1 sample data", "train": train_case, "test": test_case},
        )
    test_case = next(c for c in cases if c != train_case)
    return TargetData(
        "lung-tumour",
        path,
        "segment",
        {"recipe": "ncs", "modality": "ct", "val_patches_per_case": 16},
        f"real CT (pyradiomics samples), but only TWO scans: trained on patches "
        f"of {train_case}, tested on {test_case} (one tumour each, no separate "
        "validation scan). One test case is an anecdote, not a benchmark.",
    )


def mni152_tissue(root: Path, spacing_mm: float = 3.0, threshold: float = 0.5) -> TargetData:
    """Grey / white matter / other on the MNI152 template, split into three brain parts."""
    from semantic_genesis.data.samples import mni152
    from semantic_genesis.io import read_volume, resample_volume, write_nifti

    for name, value, lo, hi in (("spacing_mm", spacing_mm, 0.5, 10.0),
                                ("threshold", threshold, 0.0, 1.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            lo < value <= hi
        ):
            raise SemgenError(f"mni152-tissue {name} = {value!r}: must be a number in "
                              f"({lo:g}, {hi:g}]")
    path = root / f"mni152-tissue-{spacing_mm:g}mm"
    if not (path / READY).is_file():
        files = mni152()
        t1, gm, wm = (
            resample_volume(read_volume(files[k]), (spacing_mm,) * 3) for k in ("t1", "gm", "wm")
        )
        prob = np.stack([np.asarray(gm.array, np.float32), np.asarray(wm.array, np.float32)])
        labels = np.where(prob.max(axis=0) >= threshold, prob.argmax(axis=0) + 1, 0)
        mid_x, mid_y = t1.shape[0] // 2, t1.shape[1] // 2
        parts = {
            "mni_left": (slice(0, mid_x), slice(None)),
            "mni_right_a": (slice(mid_x, None), slice(0, mid_y)),
            "mni_right_b": (slice(mid_x, None), slice(mid_y, None)),
        }
        for name, (sx, sy) in parts.items():
            corner = np.array([sx.start or 0, sy.start or 0, 0], dtype=float)
            origin = tuple(t1.voxel_to_world(corner)[0])
            for folder, arr in (("images", t1.array), ("labels", labels.astype(np.uint8))):
                write_nifti(
                    Volume(
                        np.ascontiguousarray(np.asarray(arr)[sx, sy]),
                        t1.spacing,
                        origin,
                        t1.direction,
                    ),
                    path / folder / f"{name}.nii.gz",
                )
        atomic_write_text(
            path / "split.csv", "id,split\nmni_left,train\nmni_right_a,val\nmni_right_b,test\n"
        )
        write_json(
            path / READY,
            {
                "source": "nilearn MNI152 (ICBM 2009) template",
                "spacing_mm": spacing_mm,
                "threshold": threshold,
            },
        )
    return TargetData(
        "mni152-tissue",
        path,
        "segment",
        {"recipe": "bms", "modality": "mr", "patch": [32, 32, 32]},
        f"real MR, but one population-average brain (MNI152) at {spacing_mm:g} mm: "
        "trained on the left hemisphere, validated and tested on two halves of "
        f"the right; labels = arg-max of the GM/WM maps, background below "
        f"{threshold:g}.",
    )


TARGETS: dict[str, Callable[..., TargetData]] = {
    "phantom-ncc": phantom_ncc,
    "phantom-ncs": phantom_ncs,
    "lung-tumour": lung_tumour,
    "mni152-tissue": mni152_tissue,
}


#: the task of each built-in target, known before any data is made
TARGET_TASKS = {"phantom-ncc": "classify", "phantom-ncs": "segment", "lung-tumour": "segment",
                "mni152-tissue": "segment"}


def check_target(name: str, task: str | None = None, options: dict[str, Any] | None = None
                 ) -> None:
    """Refuse an unknown target, one used with the other task, or bad options, before any
    data is made."""
    if name not in TARGETS:
        raise SemgenError(f"unknown target {name!r}; built in: {', '.join(TARGETS)}")
    if task is not None and TARGET_TASKS[name] != task:
        raise SemgenError(f"target {name!r} is a {TARGET_TASKS[name]} task; "
                          f"use --task {TARGET_TASKS[name]}")
    options = options or {}
    try:
        inspect.signature(TARGETS[name]).bind(Path("."), **options)
    except TypeError as exc:
        raise SemgenError(f"bad options for target {name!r}: {exc}") from None
    if name.startswith("phantom-") and not options.get("data"):
        from semantic_genesis.data.phantoms import PhantomConfig
        from semantic_genesis.utils.config import from_dict

        try:
            from_dict(PhantomConfig, options)
        except SemgenError as exc:
            raise SemgenError(f"target {name!r} options: {exc.reason}") from None


def prepare_target(name: str, root: str | Path, **options: Any) -> TargetData:
    """Prepare the built-in target ``name`` under ``root`` (once) and describe it."""
    check_target(name, options=options)
    return TARGETS[name](Path(root), **options)
