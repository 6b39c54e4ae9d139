"""The run picker and cached run loading, shared by every page.

The picker is a sidebar selectbox keyed `run` and bound to the URL (`?run=NAME`), so a link
reproduces the view. Runs are listed fresh on every full rerun (cheap: JSON files only), so a run
that a background job just finished shows up without restarting anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from sparse_models.models import available_models
from sparse_models.training.runs import (
    CHECKPOINT_FILE,
    SHIPPED_DIR,
    WEIGHTS_FILE,
    LoadedRun,
    RunError,
    RunInfo,
    default_runs_dir,
    delete_run,
    list_runs,
    load_run,
    rename_run,
)

from .widgets import plain

RUN_KEY = "run"  # session_state key and URL query parameter of the picker
HIDE_FAILED_KEY = "runs_hide_failed"
RENAME_KEY = "manage_new_name"
CONFIRM_KEY = "manage_confirm_delete"
MANAGE_MSG_KEY = "_manage_message"
# The shipped runs to show first (checkpoints/README.md): the default map is the app's first
# view; each is its model's example on the Overview.
DEFAULT_RUN_NAMES = ("topographic-5x5", "sheet-pinwheels")


def all_runs() -> list[RunInfo]:
    """The user's runs (newest first), then the shipped examples. A user's run that carries a
    shipped run's name (made before the names were reserved) never hides the shipped one: it is
    left out of the list, and `hidden_by_shipped` names it."""
    shipped = list_runs([SHIPPED_DIR])
    taken = {r.name for r in shipped}
    mine = [r for r in list_runs([default_runs_dir()]) if r.name not in taken]
    return mine + shipped


def default_run_index(runs: list[RunInfo]) -> int:
    """The run a newcomer should see first: the shipped default run, else the first shipped run
    of the first registered (showcase) model that has one, else the newest finished run."""
    usable = [i for i, r in enumerate(runs) if r.state == "completed"]
    shipped = [i for i in usable if runs[i].shipped]
    named = [i for i in shipped if runs[i].name in DEFAULT_RUN_NAMES]
    order = {m: n for n, m in enumerate(available_models())}
    showcase = sorted(shipped, key=lambda i: order.get(runs[i].model, len(order)))
    for candidates in (named, showcase, usable):
        if candidates:
            return candidates[0]
    return 0


def health_of(health: dict | None) -> tuple[str, str]:
    """(verdict, reasons in words) of a run's recorded health; ("", "") when none."""
    if not isinstance(health, dict) or not isinstance(health.get("verdict"), str):
        return "", ""
    reasons = [r for r in health.get("reasons") or [] if isinstance(r, str)]
    return health["verdict"], "; ".join(reasons)


HEALTH_MARK = {"healthy": "healthy", "warning": "⚠ warning", "collapsed": "✖ collapsed"}


def describe_run(info: RunInfo) -> str:
    where = "shipped example" if info.shipped else "your run"
    if info.state == "broken":
        return f"broken run folder · {where}"
    steps = f"{info.steps} / {info.total_steps} steps" if info.total_steps else f"{info.steps} steps"
    state = info.state
    if info.health and info.state == "completed":
        state = HEALTH_MARK.get(info.health, info.health)
    summary = f" ({info.summary})" if info.summary else ""
    return f"{info.model}{summary} · {state} · {steps} · {where}"


def run_picker_ui() -> RunInfo | None:
    """The sidebar run picker; returns the chosen run's listing (None when there is no run)."""
    runs = all_runs()
    st.session_state["_runs"] = runs
    if st.session_state.get(HIDE_FAILED_KEY):
        current = st.session_state.get(RUN_KEY)
        runs = [r for r in runs if r.state not in ("failed", "broken") and not (
            r.health == "collapsed" and r.state == "completed") or r.name == current]
    if not runs:
        st.selectbox("Run", ["(no runs yet)"], disabled=True, key="_run_empty")
        st.caption("Train a model on the Train page to get a run.")
        return None
    names = [r.name for r in runs]
    current = st.session_state.get(RUN_KEY)
    gone = None
    if current is not None and current not in names:
        del st.session_state[RUN_KEY]  # e.g. the folder was deleted: fall back to the default
        gone = current
    # The options are the bare names: the URL keeps the option as shown, so a label with marks
    # would break links. The caption below says what the chosen run is and how it ended.
    name = st.selectbox("Run", names, index=default_run_index(runs), key=RUN_KEY,
                        bind="query-params", help="Shipped example runs and your own runs, "
                        "newest first. The choice is kept in the page's URL.")
    info = runs[names.index(name)]
    if gone is not None and not st.session_state.pop(MANAGE_MSG_KEY + "_deleted", False):
        st.warning(plain(f"The run {gone} is gone (its folder was deleted or renamed); showing "
                         f"{name} instead."))
    st.caption(describe_run(info))
    if info.health == "collapsed" and info.state == "completed":
        st.warning(f"✖ This run collapsed: {'; '.join(info.health_reasons)}. What it shows is "
                   f"not a learned model.")
    elif info.health == "warning" and info.state == "completed":
        st.warning(f"Warning: {'; '.join(info.health_reasons)}.")
    st.toggle("Hide failed and collapsed runs", key=HIDE_FAILED_KEY,
              help="Leave runs that failed, broke or collapsed out of this list.")
    run_manage_ui(info)
    return info


