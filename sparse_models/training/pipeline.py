"""One training run from config to folder: data, model, `train`, and every file of the run.

`execute_run` is what the CLI calls directly and what the job manager calls in a thread. It owns
the run folder's files; `train` only sees batches and callbacks.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..config import ConfigError
from ..data import DataError, batches, load_dataset
from ..models import build_model
from ..models.base import SparseModel
from .health import assess
from .runs import (
    CHECKPOINT_FILE,
    Checkpoint,
    RunConfig,
    RunError,
    RunLock,
    RunWriter,
    check_resumable,
    check_weights_fit,
    create_run,
    parent_parameters,
    read_snapshots,
    remove_orphaned_temporaries,
    restore_rng,
)
from .trainer import StepInfo, TrainingDiverged, make_optimizer, resolve_device, train

MAX_SNAPSHOTS = 200  # past this, every other snapshot is dropped and the interval doubles
PROGRESS_FILTERS_EVERY_S = 1.0  # live filters reach the UI at least this often (on log steps)

# Model construction may draw from torch's global RNG; the lock keeps seeding + building atomic
# when several runs start in different threads.
_BUILD_LOCK = threading.Lock()

ProgressCallback = Callable[[StepInfo, "np.ndarray | None"], None]


def execute_run(
    config: RunConfig,
    run_dir: Path | str,
    should_stop: Callable[[], bool] | None = None,
    on_progress: ProgressCallback | None = None,
    init_from: Path | str | None = None,
    resume: bool = False,
    allow_shipped: bool = False,
) -> str:
    """Train `config` into the existing folder `run_dir`; returns the final state.

    States: 'completed'; 'stopped' (should_stop() returned True; checkpoint written, resumable);
    'failed' (status.json holds the error; files from before the failure are left intact).
    init_from: a finished run whose parameters start this one (buffers such as pool matrices
      come from `config`); its parameter shapes must match (RunError otherwise, as 'failed').
    resume: continue from `run_dir/checkpoint.safetensors` (model, optimiser, RNG, step; the
      batch order continues where it stopped), or start over when there is no checkpoint.
    on_progress(info, filters): on every log step; `filters` (N, h, w) is the newest snapshot,
      or the current filters when none was sent for `PROGRESS_FILTERS_EVERY_S`, else None.
      A fresh run also reports step 0 (empty metrics, the initial filters) before training.
    A shipped run folder is refused (RunError) unless `allow_shipped`. So are, before any file
    of the run changes: a run another writer holds (`RunLock`), and a resume whose checkpoint is
    damaged, past the run's steps, or does not fit (`check_resumable`).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"no run folder at {run_dir}; make one with create_run first")
    writer = RunWriter(run_dir, allow_shipped)
    with RunLock(run_dir):  # one writer per run; RunError before anything is touched
        remove_orphaned_temporaries(run_dir)
        # A resume checks its checkpoint in full first: a damaged one changes no file.
        ckpt = check_resumable(run_dir, config) if resume else None
        return _run_locked(config, run_dir, writer, should_stop, on_progress, init_from, ckpt)


def _run_locked(
    config: RunConfig,
    run_dir: Path,
    writer: RunWriter,
    should_stop: Callable[[], bool] | None,
    on_progress: ProgressCallback | None,
    init_from: Path | str | None,
    ckpt: Checkpoint | None,
) -> str:
    stop = should_stop or (lambda: False)
    writer.update_status(state="running", error=None, traceback=None, pid=os.getpid(),
                         host=socket.gethostname(), started=_now_iso(),
                         total_steps=config.train.steps)
    try:
        return _execute(config, run_dir, writer, stop, on_progress, init_from, ckpt)
    except Exception as exc:
        known = (RunError, ConfigError, DataError, TrainingDiverged)
        message = str(exc) if isinstance(exc, known) else f"{type(exc).__name__}: {exc}"
        _record_failure(writer, message, traceback.format_exc(limit=20))
        return "failed"
    except BaseException:  # KeyboardInterrupt / SystemExit: record it, then let it through
        _record_failure(writer, "interrupted", traceback.format_exc(limit=5))
        raise


