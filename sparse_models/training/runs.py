"""Run folders: self-describing directories holding one training run (house style 8).

Layout of a run folder (JSON and safetensors only; nothing is ever pickled):

    config.json              RunConfig: model name + model config, data config, train config
    status.json              state (created/queued/running/completed/stopped/failed), error,
                             steps done, device, timings
    metrics.jsonl            one JSON object per logged step: step, elapsed_s, each loss term
    weights.safetensors      final (or last stopped) model weights
    checkpoint.safetensors   model + optimiser state, RNG state and step, for resuming
    snapshots.safetensors    `steps: (S,)` and `filters: (S, N, h, w)` over training (replay)
    analysis.json            analysis results cached by the app / CLI

Every file is replaced atomically (temporary file in the same folder, fsync, `os.replace`), so
a crash mid-write leaves the previous version intact; metrics lines are appended. Runs under
`SHIPPED_DIR` are read-only examples: writing there raises RunError unless `allow_shipped`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save as st_save

from ..config import ConfigError, check, from_dict, to_dict
from ..data import DataConfig, Dataset, load_dataset
from ..models import build_model, get_entry
from ..models.base import SparseModel
from .trainer import TrainConfig

FORMAT = "sparse-feature-lab/run"
FORMAT_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parents[2]
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
    model: str  # registered model name, e.g. "topographic"
    model_config: dict[str, Any] = field(default_factory=dict)  # that model's config, as a dict
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    parent: str | None = None  # run whose weights initialised this one (what-if retraining)
    command: str = ""  # the command line that made this run, if any

    def __post_init__(self) -> None:
        check(isinstance(self.model, str) and bool(self.model),
              f"model must be a model name, got {self.model!r}")
        mc = self.model_config
        if dataclasses.is_dataclass(mc) and not isinstance(mc, type):
            mc = to_dict(mc)  # a model's config instance is accepted too
        check(isinstance(mc, dict), f"model_config must be a mapping, got {type(mc).__name__}")
        try:  # a private JSON-normalised copy: tuples -> lists, and proof it can be saved
            normalised = json.loads(json.dumps(mc, default=_dataclass_to_dict))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model_config cannot be saved as JSON: {exc}") from exc
        object.__setattr__(self, "model_config", normalised)
        check(isinstance(self.data, DataConfig), "data must be a DataConfig")
        check(isinstance(self.train, TrainConfig), "train must be a TrainConfig")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return from_dict(cls, data)

    def with_input_shape(self, shape: tuple[int, int] | list[int]) -> RunConfig:
        """This config with `model_config.input_shape` set (from the loaded data)."""
        return replace(self, model_config={**self.model_config, "input_shape": list(shape)})


def _dataclass_to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_dict(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def check_run_config(config: RunConfig) -> Any:
    """Validate the model name and model config now (ConfigError); returns the model config.

    When `input_shape` is not set yet, the data's `patch_size` square stands in for it.
    """
    if config.train.batch_size > config.data.n_patches:
        raise ConfigError(f"train.batch_size ({config.train.batch_size}) is larger than "
                          f"data.n_patches ({config.data.n_patches})")
    entry = get_entry(config.model)
    mc = dict(config.model_config)
    fields = getattr(entry.config_cls, "__dataclass_fields__", {})
    if "input_shape" in fields and "input_shape" not in mc:
        mc["input_shape"] = [config.data.patch_size, config.data.patch_size]
    return from_dict(entry.config_cls, mc, where="model.")


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


# --- atomic file writing --------------------------------------------------------------------


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


def read_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILE
    data = read_json(path, " (this folder is not a run)")
    if not isinstance(data, dict):
        raise RunError(f"{path} is not a run config (expected a JSON object)")
    fmt = data.pop("format", FORMAT)
    version = data.pop("format_version", FORMAT_VERSION)
    if fmt != FORMAT:
        raise RunError(f"{path} was not written by Sparse Feature Lab (format {fmt!r})")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RunError(f"{path} has format version {version!r}; this code reads up to "
                       f"{FORMAT_VERSION}. Update Sparse Feature Lab to open it")
    if "model" not in data:
        raise RunError(f"{path} is not a run config: it names no model")
    try:
        return RunConfig.from_dict(data)
    except ConfigError as exc:
        raise RunError(f"{path} is not a valid run config: {exc}") from exc


# --- safetensors ----------------------------------------------------------------------------


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors (on the CPU) and the metadata of a safetensors file; RunError if broken."""
    if not path.is_file():
        raise RunError(f"{path} is missing")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for bad headers/data
        raise RunError(f"{path} is corrupt or truncated (not a readable safetensors file: "
                       f"{exc})") from exc
    return tensors, meta


