"""Command-line options generated from a config dataclass: each setting is written once.

A verb calls :func:`add_config_options` with its config class: every field becomes an option
(``batch_size`` -> ``--batch-size``) whose type, choices, help and default come from the field
and its :func:`~semantic_genesis.utils.config.setting`. A small mapping of :class:`Option`
changes what a verb needs (another flag name, a metavar, a group, a hidden field) without
declaring the setting again. Every verb also gets ``--config FILE`` and ``--set key=value``
(:func:`add_file_options`, added by ``build_parser``).

:func:`config_from_args` builds the config with this precedence: the field defaults, then the
``--config`` file, then the flags given on the command line, then ``--set``. Generated options
default to ``argparse.SUPPRESS``, so only flags the user typed appear in the namespace.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: ``Option.default`` when the verb keeps the field's own default
UNSET: Any = type("Unset", (), {"__repr__": lambda self: "UNSET"})()
#: metavars of fixed-length tuples, by length
_METAVARS = {2: ("LOW", "HIGH"), 3: ("X", "Y", "Z")}


@dataclasses.dataclass(frozen=True)
class Option:
    """How one config field appears on a verb's command line (all optional).

    ``flag``: the option's name (default ``--field-name``); ``metavar``; ``help``: replaces the
    field's help (only where the command line needs other words); ``group``: the help section;
    ``hidden``: no flag (still settable by ``--config`` and ``--set``); ``positional``: an
    argument without dashes; ``default``: the verb's own default, shown in the help.
    """

    flag: str | None = None
    metavar: str | tuple[str, ...] | None = None
    help: str | None = None
    group: str | None = None
    hidden: bool = False
    positional: bool = False
    default: Any = UNSET
    show_default: bool = True


def add_file_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--set key=value``: every verb has them."""
    group = parser.add_argument_group("configuration")
    group.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS,
        help="a YAML/JSON file of this verb's settings, e.g. the config saved in an earlier "
             "output folder; options given on the command line override its values")
    group.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=argparse.SUPPRESS, dest="set_values",
        help="set one setting by its name (value read as YAML, e.g. --set patch=[64,64,32]); "
             "repeatable; overrides --config and the options")


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return tp


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value))
    return "''" if value == "" else str(value)


def _range_words(meta: Mapping[str, Any]) -> list[str]:
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return [f"{words[k]} {meta[k]:{'g' if isinstance(meta[k], float) else ''}}"
            for k in words if meta.get(k) is not None]


def _help(f: dataclasses.Field, option: Option, default: Any) -> str:
    meta = f.metadata or {}
    text = option.help or meta.get("help") or ""
    if not text:
        raise ValueError(f"config field {f.name} has no help: give it setting(help=...)")
    notes = [] if meta.get("choices") else _range_words(meta)
    if option.show_default and default not in (None, "", dataclasses.MISSING):
        notes.append(f"default: {_shown(default)}")
    text = text + (f" ({'; '.join(notes)})" if notes else "")
    return text.replace("%", "%%")


def _argument(f: dataclasses.Field, tp: Any, option: Option, default: Any) -> dict[str, Any]:
    """The ``add_argument`` keywords of one field."""
    kw: dict[str, Any] = {"default": argparse.SUPPRESS, "help": _help(f, option, default)}
    tp = _unwrap_optional(tp)
    choices = (f.metadata or {}).get("choices")
    if tp is bool:
        kw["action"] = argparse.BooleanOptionalAction
    elif typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        variable = len(args) == 2 and args[1] is Ellipsis
        kw["type"] = _unwrap_optional(args[0])
        kw["nargs"] = "+" if variable else len(args)
        kw["metavar"] = option.metavar or ("N" if variable else _METAVARS.get(len(args)))
    else:
        kw["type"] = tp if tp in (int, float) else str
        if choices:
            kw["choices"] = [c for c in choices if c is not None]
        elif option.metavar:
            kw["metavar"] = option.metavar
    return kw