def _record_failure(writer: RunWriter, message: str, tb: str) -> None:
    try:
        writer.update_status(state="failed", error=message, traceback=tb, finished=_now_iso())
    except Exception:  # e.g. the disk is full: the earlier files are still intact
        pass


def _execute(
    config: RunConfig,
    run_dir: Path,
    writer: RunWriter,
    stop: Callable[[], bool],
    on_progress: ProgressCallback | None,
    init_from: Path | str | None,
    ckpt: Checkpoint | None,
) -> str:
    tcfg = config.train
    device = resolve_device(tcfg.device)
    writer.update_status(device=str(device))

    ds = load_dataset(config.data)  # the config was fitted to this shape when it was made
    writer.write_config(config)
    if ds.info.get("notice"):  # which data it really is, e.g. MNIST's subset in place of the full set
        writer.update_status(data_notice=str(ds.info["notice"]))

    with _BUILD_LOCK:
        torch.manual_seed(tcfg.seed)
        model = build_model(config.model, config.model_config)
    model.to(device)
    optimizer = make_optimizer(model, tcfg)

    start_step, elapsed_before, stride = 0, 0.0, 1
    snap_steps: list[int] = []
    snap_filters: list[np.ndarray] = []
    ckpt_path = run_dir / CHECKPOINT_FILE
    if ckpt is not None:
        _load_state(model, ckpt.model_state, ckpt_path)
        optimizer.load_state_dict(ckpt.optimizer_state)
        restore_rng(ckpt.rng)
        start_step = ckpt.step
        elapsed_before = float(ckpt.extra.get("elapsed_s", 0.0))
        stride = int(ckpt.extra.get("snapshot_stride", 1))
        try:
            steps, filters, snap_kind = read_snapshots(run_dir)
            keep = steps <= start_step
            if snap_kind == model.default_filter_kind():
                snap_steps, snap_filters = steps[keep].tolist(), list(filters[keep])
        except RunError:  # missing or broken: the replay restarts here, training is unaffected
            pass
    elif init_from is not None:
        _copy_parameters(model, config, Path(init_from))
    writer.truncate_metrics(start_step)

    kind = model.default_filter_kind()
    fresh: list[np.ndarray] = []  # a snapshot taken since the last progress callback
    last_sent = [time.monotonic()]

    def current_filters() -> np.ndarray:
        return model.filters(kind).detach().cpu().numpy().astype(np.float32, copy=True)

    def take_snapshot(step: int) -> None:
        nonlocal stride
        f = current_filters()
        snap_steps.append(step)
        snap_filters.append(f)
        fresh[:] = [f]
        if len(snap_steps) > MAX_SNAPSHOTS:
            stride *= 2
            keep = [i for i, s in enumerate(snap_steps) if s % (tcfg.snapshot_every * stride) == 0]
            snap_steps[:] = [snap_steps[i] for i in keep]
            snap_filters[:] = [snap_filters[i] for i in keep]

    t0 = time.perf_counter()

    def elapsed() -> float:
        return elapsed_before + time.perf_counter() - t0

    def save_progress(step: int) -> None:
        writer.save_checkpoint(model, optimizer, step,
                               extra={"elapsed_s": elapsed(), "snapshot_stride": stride})
        writer.save_snapshots(snap_steps, snap_filters, kind)

    x_test = y_test = None
    if ds.has_test:
        x_test = ds.x_test.to(device)
        y_test = ds.y_test.to(device) if ds.y_test is not None else None
    evaluated: list[int] = []

    def evaluate(step: int) -> None:
        """Metrics on the held-out split, logged as a `"split": "test"` line."""
        if x_test is None or step in evaluated:
            return
        evaluated.append(step)
        values = model.evaluate(x_test, y_test)
        writer.append_metrics([{"step": step, "split": "test",
                                "elapsed_s": round(elapsed(), 3), **values}])

    def after_step(step: int) -> None:
        if tcfg.snapshot_every and step % (tcfg.snapshot_every * stride) == 0:
            take_snapshot(step)
        if tcfg.eval_every and step % tcfg.eval_every == 0:
            evaluate(step)
        if tcfg.checkpoint_every and step % tcfg.checkpoint_every == 0 and step < tcfg.steps:
            save_progress(step)
            writer.update_status(steps_done=step, elapsed_s=elapsed())

    def on_step(info: StepInfo) -> None:
        info = replace(info, elapsed_s=elapsed_before + info.elapsed_s)
        writer.append_metrics([{"step": info.step, "elapsed_s": round(info.elapsed_s, 3),
                                **info.metrics}])
        if on_progress is None:
            return
        filters = None
        if fresh:
            filters = fresh.pop()
        elif time.monotonic() - last_sent[0] >= PROGRESS_FILTERS_EVERY_S:
            filters = current_filters()
        if filters is not None:
            last_sent[0] = time.monotonic()
        on_progress(info, filters)

    if tcfg.snapshot_every and start_step == 0:
        take_snapshot(0)  # the initial filters, so the replay starts from the beginning
    if on_progress is not None and start_step == 0:
        on_progress(StepInfo(0, tcfg.steps, {}, 0.0, 0.0), fresh.pop() if fresh else None)

    result = train(model, batches(ds, tcfg.batch_size, seed=tcfg.seed, device=device,
                                  start_step=start_step),
                   tcfg, on_step=on_step, should_stop=stop, start_step=start_step,
                   optimizer=optimizer, after_step=after_step)

    state = "stopped" if result.stopped else "completed"
    evaluate(result.step)
    if state == "completed" and tcfg.snapshot_every and (not snap_steps
                                                         or snap_steps[-1] != result.step):
        take_snapshot(result.step)
    save_progress(result.step)
    writer.save_weights(model, result.step)
    # "Still at its random start" only means something for a run that began from random weights.
    fresh_start = init_from is None and config.parent is None
    initial = snap_filters[0] if fresh_start and snap_steps and snap_steps[0] == 0 else None
    health = assess(model, ds.x, initial)
    total = elapsed()
    session_steps = result.step - start_step
    writer.update_status(
        state=state, error=None, steps_done=result.step, elapsed_s=total,
        samples_per_s=(session_steps * tcfg.batch_size / result.elapsed_s
                       if result.elapsed_s > 0 else None),
        metrics=result.metrics, finished=_now_iso(), health=health.to_dict())
    return state


