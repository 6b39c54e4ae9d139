"""Sweep: many runs over a grid of settings and seeds, on Ray; define, launch, watch, compare."""

from __future__ import annotations

import json
import math
import os
import time

import streamlit as st

from app_ui import sweep as sw
from app_ui.widgets import plain
from sparse_models.config import ConfigError, parse_value
from sparse_models.models import available_models
from sparse_models.presets import default_sections
from sparse_models.sweep import DEFAULT_MAX_TRIALS, SweepSpec, read_sweep, trial_rows
from sparse_models.sweep.plots import parallel_coordinates_figure, sweep_scatter_figure
from sparse_models.sweep.results import mean_sd_over_seeds, result_columns, trial_progress
from sparse_models.sweep.spec import default_name, split_values
from sparse_models.training.runs import RunError, default_runs_dir

KEY = "sweep"  # the picked sweep, kept in the URL as ?sweep=NAME
MSG = "_sweep_message"
PREFERRED_Y = ("pinwheel_density", "test_error", "explained_variance",
               "neighbour_orientation_diff_deg", "live_fraction")
OPEN_ON = [("../pages/filters.py", "Filters"), ("../pages/orientation.py", "Orientation"),
           ("../pages/sparsity.py", "Sparsity"), ("../pages/train.py", "Train")]
SHOWN_RESULTS = 5  # result columns in the table next to the settings (all are in trials.csv)


def define_ui() -> None:
    """The form of a new sweep: model, up to three swept settings with their values, seeds,
    concurrency, fixed settings; Launch checks it all and starts it in the background."""
    models = list(available_models())
    model = st.selectbox("Model", models, index=models.index("topographic")
                         if "topographic" in models else 0, key="sweep_model")
    sections = default_sections(model)
    keys = sw.sweepable_keys(sections)
    defaults = [k for k in ("model.group.size", "model.lam", "model.n_iter", "model.n_units")
                if k in keys][:2] or keys[:1]
    rows = []
    for i in range(3):
        left, right = st.columns([1, 2])
        options = ["(none)", *keys]
        pick = defaults[i] if i < len(defaults) else "(none)"
        key = left.selectbox(f"Setting {i + 1}", options, index=options.index(pick),
                             key=f"sweep_key_{model}_{i}")
        if key == "(none)":
            continue
        current = sections
        for p in key.split("."):
            current = current[p]
        values = right.text_input(f"Values of {key}, separated by commas",
                                  key=f"sweep_values_{model}_{key}",
                                  placeholder=f"e.g. {json.dumps(current)}, …")
        rows.append((key, values))
    c1, c2, c3 = st.columns(3)
    seeds = c1.number_input("Seeds per point", 1, 20, 2, key="sweep_seeds",
                            help="every point runs with seeds 0 … K−1; the plots show mean ± "
                                 "s.d. over them")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    concurrent = c2.number_input("Trials at a time", 1, 64, max(1, int(cores or 1)),
                                 key="sweep_concurrent",
                                 help=f"this machine has {cores} cores; each trial gets "
                                      f"cores ÷ this many CPU threads")
    steps = c3.number_input("Training steps per trial", 10, 1_000_000,
                            int(sections["train"]["steps"]), key=f"sweep_steps_{model}")
    fixed_text = st.text_area("Other fixed settings (one key=value a line, as for train --set)",
                              key="sweep_fixed", height=80,
                              placeholder="e.g. data.n_patches=4000")
    name = st.text_input("Sweep name", key="sweep_name", placeholder=default_name(model))
    confirm = st.checkbox(f"Allow more than {DEFAULT_MAX_TRIALS} trials", key="sweep_many")
    if st.button("Launch sweep", type="primary", key="sweep_launch"):
        try:
            grid = {}
            for key, values in rows:
                words = split_values(values)
                if not values.strip() or any(not w for w in words):
                    raise ConfigError(f"give the values of {key}, separated by commas")
                grid[key] = [parse_value(w) for w in words]
            fixed = {"train.steps": int(steps)}
            for line in fixed_text.splitlines():
                if line.strip():
                    if "=" not in line:
                        raise ConfigError(f"a fixed setting is key=value, got {line.strip()!r}")
                    k, v = line.split("=", 1)
                    fixed[k.strip()] = parse_value(v.strip())
            spec = SweepSpec(model=model, grid=grid, seeds=int(seeds), fixed=fixed)
            chosen = name.strip() or default_name(model)
            path = sw.launch(spec, chosen, int(concurrent),
                             max_trials=10_000 if confirm else DEFAULT_MAX_TRIALS)
        except (ConfigError, RunError, ValueError, OSError) as exc:
            st.session_state[MSG] = ("error", f"Could not launch: {exc}")
        else:
            st.session_state[MSG] = ("success", f"Sweep {path.name} started in the background.")
            st.session_state[KEY] = path.name
        st.rerun()


