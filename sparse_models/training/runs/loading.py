"""Opening a run folder for reading: its config, its model with the saved weights, its files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...config import ConfigError
from ...data import Dataset, load_dataset
from ...models import build_model
from ...models.base import Layout, SparseModel
from .checkpoints import (
    Checkpoint,
    _read_safetensors,
    check_weights_fit,
    read_checkpoint,
    read_snapshots,
)
from .format import (
    ANALYSIS_FILE,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    SNAPSHOTS_FILE,
    STATUS_FILE,
    WEIGHTS_FILE,
    RunConfig,
    RunError,
    is_shipped,
    read_json,
    read_metrics,
    read_run_config,
)
from .listing import effective_state
from .writer import RunWriter


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
    def layout(self) -> Layout:
        return self.model.layout

    @property
    def map_periodic(self) -> bool:
        return bool(self.model.map_periodic)

    def filters(self, kind: str | None = None) -> np.ndarray:
        """`(N, C, h, w)` filter images of `kind` (default: the model's default kind)."""
        kind = kind or self.model.default_filter_kind()
        return self.model.filters(kind).detach().cpu().numpy()

    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.path)

    def snapshots(self) -> tuple[np.ndarray, np.ndarray, str]:
        """`(steps (S,), filters (S, N, C, h, w), kind)`; empty arrays when none were recorded."""
        kind = self.model.default_filter_kind()
        if not (self.path / SNAPSHOTS_FILE).exists():
            shape = tuple(self.model.filters(kind).shape)
            return np.zeros(0, np.int64), np.zeros((0, *shape), np.float32), kind
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
        """Cache analysis results; returns False (writes nothing) for shipped runs, when the
        folder cannot be written (a read-only install still works, just uncached), or when an
        existing cache file is damaged (no file of the run is changed by reading it)."""
        if self.shipped and not allow_shipped:
            return False
        path = self.path / ANALYSIS_FILE
        if path.exists():
            try:
                if not isinstance(read_json(path), dict):
                    return False
            except RunError:  # a damaged cache is left as it is (it may be evidence)
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
    check_weights_fit(model, state, source)
    model.load_state_dict(state)
    model.eval()
    # The status only describes the run: a damaged one costs that description, not the run.
    try:
        status = read_json(path / STATUS_FILE) if (path / STATUS_FILE).exists() else {}
    except RunError:
        status = {}
    return LoadedRun(path, config, model, status if isinstance(status, dict) else {},
                     weights_step)




def parent_parameters(config: RunConfig, parent_dir: Path | str,
                      model: SparseModel | None = None) -> dict[str, Any]:
    """The parameters of run `parent_dir` to start a new run of `config` from (a what-if), checked
    to fit that run's model (`check_weights_fit`; buffers such as pool matrices come from the new
    config, so a what-if may change them). RunError in words when they do not fit."""
    parent_dir = Path(parent_dir)
    if not (parent_dir / CONFIG_FILE).exists():
        raise RunError(f"cannot initialise from {parent_dir}: it is not a run folder")
    parent = load_run(parent_dir)
    if parent.config.model != config.model:
        raise RunError(f"cannot initialise a {config.model!r} model from {parent_dir.name}: "
                       f"it is a {parent.config.model!r} run")
    model = model if model is not None else build_model(config.model, config.model_config)
    mine = [k for k, _ in model.named_parameters()]
    theirs = dict(parent.model.named_parameters())
    state = {k: v.detach() for k, v in theirs.items()}
    check_weights_fit(model, state, parent_dir / WEIGHTS_FILE, only=mine)
    return state


def check_resumable(run_dir: Path | str, config: RunConfig) -> Checkpoint | None:
    """The run's checkpoint, checked in full before anything in the folder is touched: readable,
    at a step within the run, with tensors that fit the model and are finite (optimiser state
    too). None when the run has no checkpoint (it stopped before its first one: a resume starts
    it over). RunError in words otherwise."""
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT_FILE
    if not path.exists():
        return None
    ckpt = read_checkpoint(run_dir)
    if not 0 <= ckpt.step <= config.train.steps:
        raise RunError(f"{path} is at step {ckpt.step}, outside this run's 0..{config.train.steps} "
                       f"steps; raise train.steps to continue it")
    model = build_model(config.model, config.model_config)
    check_weights_fit(model, ckpt.model_state, path)
    for values in ckpt.optimizer_state.get("state", {}).values():
        for name, v in values.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not bool(
                    torch.isfinite(v).all()):
                raise RunError(f"{path}: the optimiser's {name} holds NaN or infinite values; "
                               f"the checkpoint is damaged")
    return ckpt
