"""Default run settings per model, and turning `key=value` overrides into a validated RunConfig.

A run config has three sections, `model`, `data` and `train`. Overrides name a field either
with its section (`model.lam=0.3`, `data.patch_size=16`, `model.group.size=5`) or, when the
name is unambiguous, bare (`lam=0.3`, `steps=500`, `group.size=5`).
"""

from __future__ import annotations

import copy
from typing import Any

from .config import ConfigError, from_dict, parse_value, set_dotted, to_dict
from .data import data_config, data_config_dict, source_defaults
from .models import get_entry

SECTIONS = ("model", "data", "train")


def _train_config_cls() -> type:
    from .training.trainer import TrainConfig

    return TrainConfig


def default_sections(model: str) -> dict[str, dict[str, Any]]:
    """The full default settings of a model (its class's `preset` over the configs' defaults):
    every field of every section, as plain dicts."""
    cls = get_entry(model).model_cls
    preset = cls.preset or {}
    return {
        "model": to_dict(from_dict(cls.Config, preset.get("model"), "model.")),
        "data": data_config_dict(data_config(preset.get("data"))),
        "train": to_dict(from_dict(_train_config_cls(), preset.get("train"), "train.")),
    }


def _field_paths(section: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in section.items():
        out.append(prefix + k)
        if isinstance(v, dict):
            out.extend(_field_paths(v, prefix + k + "."))
    return out


def resolve_key(key: str, sections: dict[str, dict[str, Any]]) -> str:
    """Turn `lam` or `group.size` into `model.lam` / `model.group.size`; error if unknown."""
    first = key.split(".", 1)[0]
    if first in SECTIONS:
        rest = key.split(".", 1)[1] if "." in key else ""
        if rest in _field_paths(sections[first]):
            return key
        raise ConfigError(f"unknown key {key!r}; {first} keys: "
                          f"{', '.join(sorted(_field_paths(sections[first])))}")
    matches = [f"{s}.{key}" for s in SECTIONS if key in _field_paths(sections[s])]
    if not matches:
        raise ConfigError(f"unknown key {key!r}; use section.key with sections "
                          f"{', '.join(SECTIONS)} (see `python -m sparse_models train MODEL --show`)")
    if len(matches) > 1:
        raise ConfigError(f"key {key!r} is ambiguous: say {' or '.join(matches)}")
    return matches[0]


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out.append((k.strip(), parse_value(v.strip())))
    return out


def build_run_config(model: str, overrides: list[tuple[str, Any]] | dict[str, Any] = (),
                     base: dict[str, dict[str, Any]] | None = None, command: str = "",
                     parent: str | None = None):
    """A validated RunConfig for `model` from defaults (or `base` sections) plus overrides."""
    from .training.runs import RunConfig

    sections = copy.deepcopy(base) if base is not None else default_sections(model)
    items = list(overrides.items() if isinstance(overrides, dict) else overrides)
    # A new data source comes first: it decides which data keys exist (those it shares with
    # the old source keep their values).
    for key, value in items:
        if key in ("source", "data.source") and value != sections["data"].get("source"):
            sections["data"] = switch_source(sections["data"], value)
    for key, value in items:
        path = resolve_key(key, sections)
        if value is None and isinstance(_get_dotted(sections, path), str):
            # `kind=none` names the choice "none" of a text setting, not a missing value
            # (`parse_value` reads a bare none as null, which numeric settings need).
            value = "none"
        set_dotted(sections, path, value)
    train_cfg = from_dict(_train_config_cls(), sections["train"], "train.")
    return RunConfig(model=model, model_config=sections["model"], data=sections["data"],
                     train=train_cfg, parent=parent, command=command)


def _get_dotted(data: dict[str, Any], key: str) -> Any:
    node: Any = data
    for p in key.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def switch_source(section: dict[str, Any], source: Any) -> dict[str, Any]:
    """The data section for another source: its defaults, with the settings the two sources
    share carried over where they were changed from the old source's defaults (so e.g. the
    digits keep their own held-out split when switched to from patches without one)."""
    new = source_defaults(source)
    try:
        before = source_defaults(section.get("source", "natural"))
    except ConfigError:
        before = {}
    changed = {k: v for k, v in section.items()
               if k in new and k != "source" and (k not in before or v != before[k])}
    return {**new, **changed}


def run_config_sections(cfg: Any) -> dict[str, dict[str, Any]]:
    """The three sections of an existing RunConfig, e.g. to derive a what-if run from it."""
    return {"model": to_dict(cfg.model_config), "data": data_config_dict(cfg.data),
            "train": to_dict(cfg.train)}