def picker_ui(infos: list) -> object | None:
    names = [i.name for i in infos]
    if not names:
        st.info("No sweeps yet: define one above.")
        return None
    if st.session_state.get(KEY) not in names:
        st.session_state.pop(KEY, None)
    name = st.selectbox("Sweep", names, key=KEY, bind="query-params",
                        format_func=lambda n: describe(infos[names.index(n)]),
                        help="Your sweeps, newest first, then the shipped example.")
    return infos[names.index(name)]


def describe(info) -> str:
    """The picker's label: fixed for a sweep (its progress is drawn below, and a label that
    changed while the sweep ran would not be redrawn in the open list)."""
    where = "shipped example" if info.shipped else "yours"
    return f"{info.name} · {info.model} · {info.n_trials} trials · {where}"


def progress_ui(info) -> None:
    """State, a progress bar and the running trials' steps; refreshed while it runs."""

    first = sw.state_of(info.path)

    @st.fragment(run_every=2.0 if first in ("running", "starting") else None)
    def _progress() -> None:
        sweep = read_sweep(info.path)
        rows = trial_rows(sweep)
        state = sw.state_of(info.path)
        counts = {s: sum(r["state"] == s for r in rows) for s in
                  ("completed", "failed", "running", "stopped", "interrupted", "pending")}
        done = counts["completed"] + counts["failed"]
        seen_key = f"_sweep_done_{info.name}"
        if st.session_state.get(seen_key, done) != done or (first != state
                                                             and state != "starting"):
            st.session_state[seen_key] = done
            st.rerun(scope="app")  # a trial finished: redraw the results and the table
        st.session_state[seen_key] = done
        st.progress(done / max(1, len(rows)),
                    text=f"**{done} / {len(rows)} trials finished** ({counts['completed']} "
                         f"completed, {counts['failed']} failed, {counts['running']} running, "
                         + "".join(f"{counts[c]} {c}, " for c in ("stopped", "interrupted")
                                   if counts[c])
                         + f"{counts['pending']} waiting) · sweep {state}")
        for r in rows:
            if r["state"] == "running" and state == "running":
                step, total = trial_progress(sweep.runs_dir / r["run"])
                settings = ", ".join(f"{k}={r[k]}" for k in sweep.keys)
                st.progress(min(1.0, step / total) if total else 0.0,
                            text=plain(f"{r['trial']} ({settings}, seed {r['seed']}): step "
                                       f"{step} / {total}"))
        if state == "starting":
            st.caption("Starting Ray and the sweep's process…")
        if state == "running" and not info.shipped:
            if st.button("Stop the sweep", key="sweep_stop"):
                st.session_state[MSG] = ("info", sw.stop(info.path))
                time.sleep(0.5)
                st.rerun()
        elif state not in ("running", "starting") and done < len(rows) and not info.shipped:
            st.caption(f"The sweep is {state} with {len(rows) - done} trials unfinished.")
            if st.button("Resume it (runs only the unfinished trials)", key="sweep_resume"):
                sw.start_process(info.path, int(st.session_state.get("sweep_concurrent", 2)))
                st.rerun()
        if state in ("failed", "interrupted") or (state == "stopped" and done < len(rows)):
            tail = sw.log_tail(info.path)
            if tail:
                with st.expander("The sweep's output"):
                    st.code(tail, language=None)
    _progress()


def table_ui(sweep, rows: list[dict], results: list[str]) -> list[dict]:
    """The trials table; returns the rows the user selected."""
    settings = sweep.keys
    shown = [r for r in PREFERRED_Y if r in results] + [r for r in results
                                                         if r not in PREFERRED_Y]
    cols = ["trial", "state", *settings, "seed", *shown[:SHOWN_RESULTS], "elapsed_s", "error",
            "run"]
    data = [{c: (json.dumps(r.get(c)) if isinstance(r.get(c), list) else r.get(c))
             for c in cols} for r in rows]
    event = st.dataframe(data, key=f"sweep_table_{sweep.name}", on_select="rerun", selection_mode="multi-row",
                         hide_index=True, column_config={
                             "elapsed_s": st.column_config.NumberColumn("time (s)",
                                                                        format="%.1f")})
    st.caption(f"Select a trial to open it on another page, or two to compare them. Every "
               f"result is in {sweep.path / 'trials.csv'}.")
    picked = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    return [rows[i] for i in picked if i < len(rows)]


def open_ui(sweep, picked: list[dict]) -> None:
    if not picked:
        return
    if sweep.runs_dir.resolve() not in (default_runs_dir().resolve(),
                                        sw.SHIPPED_DIR.resolve()):
        st.info(f"This sweep's runs are in {sweep.runs_dir}, which the app does not list "
                f"(its runs folder is {default_runs_dir()}).")
        return
    done = [r for r in picked if r["state"] == "completed"]
    for r in done[:2]:
        cols = st.columns(len(OPEN_ON) + 1)
        cols[0].markdown(f"**{r['run']}**")
        for col, (page, label) in zip(cols[1:], OPEN_ON, strict=True):
            col.page_link(page, label=f"Open on {label}", query_params={"run": r["run"]})
    if len(done) >= 2:
        a, b = done[0]["run"], done[1]["run"]
        st.page_link("../pages/compare.py", label=f"Compare {a} with {b}",
                     icon=":material/compare:", query_params={"compare_a": a, "compare_b": b})
    elif len(picked) > len(done):
        st.caption("Only completed trials can be opened.")


