"""The training loop: batches in, one `model.train_step` per step, progress out through callbacks.

`train` knows nothing about files, threads or the UI (house style 7): the pipeline
(`pipeline.py`) wires it to a run folder, the job manager (`jobs.py`) to a background thread.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch

from ..config import ConfigError, check, check_ranges, setting
from ..models.base import SparseModel
from .optim import SGD, AdamW, Optimizer

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = setting(2000, label="Steps", min=1, max=10_000_000,
                         help="Optimiser steps in total (a resumed run continues up to this).")
    batch_size: int = setting(256, label="Batch size", min=1, max=65_536,
                              help="Samples per step.")
    lr: float = setting(3e-3, label="Learning rate", min=1e-9, max=10.0,
                        help="Before each model's per-matrix scaling.")
    optimizer: Literal["adam", "sgd"] = setting("adam", label="Optimiser",
                                                help="Adam, or plain SGD (no momentum).")
    lr_warmup: int = setting(0, label="Warm-up (steps)", min=0, max=10_000_000,
                             help="The rate rises in a straight line from lr/warm-up to lr over "
                                  "the first this many steps; 0: off.")
    lr_decay: Literal["constant", "cosine"] = setting(
        "constant", label="Rate decay",
        help="constant, or cosine: after the warm-up the rate falls along half a cosine from lr "
             "to 0 at the end of training.")
    device: str = setting("auto", label="Device",
                          help="auto: CUDA when available, else CPU; or cpu, cuda, cuda:N.")
    seed: int = setting(0, label="Seed", min=0, max=2**31 - 1,
                        help="Seeds the batch order and any randomness inside training steps.")
    log_every: int = setting(10, label="Log every (steps)", min=1, max=1_000_000, form=False)
    snapshot_every: int = setting(100, label="Snapshot every (steps)", min=0, max=1_000_000,
                                  form=False)  # filter snapshots for the replay; 0 = off
    checkpoint_every: int = setting(500, label="Checkpoint every (steps)", min=0,
                                    max=10_000_000, form=False)  # 0 = only at the end
    threads: int = setting(0, label="CPU threads", min=0, max=512,
                           help="torch threads for training on the CPU (process-wide); 0 "
                                "leaves torch's default.")
    eval_every: int = setting(500, label="Evaluate every (steps)", min=0, max=10_000_000,
                              help="Steps between evaluations on the data's held-out split "
                                   "(and one at the end); 0 = only at the end. Data without a "
                                   "held-out split is not evaluated.")

    def __post_init__(self) -> None:
        check(_is_int(self.steps) and self.steps >= 1,
              f"train.steps must be a positive integer, got {self.steps!r}")
        check(_is_int(self.batch_size) and self.batch_size >= 1,
              f"train.batch_size must be a positive integer, got {self.batch_size!r}")
        check(isinstance(self.lr, int | float) and not isinstance(self.lr, bool)
              and math.isfinite(self.lr) and self.lr > 0,
              f"train.lr must be a positive number, got {self.lr!r}")
        check(self.optimizer in ("adam", "sgd"),
              f"train.optimizer must be adam or sgd, got {self.optimizer!r}")
        check(_is_int(self.lr_warmup) and self.lr_warmup >= 0,
              f"train.lr_warmup must be 0 (off) or a positive number of steps, "
              f"got {self.lr_warmup!r}")
        check(self.lr_decay in ("constant", "cosine"),
              f"train.lr_decay must be constant or cosine, got {self.lr_decay!r}")
        # Only the spelling is checked here: a run trained on a GPU must still load on a laptop.
        # Whether the device exists is checked by `resolve_device` when training starts.
        check(isinstance(self.device, str) and bool(_DEVICE_RE.match(self.device)),
              f"train.device must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        check(_is_int(self.seed) and self.seed >= 0,
              f"train.seed must be a non-negative integer, got {self.seed!r}")
        check(_is_int(self.log_every) and self.log_every >= 1,
              f"train.log_every must be a positive integer, got {self.log_every!r}")
        check(_is_int(self.snapshot_every) and self.snapshot_every >= 0,
              f"train.snapshot_every must be 0 (off) or a positive integer, "
              f"got {self.snapshot_every!r}")
        check(_is_int(self.checkpoint_every) and self.checkpoint_every >= 0,
              f"train.checkpoint_every must be 0 (only at the end) or a positive integer, "
              f"got {self.checkpoint_every!r}")
        check(_is_int(self.threads) and self.threads >= 0,
              f"train.threads must be 0 (default) or a positive integer, got {self.threads!r}")
        check(_is_int(self.eval_every) and self.eval_every >= 0,
              f"train.eval_every must be 0 (only at the end) or a positive integer, "
              f"got {self.eval_every!r}")
        check_ranges(self, "train.")


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """The schedule's multiple of every rate for step `step` (1-based) of `cfg.steps`: a linear
    warm-up over `lr_warmup` steps, then constant or half a cosine that reaches 0 after the last
    step (Loshchilov & Hutter, SGDR, ICLR 2017, without restarts). It depends on the step number
    alone, so a resumed run picks the schedule up where it stopped."""
    f = min(1.0, step / cfg.lr_warmup) if cfg.lr_warmup else 1.0
    if cfg.lr_decay == "cosine":
        start = min(cfg.lr_warmup, cfg.steps - 1)  # so at least one step follows the warm-up
        done = max(0, step - 1 - start) / (cfg.steps - start)
        f *= 0.5 * (1.0 + math.cos(math.pi * done))
    return f


@dataclass(frozen=True)
class StepInfo:
    step: int  # steps completed so far (1-based; counts steps before a resume too)
    total_steps: int
    metrics: dict[str, float]  # each loss term at this step
    elapsed_s: float  # wall time since `train` was called
    samples_per_s: float  # throughput since `train` was called


@dataclass
class TrainResult:
    step: int  # steps completed (== total_steps unless stopped)
    total_steps: int
    stopped: bool  # should_stop() ended training early
    metrics: dict[str, float]  # the last logged metrics
    elapsed_s: float
    optimizer: Optimizer = field(repr=False)


class TrainingDiverged(RuntimeError):
    """A loss term became NaN or infinite; the weights after `step` are not usable."""

    def __init__(self, step: int, term: str, exact: bool = True) -> None:
        self.step = step
        self.term = term
        where = f"at step {step}" if exact else f"by step {step}"
        super().__init__(
            f"training diverged {where}: loss term {term!r} became NaN or infinite. "
            f"Try a smaller learning rate (train.lr) or a smaller penalty weight."
        )


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` -> cuda when available else cpu; `cuda`/`cuda:N` must exist (ConfigError if not)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not _DEVICE_RE.match(name or ""):
        raise ConfigError(f"train.device must be auto, cpu, cuda or cuda:N; got {name!r}")
    if not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but CUDA is not available on this machine; "
                          f"use train.device=cpu or auto")
    dev = torch.device(name)
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise ConfigError(f"train.device is {name!r} but this machine has {count} CUDA "
                          f"device(s): cuda:0..cuda:{count - 1}")
    return dev


def make_optimizer(model: SparseModel, cfg: TrainConfig) -> Optimizer:
    """Adam or SGD over `model.param_groups(cfg.lr)` (models scale per-matrix rates there)."""
    groups = model.param_groups(cfg.lr)
    if cfg.optimizer == "adam":
        # AdamW: weight decay, where a model's group asks for it, is decoupled from the adaptive
        # step (with none it is plain Adam).
        return AdamW(groups, lr=cfg.lr, weight_decay=0.0)
    return SGD(groups, lr=cfg.lr)


def train(
    model: SparseModel,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor | None]],
    cfg: TrainConfig,
    on_step: Callable[[StepInfo], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    start_step: int = 0,
    optimizer: Optimizer | None = None,
    after_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Run `model.train_step` from `start_step` up to `cfg.steps`.

    batches: yields `(x: (B, n_inputs), y: (B,) | None)` already on the model's device.
    on_step: called every `cfg.log_every` steps and at the last step, with the loss terms.
    should_stop: polled before every step; when it returns True the loop ends early.
    after_step: called after every step with the step number (no device sync; the pipeline
      hangs snapshots and checkpoints on it).
    The model is not moved; the caller places it and the batches on the same device.
    Raises TrainingDiverged when a loss term is NaN/inf (checked every step on the CPU, at
    log steps on a GPU to avoid a sync per step).
    """
    if not 0 <= start_step <= cfg.steps:
        raise ValueError(f"start_step {start_step} is outside 0..{cfg.steps}")
    # Always set, even to the current value: OpenMP keeps the thread count per OS thread, so a
    # worker thread would otherwise ignore torch.set_num_threads from the main thread (and use
    # every core, which on a busy machine made tiny models ~100x slower in a job thread).
    torch.set_num_threads(cfg.threads or torch.get_num_threads())
    if start_step == 0:
        # Seeds randomness inside train_step; a resumed run restores the RNG state instead.
        torch.manual_seed(cfg.seed)
    opt = optimizer if optimizer is not None else make_optimizer(model, cfg)
    model.train()

    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    check_every = 1 if device.type == "cpu" else cfg.log_every
    t0 = time.perf_counter()
    step = start_step
    last: dict[str, float] = {}
    names: list[str] = []
    finite: torch.Tensor | None = None  # device-side "all finite so far", reset when checked
    stopped = False

    while step < cfg.steps:
        if should_stop is not None and should_stop():
            stopped = True
            break
        x, y = next(batches)
        opt.lr_scale = lr_factor(step + 1, cfg)
        terms = model.train_step(x, y, opt)
        step += 1
        if not names:
            names = list(terms)
        values = torch.stack([terms[k].detach().float().reshape(()) for k in names])
        ok = torch.isfinite(values).all()
        finite = ok if finite is None else finite & ok
        log_now = step % cfg.log_every == 0 or step == cfg.steps
        if step % check_every == 0 or log_now:
            if not bool(finite):
                raise TrainingDiverged(step, _culprit(names, values.tolist()),
                                       exact=check_every == 1)
            finite = None
        if log_now:
            last = dict(zip(names, values.tolist(), strict=True))
            if on_step is not None:
                on_step(_info(step, cfg, last, t0, start_step))
        if after_step is not None:
            after_step(step)

    if finite is not None and not bool(finite):
        raise TrainingDiverged(step, _culprit(names, values.tolist()), exact=False)
    elapsed = time.perf_counter() - t0
    return TrainResult(step=step, total_steps=cfg.steps, stopped=stopped, metrics=last,
                       elapsed_s=elapsed, optimizer=opt)


def _culprit(names: list[str], values: list[float]) -> str:
    """The first non-finite term, preferring a component over the total 'loss' it spoils."""
    bad = [k for k, v in zip(names, values, strict=True) if not math.isfinite(v)]
    parts = [k for k in bad if k != "loss"]
    return (parts or bad or ["loss"])[0]


def _info(step: int, cfg: TrainConfig, metrics: dict[str, float], t0: float,
          start_step: int) -> StepInfo:
    elapsed = time.perf_counter() - t0
    rate = (step - start_step) * cfg.batch_size / elapsed if elapsed > 0 else 0.0
    return StepInfo(step=step, total_steps=cfg.steps, metrics=metrics, elapsed_s=elapsed,
                    samples_per_s=rate)