def _check_safetensors_header(path: Path) -> None:
    """Cheap validity check (header only, no tensor data read); RunError if broken."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            f.metadata()
    except Exception as exc:
        raise RunError(f"{path} is corrupt or truncated ({exc})") from exc


def _tensors_for_saving(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share memory (e.g. tied weights, views)
    return {prefix + k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def check_state_matches(model: SparseModel, state: dict[str, torch.Tensor], source: Path) -> None:
    """RunError naming `source` unless `state` has exactly the model's tensor names and shapes."""
    want = model.state_dict()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if extra:
            parts.append(f"unexpected {', '.join(extra)}")
        raise RunError(f"{source} does not fit the {model.name!r} model of this config: "
                       + "; ".join(parts))
    for k, v in want.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise RunError(f"{source}: {k} has shape {tuple(state[k].shape)} but the config "
                           f"gives {tuple(v.shape)}")


@dataclass
class Checkpoint:
    step: int
    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any]  # a torch optimiser state_dict, ready for load_state_dict
    rng: dict[str, torch.Tensor]  # "torch" and "cuda.N" generator states
    extra: dict[str, Any]  # pipeline bookkeeping, e.g. elapsed_s


def read_checkpoint(run_dir: Path) -> Checkpoint:
    path = Path(run_dir) / CHECKPOINT_FILE
    tensors, meta = _read_safetensors(path)
    try:
        step = int(meta["step"])
        opt_meta = json.loads(meta["optimizer"])
        extra = json.loads(meta.get("extra", "{}"))
    except (KeyError, ValueError) as exc:
        raise RunError(f"{path} has no valid checkpoint metadata ({exc})") from exc
    model_state, rng, opt_tensors = {}, {}, {}
    for k, v in tensors.items():
        kind, _, rest = k.partition(".")
        if kind == "model":
            model_state[rest] = v
        elif kind == "rng":
            rng[rest] = v
        elif kind == "optimizer":
            opt_tensors[rest] = v
    state: dict[int, dict[str, Any]] = {}
    for k, v in opt_tensors.items():
        idx, _, name = k.partition(".")
        state.setdefault(int(idx), {})[name] = v
    for idx, values in opt_meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    optimizer_state = {"state": state, "param_groups": opt_meta["param_groups"]}
    return Checkpoint(step, model_state, optimizer_state, rng, extra)


def _meta(kind: str, **more: Any) -> dict[str, str]:
    return {"format": FORMAT, "kind": kind, **{k: str(v) for k, v in more.items()}}


# --- writing a run --------------------------------------------------------------------------


