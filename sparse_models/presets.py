"""Default run settings per model, and turning `key=value` overrides into a validated RunConfig.

A run config has three sections, `model`, `data` and `train`. Overrides name a field either
with its section (`model.lam=0.3`, `data.patch_size=16`, `model.group.size=5`) or, when the
name is unambiguous, bare (`lam=0.3`, `steps=500`, `group.size=5`).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from .config import ConfigError, from_dict, parse_value, set_dotted, to_dict
from .data import DataConfig
from .models import get_entry

# Tuned so that each model's default trains in seconds on a 2-core CPU and shows its effect.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "topographic": {
        "model": {},
        "data": {},
        "train": {"steps": 2000, "batch_size": 256, "lr": 3e-3},
    },
    "sparse_coding": {
        "model": {},
        "data": {},
        "train": {"steps": 300, "batch_size": 256, "lr": 1e-2},
    },
}

SECTIONS = ("model", "data", "train")


def _train_config_cls() -> type:
    from .training.trainer import TrainConfig

    return TrainConfig


def default_sections(model: str) -> dict[str, dict[str, Any]]:
    """The full default settings of a model: every field of every section, as plain dicts."""
    entry = get_entry(model)
    preset = PRESETS.get(model, {"model": {}, "data": {}, "train": {}})
    return {
        "model": to_dict(from_dict(entry.config_cls, preset["model"], "model.")),
        "data": to_dict(from_dict(DataConfig, preset["data"], "data.")),
        "train": to_dict(from_dict(_train_config_cls(), preset["train"], "train.")),
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
    items = overrides.items() if isinstance(overrides, dict) else overrides
    for key, value in items:
        set_dotted(sections, resolve_key(key, sections), value)
    entry = get_entry(model)
    model_cfg = from_dict(entry.config_cls, sections["model"], "model.")
    data_cfg = from_dict(DataConfig, sections["data"], "data.")
    train_cfg = from_dict(_train_config_cls(), sections["train"], "train.")
    return RunConfig(model=model, model_config=to_dict(model_cfg), data=data_cfg,
                     train=train_cfg, parent=parent, command=command)


def run_config_sections(cfg: Any) -> dict[str, dict[str, Any]]:
    """The three sections of an existing RunConfig, e.g. to derive a what-if run from it."""
    return {
        "model": copy.deepcopy(cfg.model_config),
        "data": to_dict(cfg.data) if dataclasses.is_dataclass(cfg.data) else dict(cfg.data),
        "train": to_dict(cfg.train) if dataclasses.is_dataclass(cfg.train) else dict(cfg.train),
    }
