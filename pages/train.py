"""Train: choose a model, its group structure and loss weights, and train in the background.

Training runs in the shared JobManager (a thread per job); this page only submits, stops and
polls. The live panel is a fragment that reruns every second while a job runs.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import streamlit as st

import app_ui
from app_ui.train_settings import (
    base_sections,
    data_ui,
    group_fields,
    group_ui,
    model_choice_ui,
    model_fields_ui,
    pool_preview_ui,
    start_from_ui,
    train_settings_ui,
)
from app_ui.widgets import config_diff, fmt, plain
from sparse_models.config import ConfigError
from sparse_models.data import DataError, check_data
from sparse_models.models import get_entry
from sparse_models.models.base import model_config, square_shape
from sparse_models.plotting import filter_grid_image, loss_curves_figure
from sparse_models.presets import build_run_config, run_config_sections
from sparse_models.training.jobs import JobStatus
from sparse_models.training.runs import (
    RunError,
    check_run_name,
    parent_parameters,
    read_metrics,
    read_run_config,
)

JOB_KEY = "train_job"  # session_state: id of the job this page follows
ERROR_KEY = "train_submit_error"
FULL_RERUN_KEY = "train_full_rerun"
LAST_SUBMIT_KEY = "train_last_submit"  # (settings, job id) of the last Start click


# --- submitting and stopping ----------------------------------------------------------------


def _start(config, parent_path: str | None, name: str | None) -> None:
    """Start-button callback: runs before the rerun, so the sidebar sees the job at once."""
    st.session_state.pop(ERROR_KEY, None)
    # One click, one job: a second click on the same settings while that job is still queued
    # or running (a double click arrives as two clicks) starts nothing more.
    key = (json.dumps(config.to_dict(), sort_keys=True), parent_path, name or "")
    last = st.session_state.get(LAST_SUBMIT_KEY)
    if last is not None and last[0] == key:
        try:
            if not app_ui.job_manager().status(last[1]).done:
                return
        except KeyError:
            pass
    try:
        job_id = app_ui.job_manager().submit(config, name=name or None, init_from=parent_path)
    except (ConfigError, RunError, DataError, ValueError, OSError) as exc:
        st.session_state[ERROR_KEY] = str(exc)
        return
    st.session_state[JOB_KEY] = job_id
    st.session_state[LAST_SUBMIT_KEY] = (key, job_id)
    app_ui.jobs.wait_for_first_snapshot(job_id)


def _stop(job_id: str) -> None:
    try:
        app_ui.job_manager().stop(job_id)
    except KeyError:
        pass


def _show_run(name: str) -> None:
    app_ui.select_run(name)
    st.session_state[FULL_RERUN_KEY] = True


def followed_job() -> JobStatus | None:
    """The job this page shows: the one started here, else the newest running one, else the
    newest queued, else the newest."""
    manager = app_ui.job_manager()
    job_id = st.session_state.get(JOB_KEY)
    jobs = manager.jobs()
    for j in jobs:
        if j.id == job_id:
            return j
    running = [j for j in jobs if j.state == "running"]
    queued = [j for j in jobs if j.state == "queued"]
    return (running or queued or jobs or [None])[0]


# --- the live panel -------------------------------------------------------------------------


def _grid_for(status: JobStatus, n: int) -> tuple[tuple[int, int], str]:
    """How the job's model lays out its n filters, and which kind they are (cached per job)."""
    cache = st.session_state.setdefault("train_grids", {})
    if status.id not in cache:
        try:
            cfg = read_run_config(status.run_dir)
            model = get_entry(cfg.model).model_cls(cfg.model_config)
            cache[status.id] = (model.layout.grid_shape(n), model.default_filter_kind())
        except (RunError, ConfigError):
            cache[status.id] = (square_shape(n), "")
    (rows, cols), kind = cache[status.id]
    return ((rows, cols) if rows * cols == n else square_shape(n)), kind


