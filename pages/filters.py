"""Filters: every filter in its place on the unit map, unit details, and a replay of training."""

from __future__ import annotations

import numpy as np
import streamlit as st

import app_ui
from app_ui import analysis
from app_ui.widgets import fmt
from sparse_models.analysis import firing_frequency
from sparse_models.plotting import filter_figure, filter_grid_figure

UNIT_KEY = "filters_unit"
GRID_KEY = "filters_grid"


def kind_ui(kinds: tuple[str, ...]) -> str:
    if len(kinds) == 1:
        st.caption(f"This model has {kinds[0]} filters only.")
        return kinds[0]
    kind = st.segmented_control("Filters", list(kinds), default=kinds[0], key="filters_kind",
                                required=True, bind="query-params",
                                help="decoder: the image each unit adds to the reconstruction; "
                                     "encoder: the template each unit responds to.")
    return kind or kinds[0]


def replay_ui(steps: np.ndarray, final_step: int | None, kind: str) -> int | None:
    """Slider over the training snapshots; returns the chosen snapshot index, None = final."""
    if len(steps) == 0:
        st.caption("This run recorded no snapshots during training, so there is nothing to "
                   "replay.")
        return None
    labels = [f"step {int(s)}" for s in steps]
    final = f"final (step {final_step})" if final_step is not None else "final"
    if final_step is None or int(steps[-1]) != final_step:
        labels.append(final)
    else:
        labels[-1] = final
    choice = st.select_slider("Training time", labels, value=labels[-1], key="filters_time",
                              help="Replay how the filters organised themselves during training "
                                   f"({kind} filters, as recorded).")
    i = labels.index(choice)
    return None if choice == final else i


def _pick_unit_from_click() -> None:
    event = st.session_state.get(GRID_KEY)
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for p in points:
        if p.get("curve_number") == 1:
            idx = p.get("point_index", p.get("point_number"))
            if idx is not None:
                st.session_state[UNIT_KEY] = int(idx)
                return


def unit_detail_ui(ref: app_ui.RunRef, unit: int, freq: np.ndarray, theta: np.ndarray,
                   sel: np.ndarray, kinds: tuple[str, ...]) -> None:
    run = ref.load()
    rows, cols = run.map_shape
    r, c = divmod(unit, cols)
    st.markdown(f"**Unit {unit}** · row {r}, column {c}")
    for kind in kinds:
        f = analysis.filters(ref.path, ref.stamp, kind)
        st.plotly_chart(filter_figure(f[unit], title=f"{kind} filter", height=220),
                        key=f"filters_unit_{kind}")
    m1, m2 = st.columns(2)
    m1.metric("Firing rate", f"{100 * freq[unit]:.1f} %",
              help="Fraction of training patches on which the unit is active.")
    m2.metric("Orientation", f"{np.degrees(theta[unit]):.0f}°",
              help="Stripe orientation, counter-clockwise from horizontal.")
    m3, m4 = st.columns(2)
    m3.metric("Selectivity", fmt(float(sel[unit]), 2),
              help="1: all energy at one orientation; 0: no preferred orientation.")
    P = analysis.pool_matrix(ref.path, ref.stamp)
    if P is not None:
        m4.metric("Pools it is in", int((P[:, unit] > 0).sum()))


st.title("Filters")
ref = app_ui.require_run()
run = ref.load()
kinds = tuple(run.model.filter_kinds())
rows, cols = run.map_shape
n_units = rows * cols

top = st.columns([1, 3])
with top[0]:
    kind = kind_ui(kinds)
with top[1]:
    steps, snaps, snap_kind = analysis.snapshots(ref.path, ref.stamp)
    snap_index = replay_ui(steps, run.weights_step, snap_kind)

z = analysis.codes(ref.path, ref.stamp)
freq = firing_frequency(z)
theta, sel = analysis.unit_orientation(ref.path, ref.stamp)
if snap_index is None:
    shown = analysis.filters(ref.path, ref.stamp, kind)
    what = f"{kind} filters after training"
else:
    shown = snaps[snap_index]
    what = f"{snap_kind} filters at step {int(steps[snap_index])}"
    if kind != snap_kind:
        st.caption(f"Snapshots record the {snap_kind} filters; showing those.")
if snap_index is None and run.model.filter_notes.get(kind):
    st.caption(run.model.filter_notes[kind])

if shown.shape[0] != n_units:
    st.error(f"{ref.name} has {shown.shape[0]} filters but a {rows}×{cols} map; cannot lay "
             f"them out.")
    st.stop()

unit = st.session_state.get(UNIT_KEY)
if unit is not None and not (isinstance(unit, int) and 0 <= unit < n_units):
    st.session_state[UNIT_KEY] = 0  # e.g. a run with a smaller map than the last one
left, right = st.columns([3, 1])
with right:
    unit = int(st.number_input("Unit", 0, n_units - 1, key=UNIT_KEY, bind="query-params",
                               help="Or click a filter in the grid."))
    unit_detail_ui(ref, unit, freq, theta, sel, kinds)
with left:
    fig = filter_grid_figure(
        shown, (rows, cols), title=f"{ref.name}: {what} on the {rows}×{cols} unit map",
        hover={"θ (deg)": np.degrees(theta), "selectivity": sel, "firing rate": freq},
        selected=unit)
    st.plotly_chart(fig, key=GRID_KEY, on_select=_pick_unit_from_click,
                    selection_mode="points")
    if analysis.has_pools(ref):
        st.caption("Hover for a unit's orientation and firing rate; click it for details; drag "
                   "to zoom, double-click to reset. Neighbouring units share pools, so their "
                   "filters should look alike.")
    else:
        st.caption(f"{run.config.model} has no pools: units are in no particular order, so "
                   f"neighbours on this grid are unrelated. Hover, click, drag to zoom.")