def create_run_from_model(config: RunConfig, model: SparseModel,
                          runs_dir: Path | str | None = None, name: str | None = None) -> Path:
    """A new run folder for `config` whose step-0 checkpoint holds `model`'s whole state
    (parameters and buffers, e.g. a pruned model's atoms and learned S) with a fresh optimiser,
    so `execute_run(config, path, resume=True)` (or the job manager's resume) trains on from
    it through the normal pipeline. RunError, before any folder is made, when the model does
    not fit the config."""
    fresh = build_model(config.model, config.model_config)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    check_weights_fit(fresh, state, f"the given {model.name!r} model")
    fresh.load_state_dict(state)
    path = create_run(config, runs_dir, name)
    RunWriter(path).save_checkpoint(fresh, make_optimizer(fresh, config.train), 0,
                                    extra={"elapsed_s": 0.0, "snapshot_stride": 1})
    return path


def _load_state(model: SparseModel, state: dict[str, torch.Tensor], source: Path) -> None:
    check_weights_fit(model, state, source)
    model.load_state_dict(state)


def _copy_parameters(model: SparseModel, config: RunConfig, parent_dir: Path) -> None:
    """Start from a previous run's parameters (what-if retraining); they must fit."""
    theirs = parent_parameters(config, parent_dir, model)
    with torch.no_grad():
        for k, p in model.named_parameters():
            p.copy_(theirs[k])


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")