class RunWriter:
    """Every write into one run folder goes through here (read-only check done once)."""

    def __init__(self, path: Path | str, allow_shipped: bool = False) -> None:
        self.path = Path(path)
        _check_writable(self.path, allow_shipped)

    def write_config(self, config: RunConfig) -> None:
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, **config.to_dict()}
        write_json_atomic(self.path / CONFIG_FILE, data)

    def read_status(self) -> dict[str, Any]:
        """The current status, or {} when it is missing or unreadable (we are about to fix it)."""
        try:
            data = read_json(self.path / STATUS_FILE)
        except RunError:
            return {}
        return data if isinstance(data, dict) else {}

    def update_status(self, **changes: Any) -> dict[str, Any]:
        status = {**self.read_status(), **changes, "updated": _now_iso()}
        write_json_atomic(self.path / STATUS_FILE, status)
        return status

    def append_metrics(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        text = "".join(dumps_json(r, indent=None) + "\n" for r in records)
        with open(self.path / METRICS_FILE, "a", encoding="utf-8") as f:
            f.write(text)
            f.flush()

    def truncate_metrics(self, last_step: int) -> None:
        """Keep only metric lines up to `last_step` (a resume drops lines after its checkpoint)."""
        if not (self.path / METRICS_FILE).exists():
            return
        keep = [r for r in read_metrics(self.path) if r.get("step", 0) <= last_step]
        atomic_write_bytes(self.path / METRICS_FILE,
                           "".join(dumps_json(r, indent=None) + "\n" for r in keep).encode())

    def save_weights(self, model: SparseModel, step: int) -> None:
        data = st_save(_tensors_for_saving(model.state_dict()),
                       metadata=_meta("weights", model=model.name, step=step))
        atomic_write_bytes(self.path / WEIGHTS_FILE, data)

    def save_checkpoint(self, model: SparseModel, optimizer: torch.optim.Optimizer, step: int,
                        extra: dict[str, Any] | None = None) -> None:
        """Model + optimiser state + the torch RNG states, so a resume continues bit-exactly."""
        tensors = _tensors_for_saving(model.state_dict(), "model.")
        sd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for idx, values in sd["state"].items():
            for name, v in values.items():
                if isinstance(v, torch.Tensor):
                    tensors[f"optimizer.{idx}.{name}"] = v.detach().to("cpu", copy=True)
                else:
                    scalars.setdefault(str(idx), {})[name] = v
        tensors["rng.torch"] = torch.get_rng_state()
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i, s in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng.cuda.{i}"] = s
        opt_meta = json.dumps(_clean_json({"param_groups": sd["param_groups"],
                                           "scalars": scalars}))
        meta = _meta("checkpoint", model=model.name, step=step, optimizer=opt_meta,
                     extra=dumps_json(extra or {}, indent=None))
        atomic_write_bytes(self.path / CHECKPOINT_FILE, st_save(tensors, metadata=meta))

    def save_snapshots(self, steps: list[int], filters: list[np.ndarray]) -> None:
        if not steps:
            return
        tensors = {"steps": torch.tensor(steps, dtype=torch.int64),
                   # Half precision: the replay only displays them, and it halves the file.
                   "filters": torch.from_numpy(np.stack(filters).astype(np.float16))}
        atomic_write_bytes(self.path / SNAPSHOTS_FILE, st_save(tensors, metadata=_meta("snapshots")))

    def write_analysis(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.path / ANALYSIS_FILE, data)


def restore_rng(rng: dict[str, torch.Tensor]) -> None:
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if torch.cuda.is_available():
        for k, v in rng.items():
            if k.startswith("cuda."):
                i = int(k.split(".")[1])
                if i < torch.cuda.device_count():
                    torch.cuda.set_rng_state(v, i)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def create_run(config: RunConfig, runs_dir: Path | str | None = None, name: str | None = None,
               allow_shipped: bool = False, state: str = "created") -> Path:
    """Make a new run folder holding `config.json` and `status.json`; returns its path.

    Without `name`, the folder is called `<model>-YYYYmmdd-HHMMSS` (with `-2`, `-3`, ... when
    taken). An existing `name` is an error: resume an existing run through `execute_run`.
    """
    check_run_config(config)
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    _check_writable(root, allow_shipped)
    root.mkdir(parents=True, exist_ok=True)
    if name is not None:
        path = root / sanitize_run_name(name)
        try:
            path.mkdir()
        except FileExistsError as exc:
            raise RunError(f"a run called {path.name!r} already exists in {root}; "
                           f"pick another name or resume it") from exc
    else:
        base = sanitize_run_name(f"{config.model}-{time.strftime('%Y%m%d-%H%M%S')}")
        for i in range(1, 10_000):
            path = root / (base if i == 1 else f"{base}-{i}")
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - ten thousand runs in one second
            raise RunError(f"could not find a free run name in {root}")
    writer = RunWriter(path, allow_shipped)
    writer.write_config(config)
    writer.update_status(state=state, created=_now_iso(), steps_done=0,
                         total_steps=config.train.steps)
    return path


# --- reading a run --------------------------------------------------------------------------


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
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("step"), int):
            out.append(rec)
    return out


