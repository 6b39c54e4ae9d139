"""Helpers shared by every config dataclass: dict round-trips, `key=value` parsing, errors.

Configs are frozen dataclasses validated in `__post_init__`. They are stored in a run's
`config.json`, so each must survive `to_dict` -> JSON -> `from_dict` unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
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
            raise ConfigError(f"{key} must be a mapping, got {_short(value)}")
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
        raise ConfigError(errors[0] if errors else f"{key}: bad value {_short(value)}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {_short(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, key) for v in value)
        if args and len(args) != len(value):
            raise ConfigError(f"{key} must have {len(args)} entries, got {len(value)}")
        return tuple(_coerce(a, v, key) for a, v in zip(args or [Any] * len(value), value, strict=True))
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, args))}; got {_short(value)}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {_short(value)}")
    if tp is int:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or (isinstance(value, float) and not math.isfinite(value))
                or int(value) != value):
            raise ConfigError(f"{key} must be an integer, got {_short(value)}")
        if abs(int(value)) > MAX_INT:
            raise ConfigError(f"{key} is far too large ({_short(value)})")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} must be a number, got {_short(value)}")
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{key} is far too large ({_short(value)})") from None
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {_short(value)}")
        return value
    return value


MAX_INT = 2**63 - 1  # no setting needs more; larger integers are refused, not computed with


def _short(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters (a crafted value may be megabytes long)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return "an integer of thousands of digits"
    return text if len(text) <= limit else text[:limit] + "…"


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
    except RecursionError:
        raise ConfigError("a value is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise ConfigError(f"a value cannot be read: {exc}") from None


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


def setting(default: Any = dataclasses.MISSING, *, label: str, help: str = "",
            min: float | None = None, max: float | None = None, step: float | None = None,
            when: dict[str, Any] | None = None, form: bool = True, shape: bool = False,
            url: bool = True, default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field that carries what a form needs to edit it (house style 3: the config says
    what it is, the app builds its inputs from that, never from tables of field names).

    label/help: the words on screen; min/max/step: the allowed range of a number (inclusive);
    when: {other_field: value or list of values} under which this field applies (otherwise the
    form disables it); form=False: a field forms do not show (set from the data, or internal).
    """
    meta = {"label": label, "help": help, "min": min, "max": max, "step": step,
            "when": dict(when or {}), "form": form, "shape": shape, "url": url}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """How a form shows one config field (from `setting`; plain fields get their name)."""

    name: str
    type: Any
    default: Any
    label: str
    help: str = ""
    min: float | None = None
    max: float | None = None
    step: float | None = None
    when: dict[str, Any] = dataclasses.field(default_factory=dict)
    form: bool = True
    shape: bool = False
    url: bool = True

    def applies(self, values: dict[str, Any]) -> bool:
        """Whether this field matters given the other fields' values (`when`)."""
        for other, wanted in self.when.items():
            allowed = wanted if isinstance(wanted, list | tuple) else (wanted,)
            if values.get(other) not in allowed:
                return False
        return True

    def check_range(self, value: Any, where: str = "") -> None:
        """ConfigError in the words of the form when a number is outside [min, max]."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return
        key = where or self.name
        name = f"{self.label} ({key})" if self.label and self.label != key else key
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value}")
        if self.min is not None and value < self.min:
            raise ConfigError(f"{name} must be at least {self.min:g}, got {value:g}")
        if self.max is not None and value > self.max:
            raise ConfigError(f"{name} must be at most {self.max:g}, got {value:g}")


def field_infos(cls: type) -> list[FieldInfo]:
    """The form description of every field of a config dataclass, in declaration order."""
    hints = _type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata or {})
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        out.append(FieldInfo(name=f.name, type=hints[f.name], default=default,
                             label=meta.get("label") or f.name, help=meta.get("help", ""),
                             min=meta.get("min"), max=meta.get("max"), step=meta.get("step"),
                             when=dict(meta.get("when") or {}), form=meta.get("form", True),
                             shape=meta.get("shape", False), url=meta.get("url", True)))
    return out


def check_ranges(cfg: Any, where: str = "") -> None:
    """Check every `setting` range of a config instance (called from `__post_init__`)."""
    for info in field_infos(type(cfg)):
        info.check_range(getattr(cfg, info.name), f"{where}{info.name}")
