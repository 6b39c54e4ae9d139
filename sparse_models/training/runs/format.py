"""The run folder's format: its files, its config, its name, and how every file is written.

Layout of a run folder (JSON and safetensors only; nothing is ever pickled):

    config.json              RunConfig: model name + model config, data config, train config
    status.json              state (created/queued/running/completed/stopped/failed), error,
                             steps done, device, timings
    metrics.jsonl            one JSON object per logged step: step, elapsed_s, each loss term;
                             evaluation lines also name their split ("split": "test")
    weights.safetensors      final (or last stopped) model weights
    checkpoint.safetensors   model + optimiser state, RNG state and step, for resuming
    snapshots.safetensors    `steps: (S,)` and `filters: (S, N, C, h, w)` over training (replay),
                             with the filter kind in its metadata
    analysis.json            analysis results cached by the app / CLI

Every file is replaced atomically (temporary file in the same folder, fsync, `os.replace`), so
a crash mid-write leaves the previous version intact; metrics lines are appended. Runs under
`SHIPPED_DIR` are read-only examples: writing there raises RunError unless `allow_shipped`.

Format versions: 2 (this code) types the data section by its source (`{"source": NAME, ...that
source's settings}`); version 1 folders, whose data section listed every patch setting for every
source, are read by dropping the settings their source does not have.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...config import ConfigError, check, from_dict, to_dict
from ...data import data_config, data_config_dict, get_source
from ...models.base import get_entry, model_config
from ..trainer import TrainConfig

FORMAT = "sparse-feature-lab/run"
FORMAT_VERSION = 2
REPO_ROOT = Path(__file__).resolve().parents[3]
SHIPPED_DIR = REPO_ROOT / "checkpoints"  # example runs shipped with the repo (read-only)
RUNS_ENV = "SPARSE_LAB_RUNS"  # overrides where new runs go

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
WEIGHTS_FILE = "weights.safetensors"
CHECKPOINT_FILE = "checkpoint.safetensors"
SNAPSHOTS_FILE = "snapshots.safetensors"
ANALYSIS_FILE = "analysis.json"

MAX_NAME_LEN = 80
_NAME_BAD = re.compile(r"[^A-Za-z0-9._-]+")


class RunError(ValueError):
    """A run folder is missing, broken, or may not be written. The message is for the user."""


# --- config ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    """Everything needed to rebuild a run, validated once, when it is made: the model's config
    typed through the model registry and fitted to the data (`adapt_config`), the data's config
    typed through the source registry, and the training settings."""

    model: str  # registered model name, e.g. "topographic"
    model_config: Any = None  # that model's config instance (a dict is converted)
    data: Any = None  # the data source's config instance (a dict is converted)
    train: TrainConfig = field(default_factory=TrainConfig)
    parent: str | None = None  # run whose weights initialised this one (what-if retraining)
    command: str = ""  # the command line that made this run, if any

    def __post_init__(self) -> None:
        check(isinstance(self.model, str) and bool(self.model),
              f"model must be a model name, got {self.model!r}")
        entry = get_entry(self.model)
        data = data_config(self.data)
        mc = self.model_config
        shape = tuple(data.input_shape)
        if (isinstance(mc, dict) and len(shape) == 3
                and "input_shape" in {f.name for f in fields(entry.config_cls)}):
            # Check the model's settings against the data's own image size, not the config's
            # default one: a stride that fits a 64 px crop is not refused for a 32 px default.
            mc = {**mc, "input_shape": [int(shape[1]), int(shape[2])]}
        mc = model_config(self.model, mc)
        mc = entry.model_cls.adapt_config(mc, tuple(data.input_shape))
        check(isinstance(self.train, TrainConfig), "train must be a TrainConfig")
        if self.train.batch_size > data.n_samples:
            raise ConfigError(f"the batch size ({self.train.batch_size}) is larger than the "
                              f"number of training samples ({data.n_samples})")
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "model_config", mc)

    @property
    def model_cls(self) -> type:
        return get_entry(self.model).model_cls

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "model_config": to_dict(self.model_config),
                "data": data_config_dict(self.data), "train": to_dict(self.train),
                "parent": self.parent, "command": self.command}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]} in a run config; known keys: "
                              f"{', '.join(sorted(known))}")
        if "model" not in data:
            raise ConfigError("a run config must name its model")
        parent, command = data.get("parent"), data.get("command", "")
        check(parent is None or isinstance(parent, str), f"parent must be a path, got {parent!r}")
        check(isinstance(command, str), f"command must be a string, got {command!r}")
        train = data.get("train") or {}
        check(isinstance(train, dict), f"train must be a mapping, got {train!r}")
        for section in ("model_config", "data"):
            value = data.get(section)
            check(value is None or isinstance(value, dict),
                  f"{section} must be a mapping, got {value!r}")
        return cls(model=data["model"], model_config=data.get("model_config"),
                   data=data.get("data"), train=from_dict(TrainConfig, train, "train."),
                   parent=parent, command=command)


def upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version-1 config dict as version 2: its data section keeps only the settings of its own
    source (version 1 wrote every patch setting, e.g. `folder: null`, for every source)."""
    section = data.get("data")
    if not isinstance(section, dict):
        return data
    source = section.get("source", "natural")
    try:
        keep = {f.name for f in fields(get_source(source).Config)}
    except ConfigError:
        return data  # an unknown source: let validation say so
    return {**data, "data": {"source": source,
                             **{k: v for k, v in section.items() if k in keep}}}


