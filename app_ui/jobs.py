"""The one JobManager of this server process, the device line and the sidebar job list.

The manager lives in `st.cache_resource`, so training jobs outlive page switches, reruns and
closed tabs; pages only poll it (house style 7).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import streamlit as st
import torch

from sparse_models.data import DataConfig, load_dataset
from sparse_models.training.jobs import JobManager, JobStatus
from sparse_models.training.runs import default_runs_dir

from .widgets import plain

MAX_LISTED_JOBS = 5
_SEEN_DONE = "_jobs_seen_done"  # session_state: ids of finished jobs this session has shown


@st.cache_resource(show_spinner=False)
def _manager_for(runs_dir: str) -> JobManager:
    return JobManager(runs_dir)


def job_manager() -> JobManager:
    """The shared JobManager writing into the current runs folder ($SPARSE_LAB_RUNS)."""
    return _manager_for(str(default_runs_dir()))


@st.cache_resource(show_spinner=False)
def warm_up_training() -> threading.Thread:
    """Pay the one-off cost of a process's first job in the background, once, while the user
    is still setting it up (called by the Train page, not at start-up, so it does not slow the
    first page): the default images are loaded and whitened (the library caches them)."""

    def work() -> None:
        try:
            load_dataset(DataConfig())
        except Exception:  # only a head start: a real problem shows when the job runs
            pass

    thread = threading.Thread(target=work, name="lab-warm-up", daemon=True)
    thread.start()
    return thread


def wait_for_first_snapshot(job_id: str, timeout: float = 0.5) -> None:
    """Give a just-submitted job a moment to report its initial filters, so the page that
    follows the Start click can already show them (the live panel polls once a second)."""
    manager = job_manager()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if manager.snapshot(job_id) is not None or manager.status(job_id).done:
                return
        except KeyError:
            return
        time.sleep(0.02)


@st.cache_resource(show_spinner=False)
def start_job(config: Any, name: str, message_key: str, what: str = "") -> None:
    """Button callback of a page's retrain controls: train `config` as a background job and
    leave the outcome in `st.session_state[message_key]` as (kind, text) for the next run."""
    from sparse_models.config import ConfigError
    from sparse_models.data import DataError
    from sparse_models.training.runs import RunError

    try:
        job_id = job_manager().submit(config, name=name.strip() or None)
    except (ConfigError, RunError, DataError, ValueError, OSError) as exc:
        st.session_state[message_key] = ("error", f"Could not start: {exc}")
        return
    s = job_manager().status(job_id)
    st.session_state[message_key] = ("success", f"Training {what + ' ' if what else ''}{s.name} "
                                                f"({config.train.steps} steps) in the "
                                                f"background (see Training jobs in the "
                                                f"sidebar).")


def device_label() -> str:
    if torch.cuda.is_available():
        return f"Device: CUDA ({torch.cuda.get_device_name(0)})"
    return "Device: CPU"


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "estimating…"
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def progress_text(s: JobStatus) -> str:
    """E.g. 'step 120 / 2000 · ETA 14 s' (the browser test looks for 'step n / total')."""
    if s.state == "queued":
        return f"step 0 / {s.total_steps} · queued, waiting for a free slot"
    if s.state == "running":
        return f"step {s.step} / {s.total_steps} · ETA {fmt_seconds(s.eta_s)}"
    return f"step {s.step} / {s.total_steps} · {s.state} after {fmt_seconds(s.elapsed_s)}"


def short_progress_text(s: JobStatus) -> str:
    """The sidebar's wording, e.g. '120/2000 steps, 14 s left' (distinct from the Train page's)."""
    if s.state == "running":
        left = "" if s.eta_s is None else f", {fmt_seconds(s.eta_s)} left"
        return f"{s.step}/{s.total_steps} steps{left}"
    state = s.state
    verdict = (s.health or {}).get("verdict") if s.state == "completed" else None
    if verdict in ("warning", "collapsed"):
        state = f"{s.state} but {verdict}" if verdict == "collapsed" else f"{s.state}, {verdict}"
    return f"{s.step}/{s.total_steps} steps, {state}"


def any_running(manager: JobManager | None = None) -> bool:
    m = manager or job_manager()
    return any(not j.done for j in m.jobs())


def remember_finished(manager: JobManager | None = None) -> None:
    """Call on a full rerun: the jobs finished so far are reflected in the run picker."""
    m = manager or job_manager()
    st.session_state[_SEEN_DONE] = {j.id for j in m.jobs() if j.done}


def rerun_if_newly_finished(manager: JobManager | None = None) -> None:
    """From a polling fragment: rerun the whole app once a job has finished, so the run picker
    (drawn outside the fragment) lists the new run."""
    m = manager or job_manager()
    seen = st.session_state.get(_SEEN_DONE, set())
    if any(j.done and j.id not in seen for j in m.jobs()):
        st.rerun(scope="app")


def _stop_job(job_id: str) -> None:
    try:
        job_manager().stop(job_id)
    except KeyError:  # already cleared
        pass


def jobs_sidebar_ui() -> None:
    """Device line and the list of training jobs, refreshed every second while one runs."""
    st.caption(device_label())
    manager = job_manager()
    remember_finished(manager)

    @st.fragment(run_every=1.0 if any_running(manager) else None)
    def _jobs() -> None:
        jobs = manager.jobs()
        if not jobs:
            st.caption("No training jobs yet. Start one on the Train page.")
            return
        st.markdown("**Training jobs**")
        for s in jobs[:MAX_LISTED_JOBS]:
            st.progress(min(1.0, max(0.0, s.progress)),
                        text=f"**{plain(s.name)}**: {short_progress_text(s)}")
            if not s.done:  # every job its own control, whatever tab started it
                st.button("Cancel" if s.state == "queued" else "Stop", key=f"job_stop_{s.id}",
                          on_click=_stop_job, args=(s.id,),
                          help=f"{'Cancel' if s.state == 'queued' else 'Stop'} {s.name}; a "
                               f"stopped run keeps its checkpoint and can be resumed.")
            if s.state == "failed" and s.error:
                st.caption(plain(f"Failed: {s.error}"))
        if len(jobs) > MAX_LISTED_JOBS:
            st.caption(f"… and {len(jobs) - MAX_LISTED_JOBS} older jobs")
        rerun_if_newly_finished(manager)

    _jobs()
