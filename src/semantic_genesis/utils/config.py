"""Configs are dataclasses; they serialise to YAML or JSON and are stored with every output.

``to_dict`` turns a (nested) dataclass into plain types; ``save_config`` writes it next to the
outputs it produced; ``load_config`` rebuilds it and refuses unknown keys with a clear error, so a
typo in a YAML file never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from semantic_genesis.utils.atomic import atomic_write_text
from semantic_genesis.utils.errors import SemgenError

T = TypeVar("T")


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def setting(default: Any = dataclasses.MISSING, *, ge: float | None = None,
            gt: float | None = None, le: float | None = None, lt: float | None = None,
            choices: tuple[Any, ...] | None = None, help: str = "",
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field with its valid range and help, checked by :func:`validate`.

    ``ge``/``gt``/``le``/``lt`` bound a number (or every item of a tuple of numbers);
    ``choices`` lists the accepted values. Floats must also be finite.
    """
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "help": help}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _range_problem(value: Any, meta: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    for key, test, words in (("ge", lambda v, b: v >= b, "at least"),
                             ("gt", lambda v, b: v > b, "greater than"),
                             ("le", lambda v, b: v <= b, "at most"),
                             ("lt", lambda v, b: v < b, "less than")):
        bound = meta.get(key)
        if bound is not None and not test(value, bound):
            return f"must be {words} {bound}"
    return None


def _type_problem(tp: Any, value: Any) -> str | None:
    """A short reason when ``value`` does not fit the annotation ``tp`` (simple types only)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        problems = [_type_problem(a, value) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else problems[0]
    if tp is bool:
        return None if isinstance(value, bool) else "must be true or false"
    if tp is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return None if ok else "must be a whole number"
    if tp is float:
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if tp is str:
        return None if isinstance(value, str) else "must be text"
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return "must be a list"
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(args) != len(value):
            return f"must have {len(args)} values"
        for a, v in zip(args, value, strict=True):
            problem = _type_problem(a, v)
            if problem:
                return f"each value {problem}"
    return None


def validate(config: Any, where: str | Path | None = None) -> None:
    """Check every field of a dataclass config against its type and its :func:`setting` range.

    Raises one :class:`SemgenError` naming the field, its value and the accepted range, so the
    CLI, YAML files and the Python API are all checked the same way, before any work starts.
    """
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        problem = _field_problem(f, hints.get(f.name, Any), value)
        if problem:
            raise SemgenError(f"{type(config).__name__}.{f.name} = {value!r}: {problem}", where)


def _field_problem(f: dataclasses.Field, tp: Any, value: Any) -> str | None:
    """Why ``value`` does not fit field ``f`` (annotation ``tp``, :func:`setting` metadata)."""
    problem = _type_problem(tp, value)
    meta = f.metadata or {}
    if problem is None and meta.get("choices") is not None and value not in meta["choices"]:
        problem = "must be one of " + ", ".join(map(str, meta["choices"]))
    if problem is None:
        items = value if isinstance(value, (tuple, list)) else (value,)
        problem = next((p for p in (_range_problem(v, meta) for v in items) if p), None)
    return problem


def check_setting(cls: type, name: str, value: Any, where: str | Path | None = None) -> Any:
    """``value`` turned into the type of ``cls``'s field ``name`` and checked alone (type,
    choices, range): one :class:`SemgenError` naming ``where`` when it is unknown or wrong.

    Lets a caller blame the right source (a file, a ``--set``) before values are merged.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        raise SemgenError(f"unknown setting {name!r} for {cls.__name__}; known: "
                          f"{', '.join(sorted(fields))}", where)
    tp = typing.get_type_hints(cls).get(name, Any)
    value = _coerce(tp, value)
    problem = _field_problem(fields[name], tp, value)
    if problem:
        raise SemgenError(f"{cls.__name__}.{name} = {value!r}: {problem}", where)
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """Return a dataclass config as a dict of plain YAML/JSON types."""
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return _plain(config)


def save_config(config: Any, path: str | Path) -> Path:
    """Write ``config`` (a dataclass or dict) to ``path``: YAML for .yaml/.yml, else JSON."""
    data = to_dict(config) if dataclasses.is_dataclass(config) else _plain(config)
    path = Path(path)
    if path.suffix in {".yaml", ".yml"}:
        text = yaml.safe_dump(data, sort_keys=False)
    else:
        text = json.dumps(data, indent=2) + "\n"
    return atomic_write_text(path, text)


def _coerce(tp: Any, value: Any) -> Any:
    """Turn a plain value back into the annotated type (tuples, Paths, nested dataclasses)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value) if len(args) == 1 else value
    if dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return from_dict(tp, value)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v) for v in value)
        return tuple(_coerce(a, v) for a, v in zip(args, value, strict=False))
    if tp is Path and isinstance(value, str):
        return Path(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as text
        try:
            return float(value)
        except ValueError:
            return value
    return value


def from_dict(cls: type[T], data: dict[str, Any], source: str | Path | None = None) -> T:
    """Build the dataclass ``cls`` from ``data``; unknown keys are an error naming ``source``."""
    if not isinstance(data, dict):
        raise SemgenError(f"expected a mapping of settings, got {type(data).__name__}", source)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SemgenError(
            f"unknown setting(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known: {', '.join(sorted(fields))}",
            source,
        )
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(hints.get(k, Any), v) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except SemgenError as exc:  # a field failed validation: name the file it came from
        if source is None or exc.path is not None:
            raise
        raise SemgenError(str(exc), source) from None


def read_yaml(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """The mapping in a YAML (or JSON) file; one clear error naming the file (and ``what`` it
    should be) when it is missing or not valid YAML. An empty file is an empty mapping."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SemgenError(f"{what} not found", path) from None
    except IsADirectoryError:
        raise SemgenError(f"is a folder, not a {what}", path) from None
    except UnicodeDecodeError:
        raise SemgenError(f"not a text file: a {what} is YAML or JSON", path) from None
    except yaml.YAMLError as exc:
        raise SemgenError(f"not valid YAML/JSON ({exc.__class__.__name__})", path) from None
    return data or {}


def load_config(cls: type[T], path: str | Path) -> T:
    """Read a YAML or JSON file written by :func:`save_config` back into ``cls``."""
    return from_dict(cls, read_yaml(path), source=Path(path))