def test_history(run_dir) -> dict[str, np.ndarray]:
    """Held-out metrics logged so far (`"split": "test"` lines), as series by name."""
    lines = [r for r in read_metrics(run_dir) if r.get("split") == "test"]
    if not lines:
        return {}
    out = {"step": np.array([r["step"] for r in lines])}
    for key in lines[-1]:
        if key not in ("step", "split", "elapsed_s"):
            out[f"test {key}"] = np.array([r.get(key, np.nan) for r in lines], dtype=float)
    return out


def live_job_ui() -> None:
    job = followed_job()
    if job is None:
        st.info("No training job yet. Set things up above and press **Start training**.")
        return

    @st.fragment(run_every=None if job.done else 1.0)
    def _live() -> None:
        if st.session_state.pop(FULL_RERUN_KEY, False):
            st.rerun(scope="app")
        manager = app_ui.job_manager()
        try:
            s = manager.status(job.id)
        except KeyError:
            st.info("That job is no longer listed (finished jobs were cleared).")
            return
        st.subheader(f"Job: {s.name}")
        st.progress(min(1.0, max(0.0, s.progress)), text=app_ui.progress_text(s))
        if s.state == "completed":
            verdict, why = app_ui.health_of(s.health)
            done = (f"{s.name} ran its {s.total_steps} steps in "
                    f"{app_ui.fmt_seconds(s.elapsed_s)}")
            if verdict == "collapsed":
                st.error(f"{done}, but it collapsed: {why}. What it shows is not a learned "
                         f"model; try a smaller learning rate or λ, or a smaller map.")
            elif verdict == "warning":
                st.warning(f"{done}; it learned, with a warning: {why}. It is in the Run "
                           f"picker.")
            else:
                st.success(f"Finished {done}, healthy. The run is now in the Run picker.")
            st.button(f"Show {s.name} on every page", key=f"train_show_{s.id}",
                      on_click=_show_run, args=(s.name,))
        elif s.state == "failed":
            st.error(plain(f"Training {s.name} failed: {s.error or 'unknown error'}"))
        elif s.state == "stopped":
            st.warning(f"Stopped {s.name} at step {s.step} of {s.total_steps}. Its weights "
                       f"and a checkpoint are saved; it is in the Run picker.")
            st.button(f"Show {s.name} on every page", key=f"train_show_{s.id}",
                      on_click=_show_run, args=(s.name,))
        left, right = st.columns([3, 2])
        with left:
            history = s.history
            if history:
                steps = np.array([h["step"] for h in history])
                terms = {t: np.array([h.get(t, np.nan) for h in history])
                         for t in history[-1] if t not in ("step", "elapsed_s")}
                log_y = st.toggle("Log scale", key="train_log_y")
                st.plotly_chart(loss_curves_figure(steps, terms, log_y=log_y,
                                                   title="Loss terms (training batches)"),
                                key="train_curves")
                test = test_history(s.run_dir)
                if test:
                    test_steps = test.pop("step")
                    st.plotly_chart(loss_curves_figure(test_steps, test, log_y=log_y,
                                                       title="On the held-out split"),
                                    key="train_test_curves")
            else:
                st.caption("Loss curves appear after the first logged steps.")
        with right:
            snap = manager.snapshot(s.id)
            if snap is not None:
                grid, kind = _grid_for(s, snap.shape[0])
                st.image(filter_grid_image(snap, grid, upscale=2),
                         caption=f"{kind.capitalize() or 'The'} filters, live (step ≈ {s.step})")
            else:
                st.caption("The filters appear as soon as training has started.")
        if s.done:
            app_ui.jobs.rerun_if_newly_finished(manager)

    _live()


@st.cache_data(show_spinner=False)
def _pooled(model: str) -> bool:
    """Whether a model (at its default settings) has a group-sparsity penalty."""
    entry = get_entry(model)
    try:
        return bool(entry.model_cls(model_config(model, None)).has_pools)
    except ConfigError:
        return False