# --- names and places -----------------------------------------------------------------------



def sanitize_run_name(name: str) -> str:
    """A safe folder name: runs of characters outside [A-Za-z0-9._-] become '-'.

    Path separators, '..' and names starting with '.' are rejected (RunError), not repaired,
    so a name can never point outside the runs folder.
    """
    if not isinstance(name, str) or not name.strip():
        raise RunError("a run name must not be empty")
    name = name.strip()
    if "/" in name or "\\" in name or "\x00" in name:
        raise RunError(f"run name {name!r} must not contain '/' or '\\'")
    if name.startswith(".") or ".." in name:
        raise RunError(f"run name {name!r} must not start with '.' or contain '..'")
    clean = _NAME_BAD.sub("-", name).strip("-")
    if not clean or set(clean) <= {".", "-", "_"}:
        raise RunError(f"run name {name!r} has no letters or digits")
    if len(clean) > MAX_NAME_LEN:
        raise RunError(f"run name is {len(clean)} characters long; the limit is {MAX_NAME_LEN}")
    return clean


def default_runs_dir() -> Path:
    """Where new runs go: $SPARSE_LAB_RUNS, else `runs/` in the repository root."""
    env = os.environ.get(RUNS_ENV)
    return Path(env).expanduser() if env else REPO_ROOT / "runs"


def is_shipped(path: Path | str) -> bool:
    return _within(Path(path), SHIPPED_DIR)


def _within(path: Path, root: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(Path(root).resolve())
    except OSError:
        return False


def _check_writable(path: Path, allow_shipped: bool) -> None:
    if not allow_shipped and is_shipped(path):
        raise RunError(f"{path} is a shipped example run and is read-only; "
                       f"train a copy into your runs folder instead")


# --- atomic file writing and JSON ----------------------------------------------------------



def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see either the old or the new file, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _clean_json(v: Any) -> Any:
    """numpy/torch scalars and arrays -> Python; NaN/inf -> None (strict JSON has neither)."""
    if isinstance(v, dict):
        return {str(k): _clean_json(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean_json(x) for x in v]
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    if isinstance(v, np.ndarray):
        return _clean_json(v.tolist())
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, Path):
        return str(v)
    return v


def dumps_json(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(_clean_json(obj), indent=indent, allow_nan=False)


def write_json_atomic(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (dumps_json(obj) + "\n").encode("utf-8"))


def read_json(path: Path, what: str = "") -> Any:
    """Parse a JSON file; RunError naming the file when it is missing or not valid JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RunError(f"{path} is missing{what}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise RunError(f"{path} cannot be read: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); "
                       f"the file is corrupt") from exc
    except (RecursionError, ValueError) as exc:  # nested too deeply; numbers of 100k digits
        raise RunError(f"{path} cannot be read as a run file (nested too deeply or a number "
                       f"too long); the file is corrupt") from exc


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Metric lines of a run; unreadable lines (e.g. cut off by a crash) are skipped."""
    path = Path(run_dir) / METRICS_FILE
    out: list[dict[str, Any]] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except (ValueError, RecursionError):  # a cut-off or damaged line
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int):
            out.append(rec)
    return out


def read_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILE
    data = read_json(path, " (this folder is not a run)")
    if not isinstance(data, dict):
        raise RunError(f"{path} is not a run config (expected a JSON object)")
    fmt = data.pop("format", FORMAT)
    version = data.pop("format_version", FORMAT_VERSION)
    if fmt != FORMAT:
        raise RunError(f"{path} was not written by Sparse Feature Lab (format {fmt!r})")
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise RunError(f"{path} has format version {version!r}; this code reads up to "
                       f"{FORMAT_VERSION}. Update Sparse Feature Lab to open it")
    if "model" not in data:
        raise RunError(f"{path} is not a run config: it names no model")
    if version < 2:
        data = upgrade_v1(data)
    try:
        return RunConfig.from_dict(data)
    except ConfigError as exc:
        raise RunError(f"{path} is not a valid run config: {exc}") from exc


def config_file_dict(config: RunConfig) -> dict[str, Any]:
    """What `config.json` holds: the format stamp, then the config."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, **config.to_dict()}
