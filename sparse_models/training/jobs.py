"""Background training jobs: a queue, worker threads, stop signals, and live progress to poll.

The app keeps one `JobManager` (e.g. in `st.cache_resource`) and only calls its methods; pages
never touch a worker thread (house style 7). Each job is one `execute_run` in a daemon thread:
torch releases the GIL inside its kernels, so the UI thread stays responsive. Everything the
threads share sits behind one lock; callers get copies.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data import check_data
from .pipeline import execute_run
from .runs import (
    RunConfig,
    RunError,
    RunLock,
    RunWriter,
    check_resumable,
    create_run,
    default_runs_dir,
    parent_parameters,
    read_run_config,
)
from .trainer import StepInfo, resolve_device

MAX_HISTORY = 4000  # live-curve points kept per job; past this every other one is dropped
TERMINAL = ("completed", "stopped", "failed")


@dataclass
class JobStatus:
    id: str
    name: str  # run folder name
    run_dir: Path
    model: str
    state: str = "queued"  # queued | running | completed | stopped | failed
    step: int = 0
    total_steps: int = 0
    progress: float = 0.0  # step / total_steps, 0..1
    eta_s: float | None = None  # seconds left; None until a rate has been measured
    elapsed_s: float = 0.0  # training time so far (including before a resume)
    metrics: dict[str, float] = field(default_factory=dict)  # latest loss terms
    history: list[dict[str, float]] = field(default_factory=list)  # {step, elapsed_s, terms}
    error: str | None = None
    device: str = ""
    submitted: float = 0.0  # time.time() at submit
    health: dict[str, Any] | None = None  # the finished run's verdict (training/health.py)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


@dataclass
class _Job:
    status: JobStatus
    config: RunConfig | None
    init_from: Path | None
    resume: bool
    order: int
    stop_event: threading.Event = field(default_factory=threading.Event)
    done_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    snapshot: np.ndarray | None = None
    started: float | None = None  # time.monotonic() when the thread started
    elapsed_before: float = 0.0  # training time before this session (resumed runs)
    last_info: float | None = None  # time.monotonic() of the last progress callback


class JobManager:
    """Runs training jobs in background threads, at most `max_concurrent` at a time."""

    def __init__(self, runs_dir: Path | str | None = None, max_concurrent: int = 1) -> None:
        if not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise ValueError(f"max_concurrent must be a positive integer, got {max_concurrent!r}")
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.max_concurrent = max_concurrent
        self._lock = threading.RLock()
        self._jobs: dict[str, _Job] = {}
        self._counter = itertools.count()
        self._closed = False

    # --- submitting -----------------------------------------------------------------------
    def submit(
        self,
        config: RunConfig | None,
        name: str | None = None,
        init_from: Path | str | None = None,
        resume_dir: Path | str | None = None,
    ) -> str:
        """Queue a run; returns the job id. Bad configs raise here (ConfigError / RunError).

        resume_dir: continue that run folder from its checkpoint (config None = its own
          config.json; pass a config to change e.g. train.steps). Otherwise a new folder is
          made in `runs_dir`, called `name` or `<model>-<time>`.
        init_from: a finished run whose parameters start this one (what-if retraining).
        """
        if self._closed:
            raise RuntimeError("this JobManager has been shut down")
        if resume_dir is not None:
            run_dir = Path(resume_dir)
            RunWriter(run_dir)  # refuses shipped runs
            if config is None:
                config = read_run_config(run_dir)
            else:
                read_run_config(run_dir)  # must be a run folder
            check_resumable(run_dir, config)  # a damaged checkpoint: refused, nothing written
        elif config is None:
            raise ValueError("submit needs a config (or resume_dir)")
        device = resolve_device(config.train.device)
        check_data(config.data)  # e.g. a missing image folder: refused before a folder is made
        init_path = Path(init_from) if init_from is not None else None
        if init_path is not None:
            parent_parameters(config, init_path)  # the weights must fit: refused now
            if config.parent is None:
                config = replace(config, parent=str(init_path))

        with self._lock:  # held throughout, so two resumes of one folder cannot both pass
            if resume_dir is not None:
                busy = [j for j in self._jobs.values() if not j.status.done
                        and _same_dir(j.status.run_dir, run_dir)]
                if busy:
                    raise RunError(f"{run_dir.name} is already being trained "
                                   f"(job {busy[0].status.id})")
                # Trained by another process (e.g. the CLI)? Probed only when no job of ours
                # is on it, so the probe never races our own job's lock.
                RunLock(run_dir).acquire().release()
            else:
                run_dir = create_run(config, self.runs_dir, name, state="queued")
            disk = RunWriter(run_dir).update_status(state="queued", pid=os.getpid(),
                                                    host=socket.gethostname(), error=None)
            done_before = disk.get("steps_done") if resume_dir is not None else 0
            job_id = uuid.uuid4().hex[:10]
            status = JobStatus(id=job_id, name=run_dir.name, run_dir=run_dir,
                               model=config.model, total_steps=config.train.steps,
                               device=str(device), submitted=time.time())
            if isinstance(done_before, int) and done_before > 0:  # a resume starts part-way
                status.step = min(done_before, status.total_steps)
                status.progress = status.step / status.total_steps
            job = _Job(status=status, config=config, init_from=init_path,
                       resume=resume_dir is not None, order=next(self._counter))
            self._jobs[job_id] = job
            self._schedule()
        return job_id

    def _schedule(self) -> None:
        """Start queued jobs, oldest first, while fewer than max_concurrent run. Holds the lock."""
        if self._closed:
            return
        running = sum(1 for j in self._jobs.values() if j.status.state == "running")
        for job in sorted(self._jobs.values(), key=lambda j: j.order):
            if running >= self.max_concurrent:
                break
            if job.status.state != "queued":
                continue
            job.status.state = "running"
            job.started = time.monotonic()
            job.thread = threading.Thread(target=self._work, args=(job,), daemon=True,
                                          name=f"train-{job.status.name}")
            job.thread.start()
            running += 1

    # --- the worker -----------------------------------------------------------------------
    def _work(self, job: _Job) -> None:
        state, error = "failed", None
        try:
            state = execute_run(job.config, job.status.run_dir,
                                should_stop=job.stop_event.is_set,
                                on_progress=lambda info, f: self._on_progress(job, info, f),
                                init_from=job.init_from, resume=job.resume)
            disk = RunWriter(job.status.run_dir).read_status()
            if state == "failed":
                error = disk.get("error") or "failed"
                if not job.status.run_dir.is_dir():
                    error = (f"its run folder {job.status.run_dir} was deleted while it "
                             f"trained; nothing was kept")
            steps_done = disk.get("steps_done")
            if isinstance(disk.get("health"), dict):
                with self._lock:
                    job.status.health = disk["health"]
            if isinstance(steps_done, int) and state != "failed":
                with self._lock:
                    job.status.step = steps_done
                    job.status.progress = min(1.0, steps_done / max(1, job.status.total_steps))
        except Exception as exc:  # execute_run records failures itself; this is a last resort
            error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                s = job.status
                s.state, s.error = state, error
                if state == "completed":
                    s.progress, s.eta_s, s.step = 1.0, 0.0, s.total_steps
                else:
                    s.eta_s = None
                s.elapsed_s = self._elapsed(job)
                job.started = None
                job.done_event.set()
                self._schedule()

    def _on_progress(self, job: _Job, info: StepInfo, filters: np.ndarray | None) -> None:
        with self._lock:
            s = job.status
            s.step, s.total_steps = info.step, info.total_steps
            s.progress = min(1.0, info.step / max(1, info.total_steps))
            if info.metrics:
                s.metrics = dict(info.metrics)
                s.history.append({"step": info.step, "elapsed_s": info.elapsed_s,
                                  **info.metrics})
                if len(s.history) > MAX_HISTORY:
                    s.history = s.history[::2]
            batch = job.config.train.batch_size if job.config else 1
            steps_per_s = info.samples_per_s / batch
            s.eta_s = (info.total_steps - info.step) / steps_per_s if steps_per_s > 0 else None
            now = time.monotonic()
            if job.started is not None:
                # elapsed_s in StepInfo counts training before a resume too
                job.elapsed_before = info.elapsed_s - (now - job.started)
            job.last_info = now
            if filters is not None:
                job.snapshot = filters

    def _elapsed(self, job: _Job) -> float:
        if job.started is None:
            return job.status.elapsed_s
        return max(0.0, job.elapsed_before + time.monotonic() - job.started)

    # --- polling and control --------------------------------------------------------------
    def _get(self, job_id: str) -> _Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise KeyError(f"no job {job_id!r}") from None

    def status(self, job_id: str) -> JobStatus:
        """A copy of the job's status (safe to keep and read while training goes on)."""
        with self._lock:
            job = self._get(job_id)
            if job.status.state == "running":
                job.status.elapsed_s = self._elapsed(job)
            s = job.status
            return replace(s, metrics=dict(s.metrics), history=list(s.history))

    def jobs(self) -> list[JobStatus]:
        """Every job this manager knows, newest first."""
        with self._lock:
            ids = [j.status.id for j in sorted(self._jobs.values(), key=lambda j: -j.order)]
            return [self.status(i) for i in ids]

    def snapshot(self, job_id: str) -> np.ndarray | None:
        """The newest filters `(N, h, w)` the job reported, or None before the first."""
        with self._lock:
            return self._get(job_id).snapshot

    def stop(self, job_id: str) -> JobStatus:
        """Ask a running job to stop (it checkpoints and ends 'stopped' within about a second);
        a queued job is cancelled at once. Stopping a finished job does nothing."""
        cancelled = False
        with self._lock:
            job = self._get(job_id)
            if job.status.state == "queued":
                job.status.state = "stopped"
                job.done_event.set()
                cancelled = True
            job.stop_event.set()
        if cancelled:
            try:
                RunWriter(job.status.run_dir).update_status(
                    state="stopped", error=None, note="cancelled before it started")
            except (OSError, RunError):
                pass
        return self.status(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus:
        """Block until the job finishes (or `timeout` seconds pass); returns its status."""
        with self._lock:
            job = self._get(job_id)
        job.done_event.wait(timeout)
        return self.status(job_id)

    def clear_finished(self) -> None:
        """Forget finished jobs (their run folders stay on disk)."""
        with self._lock:
            for job_id in [i for i, j in self._jobs.items() if j.status.done]:
                del self._jobs[job_id]

    def shutdown(self, wait: bool = True, timeout: float | None = 10.0) -> None:
        """Cancel queued jobs, stop running ones, and (with `wait`) join their threads."""
        with self._lock:
            self._closed = True  # nothing new starts from here on
            ids = [i for i, j in self._jobs.items() if not j.status.done]
        for job_id in ids:
            self.stop(job_id)
        with self._lock:
            threads = [j.thread for j in self._jobs.values() if j.thread is not None]
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            for t in threads:
                t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False
