"""Helpers shared by every config dataclass: dict round-trips, `key=value` parsing, errors.

Configs are frozen dataclasses validated in `__post_init__`. They are stored in a run's
`config.json`, so each must survive `to_dict` -> JSON -> `from_dict` unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value or key is invalid. The message is meant for the user, as is."""


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (possibly nested) config dataclass; tuples become lists."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        out[f.name] = _jsonable(v)
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build `cls` from a dict, rejecting unknown keys and coercing lists back to tuples.

    Raises ConfigError with the offending key's full name (e.g. `model.group.size`).
    """
    data = dict(data or {})
    hints = _type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown key {where}{unknown[0]!s} for {cls.__name__}; "
            f"known keys: {', '.join(sorted(names))}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}{name}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: {exc}") from exc


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    """Field types of a config class, resolved once.

    Resolved against the namespace the class was defined in (held by its generated __init__),
    not `sys.modules`: Streamlit's file watcher drops modules from there while a training
    thread may still be building configs.
    """
    return typing.get_type_hints(cls, globalns=getattr(cls.__init__, "__globals__", None))


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping, got {value!r}")
        return from_dict(tp, value, where=key + ".")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, key) for v in value)
        if args and len(args) != len(value):
            raise ConfigError(f"{key} must have {len(args)} entries, got {len(value)}")
        return tuple(_coerce(a, v, key) for a, v in zip(args or [Any] * len(value), value, strict=True))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, args))}; got {value!r}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    return value


def parse_value(text: str) -> Any:
    """Parse the right-hand side of `--set key=value`: JSON if it parses, else the raw string.

    `3` -> 3, `0.5` -> 0.5, `true` -> True, `[5,5]` -> [5, 5], `none`/`null` -> None, `zca` -> "zca".
    """
    if text.strip().lower() in ("none", "null"):
        return None
    if text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set `data["a"]["b"] = value` for key `a.b`, creating nested dicts as needed."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"bad key {key!r}")
    node = data
    for p in parts[:-1]:
        nxt = node.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{key}: {p} is not a section")
        node = nxt
    node[parts[-1]] = value


def check(cond: bool, message: str) -> None:
    """Raise ConfigError(message) unless cond; for `__post_init__` validation."""
    if not cond:
        raise ConfigError(message)
