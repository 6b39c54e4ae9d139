"""Filters: every filter in its place on the unit map, unit details, and a replay of training."""

from __future__ import annotations

import numpy as np
import streamlit as st

import app_ui
from app_ui import analysis, replay
from app_ui.widgets import fmt, plain
from sparse_models.analysis import firing_frequency
from sparse_models.plotting import filter_figure, filter_grid_figure

UNIT_KEY = "filters_unit"
GRID_KEY = "filters_grid"
TIME_KEY = "filters_time"  # the replay position, kept in the URL
PLAY_KEY = "filters_playing"


def kind_ui(kinds: tuple[str, ...]) -> str:
    if len(kinds) == 1:
        st.caption(f"This model has {kinds[0]} filters only.")
        return kinds[0]
    kind = st.segmented_control("Filters", list(kinds), default=kinds[0], key="filters_kind",
                                required=True, bind="query-params",
                                help="decoder: the image each unit adds to the reconstruction; "
                                     "encoder: the template each unit responds to.")
    return kind or kinds[0]


def _pick_unit_from_click() -> None:
    event = st.session_state.get(GRID_KEY)
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    for p in points:
        if p.get("curve_number") == 1:
            idx = p.get("point_index", p.get("point_number"))
            if idx is not None:
                st.session_state[UNIT_KEY] = int(idx)
                return


def unit_detail_ui(ref: app_ui.RunRef, unit: int, shown: np.ndarray, shown_kind: str,
                   final: bool, freq: np.ndarray, theta: np.ndarray, sel: np.ndarray,
                   kinds: tuple[str, ...]) -> None:
    """The unit's filters and numbers at the replay position (`shown`: its filters there)."""
    run = ref.load()
    rows, cols = run.map_shape
    r, c = divmod(unit, cols)
    st.markdown(f"**Unit {unit}** · row {r}, column {c}")
    for kind in kinds:
        if kind == shown_kind or final:
            f = shown if kind == shown_kind else analysis.filters(ref.path, ref.stamp, kind)
            st.plotly_chart(filter_figure(f[unit], title=f"{kind} filter", height=220),
                            key=f"filters_unit_{kind}")
        else:
            st.caption(f"Its {kind} filter is recorded for the final weights only.")
    dead = final and freq[unit] <= 0
    m1, m2 = st.columns(2)
    if final:
        m1.metric("Firing rate", f"{100 * freq[unit]:.1f} %",
                  help="Share of training patches on which the unit is active.")
    else:
        m1.metric("Firing rate", "—", help="Measured for the final weights only: the replay "
                  "records filters, not the encoder that would give the codes.")
    m2.metric("Orientation", "—" if dead else f"{np.degrees(theta[unit]):.0f}°",
              help="Stripe orientation, counter-clockwise from horizontal.")
    m3, m4 = st.columns(2)
    m3.metric("Selectivity", "—" if dead else fmt(float(sel[unit]), 2),
              help="1: all energy at one orientation; 0: no preferred orientation.")
    P = analysis.pool_matrix(ref.path, ref.stamp)
    if P is not None:
        m4.metric("Pools it is in", int((P[:, unit] > 0).sum()))
    if dead:
        st.caption("A dead unit: it never fires on the training patches, so it has no "
                   "orientation or selectivity that means anything.")


st.title("Filters")
ref = app_ui.require_run()
run = ref.load()
kinds = tuple(run.model.filter_kinds())
if run.config.model == "conv":
    stacked = run.config.model_config.stacked
    st.caption("A convolutional run: its feature maps, pooled maps and invariance are on the "
               "Convolutional page." + (" Its layer-2 filters act on layer 1's pooled maps, "
                                        "one channel per pool, drawn side by side here; that "
                                        "page shows what they detect as image patches."
                                        if stacked else ""))
    st.page_link("../pages/conv.py", label="See it on the Convolutional page",
                 icon=":material/filter_center_focus:")
rows, cols = run.map_shape
n_units = rows * cols

steps, snaps, snap_kind = analysis.snapshots(ref.path, ref.stamp)
if (problem := analysis.snapshots_problem(ref.path, ref.stamp)) is not None:
    st.warning(plain(f"The replay is unavailable: {problem}"))
labels = replay.replay_labels(steps, run.weights_step)
playing = replay.playing(labels, TIME_KEY, PLAY_KEY)