def plot_ui(sweep, rows: list[dict], results: list[str]) -> None:
    settings = [*sweep.keys, "seed"]
    c1, c2, c3, c4 = st.columns(4)
    kind = c1.radio("Plot", ["mean ± s.d.", "parallel coordinates"], key="sweep_plot",
                    horizontal=True, bind="query-params")
    x = c2.selectbox("Setting (x)", settings, key="sweep_x", bind="query-params")
    y_default = next((r for r in PREFERRED_Y if r in results), results[0])
    y = c3.selectbox("Result (y)", results, index=results.index(y_default), key="sweep_y",
                     bind="query-params")
    others = [s for s in sweep.keys if s != x]
    by = c4.selectbox("One line per", ["(none)", *others], index=1 if others else 0,
                      key="sweep_by", bind="query-params")
    by = None if by == "(none)" else by
    done = [r for r in rows if r["state"] == "completed"]
    if kind == "mean ± s.d.":
        points = mean_sd_over_seeds(rows, x, y, by)
        trials = [{"group": r.get(by) if by else None, "x": r.get(x), "y": r.get(y),
                   "run": r["run"]} for r in done if isinstance(r.get(y), int | float)]
        ref = (math.pi, "V1 and Gaussian random maps: π") if y == "pinwheel_density" else None
        if not points:
            st.info(f"No completed trial has a {y} value.")
            return
        st.plotly_chart(sweep_scatter_figure(points, trials, x, y, by, ref), key="sweep_fig")
        if y == "pinwheel_density" and any(
                isinstance(r.get("column_spacing"), int | float) and r["column_spacing"]
                >= min(r.get("map_rows") or 0, r.get("map_cols") or 0) for r in done):
            st.caption("On some of these maps the column spacing Λ is as wide as the map "
                       "itself: their density is a count of pinwheels over one Λ², not a "
                       "measure over many periods (a map a few Λ wide gives one).")
        pooled = [k for k in sweep.keys if k not in (x, by)]
        st.caption("Each point: the mean over " + ("the seeds" + (
            f" and over {', '.join(pooled)}" if pooled else "")) + "; bars: ± one s.d.; faint "
            "dots: single trials.")
    else:
        chosen = st.multiselect("Axes", [*settings, *results],
                                default=[*sweep.keys, y], key="sweep_axes")
        if len(chosen) < 2:
            st.info("Choose at least two axes.")
            return
        columns = {}
        for c in chosen:
            vals = [r.get(c) for r in done]
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
                columns[c] = vals
            else:  # words or shapes: numbered in order of appearance
                labels = list(dict.fromkeys(json.dumps(v) for v in vals))
                columns[c] = [labels.index(json.dumps(v)) for v in vals]
        colour = y if y in columns else chosen[-1]
        st.plotly_chart(parallel_coordinates_figure(columns, colour), key="sweep_parcoords")


st.title("Sweep")
st.markdown("Many runs at once: every combination of the values you give, for several seeds, "
            "trained on [Ray](https://www.ray.io/) in worker processes (a local Ray by default; "
            "`python -m sparse_models sweep --address` uses a cluster). Each trial is an "
            "ordinary run: open it on any page.")
message = st.session_state.pop(MSG, None)
if message:
    getattr(st, message[0])(plain(message[1]))

infos = sw.sweeps()
with st.expander("Define a new sweep", expanded=not infos):
    define_ui()
info = picker_ui(infos)
if info is not None:
    if info.state == "broken":
        st.error(plain(f"This sweep folder cannot be read: {info.error}"))
        st.stop()
    sweep = read_sweep(info.path)
    st.caption(plain(f"{sweep.spec.model}: " + "; ".join(
        f"{k} ∈ {{{', '.join(json.dumps(v) for v in vs)}}}" for k, vs in sweep.spec.grid.items())
        + (f"; {len(sweep.spec.random)} setting(s) drawn at random" if sweep.spec.random else "")
        + f"; {sweep.spec.seeds} seed(s); {len(sweep.trials)} trials. Made by: "
        + (sweep.command or "?")))
    progress_ui(info)
    rows = trial_rows(sweep)
    results = result_columns(rows, sweep.keys)
    failed = [r for r in rows if r["state"] == "failed"]
    if failed:
        with st.expander(f"{len(failed)} failed trial(s)"):
            for r in failed:
                st.markdown(plain(f"**{r['trial']}** ({r['run']}): {r['error']}"))
    if results:
        st.subheader("Results")
        plot_ui(sweep, rows, results)
    st.subheader("Trials")
    picked = table_ui(sweep, rows, results)
    open_ui(sweep, picked)
