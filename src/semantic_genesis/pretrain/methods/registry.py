"""Finding a method by name: the built-in table, ``module:Name``, a file, or an entry point.

``semgen pretrain --method SPEC`` accepts:

- a registered name (``semantic-genesis``, ``models-genesis``, ``inpainting`` ...; built-ins
  register themselves with :func:`register_method` when :mod:`.methods` loads) or one of its
  aliases (``identity`` = ``auto-encoder``, ``shuffling`` = ``context-restoration``: the
  names of earlier versions, kept so their commands and configs still run);
- ``package.module:Name`` (importable, e.g. a file on ``sys.path``) or ``path/to/file.py:Name``,
  where ``Name`` is a :class:`Method` subclass, instance or a function returning one;
- a name another package registers in the entry-point group ``semantic_genesis.methods``
  (``[project.entry-points."semantic_genesis.methods"] my-method = "pkg.mod:MyMethod"``);
- any of these followed by ``+semantics``: the method wrapped in :class:`.Semantics`.

An unknown name is one error that lists the known ones.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from semantic_genesis.pretrain.methods.base import Method
from semantic_genesis.pretrain.methods.semantics import Semantics
from semantic_genesis.utils.errors import SemgenError

#: the entry-point group other packages register their methods in.
ENTRY_POINT_GROUP = "semantic_genesis.methods"
SEMANTICS_SUFFIX = "+semantics"


@dataclass(frozen=True)
class Entry:
    """A registered method: how to make it, the paper it comes from, its other names."""

    name: str
    make: Callable[[], Any]
    paper: str
    aliases: tuple[str, ...] = ()


#: name -> entry, filled by :func:`register_method`.
METHODS: dict[str, Entry] = {}
#: alias -> registered name (``identity`` -> ``auto-encoder`` ...).
ALIASES: dict[str, str] = {}


def register_method(
    name: str, paper: str | None = None, aliases: tuple[str, ...] = ()
) -> Callable[[Any], Any]:
    """Decorator: register a :class:`Method` subclass (made with no arguments) or a function
    returning a method under ``name`` (and ``aliases``); ``paper`` defaults to the class's
    ``paper``."""

    def decorate(obj: Any) -> Any:
        for taken in (name, *aliases):
            owner = ALIASES.get(taken, taken)
            if owner in METHODS and METHODS[owner].make is not obj:
                raise ValueError(f"a method named {taken!r} is already registered")
        METHODS[name] = Entry(name, obj, paper if paper is not None else getattr(obj, "paper", ""),
                              tuple(aliases))
        ALIASES.update(dict.fromkeys(aliases, name))
        return obj

    return decorate


def canonical_name(spec: str) -> str:
    """``spec`` with an alias replaced by the registered name (``shuffling+semantics`` ->
    ``context-restoration+semantics``); anything else unchanged. Two specs name the same
    method when their canonical names are equal."""
    spec = spec.strip()
    base = spec[: -len(SEMANTICS_SUFFIX)] if spec.endswith(SEMANTICS_SUFFIX) else spec
    return ALIASES.get(base, base) + spec[len(base):]


def known_methods() -> list[Entry]:
    """Built-in and registered methods, then entry points (by name, not loaded)."""
    found = list(METHODS.values())
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in METHODS:
            found.append(Entry(ep.name, lambda: None, f"entry point {ep.value}"))
    return found


def _instance(obj: Any, spec: str) -> Method:
    """A :class:`Method` from a subclass, an instance or a factory function."""
    made = obj
    try:
        if isinstance(obj, type) or (callable(obj) and not isinstance(obj, Method)):
            made = obj()
    except Exception as exc:  # a user's method failed to build: one line, naming it
        raise SemgenError(f"--method {spec}: making the method failed: {exc}") from None
    if not isinstance(made, Method):
        raise SemgenError(
            f"--method {spec}: {type(made).__name__} is not a "
            "semantic_genesis.pretrain.methods.Method"
        )
    if not made.name:
        made.name = type(made).__name__.lower()
    return made


def _import(where: str) -> Any:
    """The module ``where`` names: a dotted module path, or a Python file."""
    if not (where.endswith(".py") or "/" in where):
        return importlib.import_module(where)
    path = Path(where)
    if not path.is_file():
        raise SemgenError("no such file (--method FILE.py:Name)", path)
    name = f"semgen_method_{path.stem}_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)  # type: ignore[arg-type]
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    module_spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _from_path(spec: str) -> Any:
    """``module:Name`` or ``file.py:Name`` -> the object ``Name``."""
    where, _, attr = spec.rpartition(":")
    if not where or not attr.isidentifier():
        raise SemgenError(f"--method {spec}: expected module:Name or FILE.py:Name")
    try:
        module = _import(where)
    except SemgenError:
        raise
    except Exception as exc:  # the user's code failed to import: one line, naming it
        raise SemgenError(f"--method {spec}: importing {where} failed: {exc}") from None
    if not hasattr(module, attr):
        raise SemgenError(f"--method {spec}: {where} has no {attr!r}")
    return getattr(module, attr)


def _entry_point(name: str) -> Any | None:
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                return ep.load()
            except Exception as exc:
                raise SemgenError(
                    f"--method {name}: loading entry point {ep.value} failed: {exc}"
                ) from None
    return None


def get_method(spec: str) -> Method:
    """The method ``spec`` names (see the module doc); an alias gives the method under its
    registered name (the name its model card records)."""
    spec = canonical_name(spec)
    if spec.endswith(SEMANTICS_SUFFIX) and spec != SEMANTICS_SUFFIX:
        inner = get_method(spec[: -len(SEMANTICS_SUFFIX)])
        if inner.semantic:
            raise SemgenError(f"--method {spec}: {inner.name} already classifies the patterns")
        return Semantics(inner, name=spec if ":" not in spec else f"{inner.name}+semantics")
    if ":" in spec:
        return _instance(_from_path(spec), spec)
    if spec in METHODS:
        return _instance(METHODS[spec].make, spec)
    found = _entry_point(spec)
    if found is not None:
        return _instance(found, spec)
    names = ", ".join(e.name for e in known_methods())
    raise SemgenError(
        f"--method {spec!r}: unknown method; known: {names} (or module:Name, "
        f"path/to/file.py:Name, NAME{SEMANTICS_SUFFIX})"
    )
