"""Writing a run folder: `create_run` makes it, `RunWriter` does every write into it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import save as st_save

from ...models.base import SparseModel
from .checkpoints import _meta, _tensors_for_saving
from .format import (
    ANALYSIS_FILE,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    SHIPPED_DIR,
    SNAPSHOTS_FILE,
    STATUS_FILE,
    WEIGHTS_FILE,
    RunConfig,
    RunError,
    _check_writable,
    _clean_json,
    atomic_write_bytes,
    config_file_dict,
    default_runs_dir,
    dumps_json,
    is_shipped,
    read_json,
    read_metrics,
    sanitize_run_name,
    write_json_atomic,
)

if TYPE_CHECKING:  # the trainer's optimiser (models do not import the trainer)
    from ..optim import Optimizer


class RunWriter:
    """Every write into one run folder goes through here (read-only check done once)."""

    def __init__(self, path: Path | str, allow_shipped: bool = False) -> None:
        self.path = Path(path)
        _check_writable(self.path, allow_shipped)

    def write_config(self, config: RunConfig) -> None:
        write_json_atomic(self.path / CONFIG_FILE, config_file_dict(config))

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

    def save_checkpoint(self, model: SparseModel, optimizer: Optimizer, step: int,
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

    def save_snapshots(self, steps: list[int], filters: list[np.ndarray], kind: str) -> None:
        """Filters `(N, C, h, w)` of one `kind` at each of `steps`."""
        if not steps:
            return
        tensors = {"steps": torch.tensor(steps, dtype=torch.int64),
                   # Half precision: the replay only displays them, and it halves the file.
                   "filters": torch.from_numpy(np.stack(filters).astype(np.float16))}
        atomic_write_bytes(self.path / SNAPSHOTS_FILE,
                           st_save(tensors, metadata=_meta("snapshots", filter_kind=kind)))

    def write_analysis(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.path / ANALYSIS_FILE, data)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def reserved_names() -> set[str]:
    """Names no user run may take: those of the shipped example runs (lower case)."""
    try:
        return {p.name.lower() for p in SHIPPED_DIR.iterdir() if p.is_dir()}
    except OSError:
        return set()


def check_run_name(name: str) -> str:
    """The folder name a user's run called `name` gets; RunError in words when it cannot have
    it (bad characters, or a shipped run's name)."""
    clean = sanitize_run_name(name)
    if clean.lower() in reserved_names():
        raise RunError(f"{clean!r} is the name of a shipped example run; pick another name")
    return clean


def create_run(config: RunConfig, runs_dir: Path | str | None = None, name: str | None = None,
               allow_shipped: bool = False, state: str = "created") -> Path:
    """Make a new run folder holding `config.json` and `status.json`; returns its path.

    Without `name`, the folder is called `<model>-YYYYmmdd-HHMMSS` (with `-2`, `-3`, ... when
    taken). An existing `name` is an error: resume an existing run through `execute_run`. The
    names of the shipped runs are reserved (case-insensitively) outside the shipped folder, so a
    user's run can never hide a shipped example.
    """
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    _check_writable(root, allow_shipped)
    if root.exists() and not root.is_dir():
        raise RunError(f"{root} is a file, not a folder for runs; name a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot make the runs folder {root}: {exc.strerror or exc}") from exc
    if name is not None:
        path = root / (sanitize_run_name(name) if is_shipped(root) else check_run_name(name))
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