def _delete(path: str) -> None:
    try:
        delete_run(path)
    except (RunError, OSError) as exc:
        st.session_state[MANAGE_MSG_KEY] = ("error", f"Could not delete it: {exc}")
        return
    st.session_state.pop(RUN_KEY, None)
    st.session_state.pop(CONFIRM_KEY, None)
    st.session_state[MANAGE_MSG_KEY + "_deleted"] = True  # said already: no "gone" warning
    st.session_state[MANAGE_MSG_KEY] = ("success", f"Deleted {Path(path).name}.")


def _rename(path: str) -> None:
    new = st.session_state.get(RENAME_KEY, "")
    try:
        moved = rename_run(path, new)
    except (RunError, OSError) as exc:
        st.session_state[MANAGE_MSG_KEY] = ("error", f"Could not rename it: {exc}")
        return
    st.session_state[RUN_KEY] = moved.name
    st.session_state[MANAGE_MSG_KEY] = ("success", f"Renamed to {moved.name}.")


def _resume(path: str) -> None:
    from .jobs import job_manager

    try:
        job_manager().submit(None, resume_dir=path)
    except Exception as exc:  # RunError, ConfigError, DataError: said in words, never traced
        st.session_state[MANAGE_MSG_KEY] = ("error", f"Could not resume it: {exc}")
        return
    st.session_state[MANAGE_MSG_KEY] = ("success", f"Resuming {Path(path).name}: follow it "
                                                   f"under Training jobs.")


def run_manage_ui(info: RunInfo) -> None:
    """Delete (with a confirmation), rename and resume the chosen run; never a shipped one."""
    msg = st.session_state.pop(MANAGE_MSG_KEY, None)
    if msg is not None:
        (st.success if msg[0] == "success" else st.error)(plain(msg[1]))
    if info.shipped:
        return
    with st.expander("Manage this run"):
        busy = info.state in ("running", "queued")
        if info.state in ("stopped", "interrupted") or (
                info.state == "failed" and info.steps < info.total_steps):
            st.button(f"Resume {info.name}", key="manage_resume", on_click=_resume,
                      args=(str(info.path),), disabled=busy,
                      help="Continue from its last checkpoint (or from the start when it "
                           "stopped before its first one).")
        st.text_input("New name", key=RENAME_KEY, placeholder=info.name)
        st.button("Rename", key="manage_rename", on_click=_rename, args=(str(info.path),),
                  disabled=busy or not st.session_state.get(RENAME_KEY, "").strip())
        sure = st.checkbox(f"Yes, delete {info.name} and all its files", key=CONFIRM_KEY,
                           disabled=busy)
        st.button("Delete", key="manage_delete", on_click=_delete, args=(str(info.path),),
                  type="primary", disabled=busy or not sure)
        if busy:
            st.caption("It is being trained: stop it first.")


def find_run(name: str | None) -> RunInfo | None:
    runs = st.session_state.get("_runs") or all_runs()
    for r in runs:
        if r.name == name:
            return r
    return None


def selected_run_info() -> RunInfo | None:
    """The run chosen in the sidebar picker (after app.py has drawn it)."""
    return find_run(st.session_state.get(RUN_KEY))


def select_run(name: str) -> None:
    """Make `name` the picker's choice on the next full rerun (call from a callback)."""
    st.session_state[RUN_KEY] = name


def run_stamp(path: Path | str) -> float:
    """Modification time of the run's weights (or checkpoint): part of every cache key, so a run
    that trains further or is retrained in place is analysed again."""
    p = Path(path)
    for f in (WEIGHTS_FILE, CHECKPOINT_FILE):
        try:
            return (p / f).stat().st_mtime
        except OSError:
            continue
    return 0.0


@st.cache_resource(max_entries=8, show_spinner=False)
def _load_run_cached(path: str, stamp: float) -> LoadedRun:
    return load_run(path)


@dataclass(frozen=True)
class RunRef:
    """A run ready for the cached analysis functions: its path and stamp form the cache key."""

    path: str
    stamp: float
    info: RunInfo

    @property
    def name(self) -> str:
        return self.info.name

    def load(self) -> LoadedRun:
        return _load_run_cached(self.path, self.stamp)


def open_run(info: RunInfo | None) -> tuple[RunRef | None, str | None]:
    """`(RunRef, None)` when the run can be opened, else `(None, message for the user)`."""
    if info is None:
        return None, "There is no run yet. Train one on the Train page."
    if info.state == "broken":
        return None, f"The run folder {info.name!r} cannot be used: {info.error}"
    ref = RunRef(str(info.path), run_stamp(info.path), info)
    try:
        ref.load()
    except Exception as exc:  # RunError, ConfigError, or a damaged file: say why, never trace
        if info.state in ("running", "queued"):
            return None, (f"{info.name} is still training and has no saved weights yet "
                          f"(step {info.steps} of {info.total_steps}). Pick it again when it "
                          f"has finished, or watch it on the Train page.")
        return None, f"The run {info.name!r} cannot be opened: {exc}"
    return ref, None


def require_run(info: RunInfo | None = None) -> RunRef:
    """The selected (or given) run, opened; otherwise a clear message and the page stops."""
    info = selected_run_info() if info is None else info
    ref, error = open_run(info)
    if ref is None:
        if info is None:
            st.info(error)
            st.page_link("../pages/train.py", label="Go to Train", icon=":material/model_training:")
        else:
            st.error(plain(error))
        st.stop()
    if info is not None and info.state == "failed":
        st.warning(plain(f"Training of {info.name} failed ({info.error}); showing its last "
                         f"saved weights."))
    elif info is not None and info.state in ("stopped", "interrupted"):
        st.info(f"{info.name} was {info.state} at step {info.steps} of {info.total_steps}; "
                f"showing the weights saved then.")
    return ref