def read_snapshots(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """`(steps: (S,) int64, filters: (S, N, h, w) float32)`; RunError if the file is broken."""
    path = Path(run_dir) / SNAPSHOTS_FILE
    tensors, _ = _read_safetensors(path)
    if "steps" not in tensors or "filters" not in tensors:
        raise RunError(f"{path} holds no 'steps' and 'filters' tensors")
    steps, filters = tensors["steps"].numpy(), tensors["filters"].float().numpy()
    if filters.ndim != 4 or len(steps) != len(filters):
        raise RunError(f"{path}: {len(steps)} steps but filters of shape {filters.shape}")
    return steps.astype(np.int64), filters.astype(np.float32)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def effective_state(status: dict[str, Any]) -> str:
    """The state in status.json, or 'interrupted' when the process that ran it is gone."""
    state = str(status.get("state", "unknown"))
    if state in ("running", "queued"):
        pid, host = status.get("pid"), status.get("host")
        if (isinstance(pid, int) and host == socket.gethostname() and pid != os.getpid()
                and not _pid_alive(pid)):
            return "interrupted"
    return state


class LoadedRun:
    """A run folder opened for reading: config, rebuilt model (eval mode, CPU), files."""

    def __init__(self, path: Path, config: RunConfig, model: SparseModel, status: dict[str, Any],
                 weights_step: int | None) -> None:
        self.path = path
        self.name = path.name
        self.config = config
        self.model = model
        self.status = status
        self.weights_step = weights_step  # step the loaded weights are from, when recorded
        self.shipped = is_shipped(path)
        self._dataset: Dataset | None = None

    def __repr__(self) -> str:
        return f"LoadedRun({self.name!r}, model={self.config.model!r}, state={self.state!r})"

    @property
    def state(self) -> str:
        return effective_state(self.status)

    @property
    def map_shape(self) -> tuple[int, int]:
        return tuple(self.model.map_shape)

    @property
    def layout(self) -> str:
        return self.model.layout

    @property
    def map_periodic(self) -> bool:
        return bool(self.model.map_periodic)

    def filters(self, kind: str = "decoder") -> np.ndarray:
        """`(N, h, w)` filter images."""
        return self.model.filters(kind).detach().cpu().numpy()

    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)

    def snapshots(self) -> tuple[np.ndarray, np.ndarray]:
        """`(steps (S,), filters (S, N, h, w))`; empty arrays when none were recorded."""
        if not (self.path / SNAPSHOTS_FILE).exists():
            n, h, w = self.model.filters().shape
            return np.zeros(0, np.int64), np.zeros((0, n, h, w), np.float32)
        return read_snapshots(self.path)

    def dataset(self) -> Dataset:
        """The training data, rebuilt from `config.data` (cached on this object)."""
        if self._dataset is None:
            self._dataset = load_dataset(self.config.data)
        return self._dataset

    def read_analysis(self) -> dict[str, Any]:
        """The cached analysis, or {} when there is none or it is unreadable."""
        try:
            data = read_json(self.path / ANALYSIS_FILE)
        except RunError:
            return {}
        return data if isinstance(data, dict) else {}

    def write_analysis(self, data: dict[str, Any], allow_shipped: bool = False) -> bool:
        """Cache analysis results; returns False (writes nothing) for shipped runs or when the
        folder cannot be written, so a read-only install still works, just uncached."""
        if self.shipped and not allow_shipped:
            return False
        try:
            RunWriter(self.path, allow_shipped).write_analysis(data)
        except (OSError, RunError):
            return False
        return True