def add_config_options(parser: argparse.ArgumentParser, cls: type,
                       options: Mapping[str, Option] | None = None) -> None:
    """Add one option per field of the dataclass ``cls`` (nested dataclasses and mappings
    are left to ``--config``/``--set``); ``options`` adjusts fields by name."""
    options = dict(options or {})
    unknown = set(options) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"options for unknown fields of {cls.__name__}: {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(cls):
        option = options.get(f.name, Option())
        tp = hints.get(f.name, Any)
        if option.hidden or not _simple(_unwrap_optional(tp)):
            continue
        default = option.default if option.default is not UNSET else (
            f.default if f.default is not dataclasses.MISSING else None)
        kw = _argument(f, tp, option, default)
        target = parser
        if option.group:
            if option.group not in groups:
                groups[option.group] = parser.add_argument_group(option.group)
            target = groups[option.group]
        if option.positional:
            kw.setdefault("nargs", "?")  # optional: a --config file may give it
            target.add_argument(f.name, **kw)
        else:
            target.add_argument(option.flag or "--" + f.name.replace("_", "-"), dest=f.name, **kw)


def _simple(tp: Any) -> bool:
    if typing.get_origin(tp) is tuple:
        return all(_simple(_unwrap_optional(a)) for a in typing.get_args(tp) if a is not Ellipsis)
    return tp in (int, float, str, bool, Path)


def _file_settings(cls: type, path: str | Path, ignore: Iterable[str]) -> dict[str, Any]:
    from semantic_genesis.utils.config import check_setting, read_yaml
    from semantic_genesis.utils.errors import SemgenError

    data = read_yaml(path, "config file")
    if not isinstance(data, dict):
        raise SemgenError(f"expected a mapping of settings, got {type(data).__name__}", path)
    skip = set(ignore)
    return {k: check_setting(cls, str(k), v, path) for k, v in data.items() if k not in skip}


def _set_settings(cls: type, items: Iterable[str]) -> dict[str, Any]:
    import yaml

    from semantic_genesis.utils.config import check_setting
    from semantic_genesis.utils.errors import SemgenError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise SemgenError(f"--set {item!r}: expected KEY=VALUE, e.g. --set seed=3")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise SemgenError(f"--set {item}: the value is not valid YAML") from None
        out[key] = check_setting(cls, key, value, f"--set {item}")
    return out


def given_settings(cls: type, args: argparse.Namespace,
                   file_ignores: Iterable[str] = ()) -> dict[str, Any]:
    """The settings the user chose, merged in order: ``--config`` file, command-line flags,
    ``--set``. Each value is checked alone first, so an error names where it came from.
    ``file_ignores`` are fields a saved file may hold but that describe how its run was
    started, not the run (e.g. ``resume``): they are not taken from a file."""
    from semantic_genesis.utils.config import check_setting

    merged: dict[str, Any] = {}
    if getattr(args, "config", None):
        merged.update(_file_settings(cls, args.config, file_ignores))
    for f in dataclasses.fields(cls):
        if hasattr(args, f.name):
            merged[f.name] = check_setting(cls, f.name, getattr(args, f.name))
    merged.update(_set_settings(cls, getattr(args, "set_values", None) or []))
    return merged


def config_from_args(cls: type[T], args: argparse.Namespace,
                     options: Mapping[str, Option] | None = None, *,
                     file_ignores: Iterable[str] = ()) -> T:
    """Build ``cls`` from parsed arguments: field defaults < the verb's own defaults (in
    ``options``) < ``--config`` file < explicit flags < ``--set``."""
    from semantic_genesis.utils.config import from_dict

    defaults = {k: o.default for k, o in (options or {}).items()
                if o.default is not UNSET}
    data = {**defaults, **given_settings(cls, args, file_ignores)}
    return from_dict(cls, data)