# --- the page -------------------------------------------------------------------------------


app_ui.jobs.warm_up_training()
st.title("Train")
st.markdown("Change the group structure or the loss weights, then train. Training runs in the "
            "background: switch pages or close the tab, it carries on and shows up again here.")

model = model_choice_ui()
parent = start_from_ui(model)
sections = base_sections(model, parent)
locked = parent is not None
k = f"train_{model}_{parent.name if parent else 'scratch'}"
groups = group_fields(get_entry(model).config_cls)

config, problems = None, []
settings = copy.deepcopy(sections)
left, right = st.columns([3, 2])
specs = []
with left:
    for g in groups:
        st.subheader(g.label)
        group, spec = group_ui(sections["model"].get(g.name, {}), locked, k, problems)
        settings["model"][g.name] = group
        specs.append(spec)
        if spec is None:
            problems.append(g.label.lower())
    if not groups:
        st.caption(f"{model}'s pools are set with its own settings below." if _pooled(model)
                   else f"{model} has no group structure: its sparsity penalty is plain L1.")
    st.subheader("Loss weights and model")
    settings["model"].update(model_fields_ui(model, sections["model"], locked, k, problems))
with right:
    for g, spec in zip(groups, specs, strict=True):
        st.subheader("Pools")
        if spec is not None:
            pool_preview_ui(spec)
        else:
            st.caption(f"Fix the {g.label.lower()} to see the pools.")

st.subheader("Data and training")
settings["data"] = data_ui(sections["data"], locked, k, problems)
settings["train"] = train_settings_ui(sections["train"], k, problems)

if not problems:
    try:
        config = build_run_config(model, {}, base=settings, command="app: Train page",
                                  parent=parent.path if parent else None)
        check_data(config.data)
    except (ConfigError, DataError) as exc:
        st.error(plain(str(exc)))
        problems.append("settings")
        config = None
if config is not None:  # what these settings make, fitted to the data (e.g. a sheet's map)
    st.caption(plain(f"These settings make: {config.model_cls.summarize_config(config.model_config)}"
                     f" on {config.data.source} data."))
if parent is not None and config is not None:
    try:
        parent_parameters(config, parent.path)
    except RunError as exc:
        st.error(plain(f"These settings cannot start from {parent.name}'s weights: {exc}"))
        problems.append("settings")
        config = None
if parent is not None and config is not None:
    changed = config_diff(run_config_sections(parent.load().config),
                          run_config_sections(config))
    changed = {key: v for key, v in changed.items() if not key.startswith("train.")}
    if changed:
        st.caption("What-if: changed from " + parent.name + ": " + "; ".join(
            f"{key} {fmt(a)} → {fmt(b)}" for key, (a, b) in changed.items()))
    else:
        st.caption(f"Same model and data settings as {parent.name}: this continues training "
                   f"its weights.")

c1, c2, c3 = st.columns([2, 1, 1], vertical_alignment="bottom")
run_name = c1.text_input("Run name (optional)", key="train_name",
                         placeholder=f"{model}-<date>-<time>")
if run_name.strip():
    try:
        check_run_name(run_name)
    except RunError as exc:
        st.error(plain(str(exc)))
        problems.append("run name")
        config = None
job = followed_job()
c2.button("Start training", type="primary", disabled=config is None, on_click=_start,
          args=(config, parent.path if parent else None, run_name), key="train_start")
c3.button("Stop", disabled=job is None or job.done, on_click=_stop,
          args=(job.id if job else "",), key="train_stop")
if problems:
    st.caption(plain("Start is disabled until these are fixed: " + ", ".join(problems) + "."))
if st.session_state.get(ERROR_KEY):
    st.error(plain(f"Could not start: {st.session_state[ERROR_KEY]}"))

st.divider()
live_job_ui()