top = st.columns([1, 3, 1], vertical_alignment="bottom")
with top[0]:
    kind = kind_ui(kinds)
with top[2]:
    replay.play_button(labels, TIME_KEY, PLAY_KEY, key="filters_play_button")

z = analysis.codes(ref.path, ref.stamp)
freq = firing_frequency(z)
final_theta, final_sel = analysis.unit_orientation(ref.path, ref.stamp)


@st.fragment(run_every=replay.TICK_S if playing else None)
def replay_view() -> None:
    """The replay slider and everything that follows its position: grid, hover, unit panel."""
    replay.advance(labels, TIME_KEY, PLAY_KEY)
    with top[1]:
        if len(steps) == 0:
            st.caption("This run recorded no snapshots during training, so there is nothing "
                       "to replay.")
    choice = st.select_slider(
        "Training time", labels, value=labels[-1], key=TIME_KEY, bind="query-params",
        disabled=len(labels) < 2,
        help=f"Replay how the filters organised themselves during training ({snap_kind} "
             f"filters, as recorded). Everything on the page follows this position.")
    final = choice == labels[-1]
    if final:
        shown, shown_kind = analysis.filters(ref.path, ref.stamp, kind), kind
        what = f"{kind} filters after training"
        theta, sel = final_theta, final_sel
    else:
        i = labels.index(choice)
        shown, shown_kind = snaps[i], snap_kind
        what = f"{snap_kind} filters at step {int(steps[i])}"
        if kind != snap_kind:
            st.caption(f"Snapshots record the {snap_kind} filters; showing those.")
        theta, sel = analysis.orientation_of(shown)
    if final and run.model.filter_notes.get(kind):
        st.caption(run.model.filter_notes[kind])
    if shown.shape[0] != n_units:
        st.error(f"{ref.name} has {shown.shape[0]} filters but a {rows}×{cols} map; cannot "
                 f"lay them out.")
        return

    unit = st.session_state.get(UNIT_KEY)
    if unit is not None and not (isinstance(unit, int) and 0 <= unit < n_units):
        st.session_state[UNIT_KEY] = 0  # e.g. a run with a smaller map than the last one
    left, right = st.columns([3, 1])
    with right:
        unit = int(st.number_input("Unit", 0, n_units - 1, key=UNIT_KEY, bind="query-params",
                                   help="Or click a filter in the grid."))
        unit_detail_ui(ref, unit, shown, shown_kind, final, freq, theta, sel, kinds)
    with left:
        dead = (freq <= 0) if final else np.zeros(n_units, bool)
        hover = {"θ (deg)": np.where(dead, np.nan, np.degrees(theta)),
                 "selectivity": np.where(dead, np.nan, sel)}
        if final:
            hover["firing rate"] = freq
        fig = filter_grid_figure(
            shown, (rows, cols), title=f"{ref.name}: {what} on the {rows}×{cols} unit map",
            hover=hover, selected=unit)
        st.plotly_chart(fig, key=GRID_KEY, on_select=_pick_unit_from_click,
                        selection_mode="points")
        notes = []
        if dead.any():
            notes.append(f"{int(dead.sum())} dead unit(s) never fire: their θ and selectivity "
                         f"read NaN")
        if not final:
            notes.append("firing rates are measured for the final weights only")
        if analysis.has_pools(ref):
            st.caption("Hover for a unit's orientation; click it for details; drag to zoom, "
                       "double-click to reset. Neighbouring units share pools, so their filters "
                       "should look alike." + "".join(f" Note: {n}." for n in notes))
        elif (order := analysis.map_order(ref)) is not None:
            st.caption(order + " Hover, click, drag to zoom."
                       + "".join(f" Note: {n}." for n in notes))
        elif run.config.model == "conv":  # its L2 pools are over positions of its maps
            st.caption("Each unit is one feature map's filter; the maps are in no particular "
                       "order (conv pools positions of a map, not neighbouring units). Hover, "
                       "click, drag to zoom." + "".join(f" Note: {n}." for n in notes))
        else:
            st.caption(f"{run.config.model} has no pools: units are in no particular order, so "
                       f"neighbours on this grid are unrelated. Hover, click, drag to zoom."
                       + "".join(f" Note: {n}." for n in notes))


replay_view()