def load_run(path: Path | str) -> LoadedRun:
    """Open a run folder; RunError (naming the file at fault) when it cannot be used.

    Weights come from `weights.safetensors`, or from `checkpoint.safetensors` while a run has
    not finished. Nothing in the folder is modified.
    """
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"no run folder at {path}")
    config = read_run_config(path)
    cfg_file = path / CONFIG_FILE
    try:
        get_entry(config.model)
        model = build_model(config.model, config.model_config)
    except ConfigError as exc:
        raise RunError(f"{cfg_file}: {exc}") from exc
    weights = path / WEIGHTS_FILE
    if weights.exists():
        state, meta = _read_safetensors(weights)
        source = weights
        step = meta.get("step")
        weights_step = int(step) if step and step.isdigit() else None
    elif (path / CHECKPOINT_FILE).exists():
        ckpt = read_checkpoint(path)
        state, source, weights_step = ckpt.model_state, path / CHECKPOINT_FILE, ckpt.step
    else:
        raise RunError(f"{path} has no weights yet ({WEIGHTS_FILE} is missing)")
    check_state_matches(model, state, source)
    model.load_state_dict(state)
    model.eval()
    status_path = path / STATUS_FILE
    status = read_json(status_path) if status_path.exists() else {}
    if not isinstance(status, dict):
        raise RunError(f"{status_path} is not a run status (expected a JSON object)")
    return LoadedRun(path, config, model, status, weights_step)


@dataclass(frozen=True)
class RunInfo:
    path: Path
    name: str
    model: str  # "" when unknown (broken folder)
    state: str  # created/queued/running/completed/stopped/failed/interrupted/broken
    shipped: bool
    steps: int  # steps done
    created: str  # ISO time, "" when unknown
    total_steps: int = 0
    error: str | None = None  # why training failed, or why the folder is broken


def list_runs(dirs: list[Path] | None = None) -> list[RunInfo]:
    """Every run folder in `dirs` (default: the runs folder, then the shipped examples).

    Cheap (reads only the JSON files) and never raises: a folder that cannot be read is
    listed with state 'broken' and the reason. Newest first within each folder.
    """
    roots = [Path(d) for d in dirs] if dirs is not None else [default_runs_dir(), SHIPPED_DIR]
    out: list[RunInfo] = []
    for root in roots:
        try:
            children = [c for c in root.iterdir() if c.is_dir() and not c.name.startswith(".")]
        except OSError:
            continue
        infos = [_run_info(c) for c in children]
        infos.sort(key=lambda r: (r.created, r.name), reverse=True)
        out.extend(infos)
    return out


def _run_info(path: Path) -> RunInfo:
    shipped = is_shipped(path)
    try:
        mtime = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(path.stat().st_mtime))
    except OSError:
        mtime = ""
    try:
        config = read_run_config(path)
        status_path = path / STATUS_FILE
        status = read_json(status_path) if status_path.exists() else {}
        if not isinstance(status, dict):
            raise RunError(f"{status_path} is not a run status (expected a JSON object)")
        check_run_config(config)  # unknown model or a bad model config: ConfigError
        weights = path / WEIGHTS_FILE
        if weights.exists():
            _check_safetensors_header(weights)
        state = effective_state(status)
        if state == "unknown" and (path / WEIGHTS_FILE).exists():
            state = "completed"
        return RunInfo(path=path, name=path.name, model=config.model, state=state,
                       shipped=shipped, steps=_int(status.get("steps_done")),
                       created=str(status.get("created") or mtime),
                       total_steps=_int(status.get("total_steps"), config.train.steps),
                       error=status.get("error"))
    except Exception as exc:  # a listing must never fail because of one folder
        return RunInfo(path=path, name=path.name, model="", state="broken", shipped=shipped,
                       steps=0, created=mtime, error=str(exc))


def _int(v: Any, default: int = 0) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else default
