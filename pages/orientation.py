"""Orientation map & pinwheels: hue = preferred orientation, brightness = selectivity.

The map, its column spacing Λ and its spectrum are computed once per run; moving the smoothing
slider only recounts the pinwheels (a fragment, so nothing else reruns).
"""

from __future__ import annotations

import math
import statistics

import streamlit as st

import app_ui
from app_ui import analysis, replay
from app_ui.widgets import fmt, plain
from sparse_models.plotting import (
    density_curve_figure,
    orientation_histogram_figure,
    orientation_map_figure,
    power_spectrum_figure,
    retinotopy_figure,
)

PI = math.pi
TIME_KEY = "orientation_time"  # the replay position, kept in the URL
PLAY_KEY = "orientation_playing"


def smoothing_ui() -> tuple[float, bool]:
    c1, c2 = st.columns([3, 2])
    smooth = c1.slider("Smoothing σ (map units)", 0.0, 3.0, 1.0, 0.25, key="orientation_smooth",
                       bind="query-params",
                       help="Gaussian smoothing of s·e^{2iθ} before counting pinwheels. Mild "
                            "smoothing removes pinwheels made by noise; too much merges real "
                            "pinwheel pairs.")
    weighted = c2.toggle("Weight by selectivity", True, key="orientation_weighted",
                         bind="query-params",
                         help="Smooth s·e^{2iθ} (weak, unselective units count less) rather "
                              "than e^{2iθ}.")
    return float(smooth), bool(weighted)


def numbers_ui(o: dict, p: dict, shape: tuple[int, int], px_per_unit: float | None) -> None:
    lam = o["spacing"]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Column spacing Λ", f"{lam:.1f}" if math.isfinite(lam) else "—",
              help="The typical period of the map, in map units (one unit = the distance between "
                   "neighbouring units): 1 / the radius of the spectrum's peak ring"
                   + ("; in image pixels for a sheet over an image (a map unit is "
                      f"{px_per_unit:.3g} px)." if px_per_unit else "."))
    c2.metric("Pinwheels", p["count"], help=f"{p['positive']} with charge +½, "
              f"{p['negative']} with −½ (on a torus the two counts are equal).")
    density = p["density"]
    c3.metric("Pinwheels per Λ²", fmt(density),
              delta=None if not math.isfinite(density) else f"{density - PI:+.2f} vs π",
              delta_color="off",
              help="Cat, tree shrew, galago and ferret V1: ≈ π = 3.14 (Kaschube et al., Science "
                   "2010). A Gaussian random map with a narrow ring spectrum gives exactly π.")
    c4.metric("Shuffled map", fmt(p["shuffled_density"]),
              help="The same orientations, randomly permuted across the map (mean of 10): "
                   "the density of a map with no continuity, per Λ² of this map.")
    rows, cols = shape
    if math.isfinite(lam):
        columns = rows * cols / lam**2
        in_px = (f"Λ = {lam:.1f} map units = {lam * px_per_unit:.1f} image pixels "
                 f"(a map unit is {px_per_unit:.3g} px). " if px_per_unit else "")
        note = (in_px + f"Reference: π ≈ 3.14 in the visual cortex; the shuffled map gives "
                f"{fmt(p['shuffled_density'])}. About {columns:.1f} column areas Λ² fit on this "
                f"{rows}×{cols} map")
        if columns < 4:
            note += ": too few for a reliable density (train a larger map)"
        st.caption(note + ".")
    else:
        st.caption("All units prefer the same orientation: the map has no spectrum peak, so "
                   "Λ and the density are undefined.")


st.title("Orientation map & pinwheels")
ref = app_ui.require_run()
shape, why = analysis.map_info(ref)
# What orders the units when there are no pools, in the model's words (lateral inhibition)
order = analysis.map_order(ref)
if shape is None:
    st.info(why if order is None else f"{why} {order}")
    st.stop()
if order is not None:
    st.info(f"{ref.name} is a {ref.load().config.model} model. {order}")
elif not analysis.has_pools(ref):
    st.info(f"{ref.name} is a {ref.load().config.model} model: it has no pools, so its units "
            f"are in no particular order and the map below is salt and pepper. It is the "
            f"baseline: its pinwheel density is no different from the shuffled map's. Pick a "
            f"run of a model with pools to see orientation domains.")

run = ref.load()
layout = run.layout
px_per_unit = layout.px_per_map_unit if layout.kind == "sheet" and layout.stride_px else None
steps, _, _ = analysis.snapshots(ref.path, ref.stamp)
if (problem := analysis.snapshots_problem(ref.path, ref.stamp)) is not None:
    st.warning(plain(f"The replay is unavailable: {problem}"))
labels = replay.replay_labels(steps, run.weights_step)
playing = replay.playing(labels, TIME_KEY, PLAY_KEY)


@st.fragment(run_every=replay.TICK_S if playing else None)
def ticker() -> None:
    """While playing: one snapshot on per tick, and the whole page (map and spectrum) redrawn."""
    if playing:
        before = st.session_state.get(TIME_KEY)
        replay.advance(labels, TIME_KEY, PLAY_KEY)
        if st.session_state.get(TIME_KEY) != before:
            st.rerun(scope="app")


ticker()
c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
choice = c1.select_slider(
    "Training time", labels, value=labels[-1], key=TIME_KEY, bind="query-params",
    disabled=len(labels) < 2, help="Replay how the map organised itself during training (from "
    "the recorded filters). The map, its numbers and its spectrum follow this position.")
with c2:
    replay.play_button(labels, TIME_KEY, PLAY_KEY, key="orientation_play_button")
final = choice == labels[-1]
# The same experiment with other seeds: found once per page run (it reads every run's config),
# not again on every move of the smoothing slider.
siblings = analysis.seed_siblings(ref) if final else [ref]
snapshot = None if final else labels.index(choice)
o = analysis.orientation(ref.path, ref.stamp, snapshot)


def map_view() -> tuple[float, bool]:
    """The smoothing, the numbers and the map."""
    smooth, weighted = smoothing_ui()
    p = analysis.pinwheels(ref.path, ref.stamp, smooth, weighted, snapshot=snapshot)
    numbers_ui(o, p, shape, px_per_unit)
    dead = analysis.dead_map(ref.path, ref.stamp) if final else None
    when = "" if final else f", {choice}"
    fig = orientation_map_figure(
        o["theta"], o["selectivity"], p["pinwheels"],
        title=f"{ref.name}{when}, pinwheels at σ = {smooth:g}", height=560, dead=dead)
    st.plotly_chart(fig, key="orientation_map")
    note = ""
    if dead is not None and dead.any():
        note = (f" Black: {int(dead.sum())} dead unit(s) that never fire (no orientation); the "
                f"numbers above still count their filters.")
    st.caption("Hue: preferred orientation; brightness: selectivity; ● +½ and ■ −½ pinwheel "
               "centres. Hover a unit for its numbers." + note)
    return smooth, weighted


def spectrum_view() -> None:
    st.subheader(r"Power spectrum of $e^{2i\theta}$")
    st.plotly_chart(power_spectrum_figure(o["spectrum"], o["radial_k"], o["radial_power"],
                                          o["spacing"]), key="orientation_spectrum")
    st.caption("A map with orientation columns has its power on a ring; the ring's radius is "
               "1/Λ. A salt-and-pepper map has a flat spectrum. "
               + ("The map wraps around (a torus), so no window is applied."
                  if o["periodic"] else "The map does not wrap; a Hann window is applied."))
    st.markdown(
        "**Reading the map.** Around a pinwheel centre every orientation (every colour) "
        "appears once; going round it once, the orientation turns by 180°, clockwise (−½) or "
        "anticlockwise (+½). Dark regions are units with little orientation preference.")


@st.fragment
def map_and_controls() -> None:
    """The map and its numbers, the spectrum, and the density against its controls: one
    fragment, so that moving the smoothing redraws every number that depends on it (and only
    them)."""
    left, right = st.columns([3, 2])
    with left:
        smooth, weighted = map_view()
    with right:
        spectrum_view()
    controls_view(smooth, weighted)


def controls_view(smooth: float, weighted: bool) -> None:
    """The density against its references, the orientation histogram and the density curve."""
    p = analysis.pinwheels(ref.path, ref.stamp, smooth, weighted, snapshot=snapshot)
    lam = o["spacing"]
    st.subheader("Is it a cortex-like map? The density against its controls")
    if not math.isfinite(lam):
        st.caption("The map has no column spacing, so there is no density to compare.")
        return
    grf = analysis.random_field_control(shape, lam, smooth)
    dens = [analysis.pinwheels(s.path, s.stamp, smooth, weighted)["density"] for s in siblings]
    dens = [d for d in dens if math.isfinite(d)]
    rows = [
        ("This map", fmt(p["density"]), f"{p['count']} pinwheels at smoothing σ = {smooth:g}"),
        ("Over seeds", f"{statistics.fmean(dens):.2f} ± {statistics.pstdev(dens):.2f}"
         if len(dens) > 1 else "—",
         f"mean ± s.d. over {len(dens)} runs with these settings but other seeds"
         if len(dens) > 1 else "no other finished run has these settings with another seed: "
         "train the same settings with another model and data seed to see the spread"),
        ("Shuffled map", fmt(p["shuffled_density"]), "the same units at random places"),
        ("Random field", f"{grf[0]:.2f} ± {grf[1]:.2f}",
         f"Gaussian random maps with this Λ on a {shape[0]}×{shape[1]} map, counted the same way "
         "(π in expectation)"),
        ("Visual cortex", f"≈ {PI:.2f}", "tree shrew, galago, ferret (Kaschube et al. 2010)"),
    ]
    st.table({"": [r[0] for r in rows], "pinwheels per Λ²": [r[1] for r in rows],
              "what it is": [r[2] for r in rows]})
    if math.isfinite(p["at_centres"]):
        share, chance = p["at_centres"], p["at_centres_chance"]
        why = (" Most sit where the positions are: a position's units cover every orientation "
               "by winding once round its centre, neighbouring positions in opposite senses. A "
               "regular lattice of such pinwheels, one block apart, has Λ = 2 blocks and 4 "
               "pinwheels per Λ², above the ≈ π of the cortex and of random fields, whose "
               "pinwheels lie anywhere." if share >= 2 * chance else
               " That is not much above chance: the pinwheels are not tied to the positions.")
        st.caption(f"**Where the pinwheels sit.** {share:.0%} of them lie within one map unit "
                   f"of the centre of a position's block of units ({chance:.0%} would, at "
                   f"random places).{why}")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(orientation_histogram_figure(
            o["theta"], title="Preferred orientations of the units"), key="orientation_hist")
        st.caption("A map that covers every orientation evenly has flat bars; photographs have "
                   "more horizontal and vertical edges than oblique ones, and the units follow "
                   "the data unless it is evened out (for whole images: data.rotations).")
    with right:
        curve = analysis.size_curve(ref.path, ref.stamp, smooth, weighted, snapshot)
        if curve:
            st.plotly_chart(density_curve_figure(
                curve, grf, title="Density against the size of the map"), key="density_curve")
            st.caption("The pinwheels of this map counted in square windows of growing side "
                       "(mean ± s.d. over windows): small maps hold too few pinwheels for the "
                       "density to mean much; it settles as the window grows.")
        else:
            st.caption("The map is too small, for its Λ, to count pinwheels in windows.")


@st.fragment
def retinotopy_view() -> None:
    st.subheader("Retinotopy: where each unit looks")
    r = analysis.retinotopy_of(ref.path, ref.stamp)
    c1, c2, c3 = st.columns(3)
    slope = (r["slope_rows"] + r["slope_cols"]) / 2
    c1.metric("Pixels per map unit", f"{slope:.2f}",
              help=f"How far the receptive-field centre moves per step on the map (least-squares "
                   f"line); the positions alone move it {px_per_unit:.3g} px.")
    c2.metric("R²", f"{(r['r2_rows'] + r['r2_cols']) / 2:.3f}",
              help="How much of the spread of the centres the map position explains.")
    c3.metric("Scatter", f"{r['scatter_px']:.2f} px",
              help="RMS distance of the centres from the line: units next to each other on the "
                   "map look at slightly different places.")
    h, w = run.model.input_shape[1:]
    st.plotly_chart(retinotopy_figure(r["centres"], shape, o["theta"].ravel(), (h, w),
                                      layout.block(), title="Receptive-field centres in the image"),
                    key="retinotopy")
    st.caption("Each dot is a unit's receptive-field centre (its field's place plus its filter's "
               "centre of energy), coloured by its preferred orientation; the grey grid joins the "
               "mean centres of neighbouring positions. A smooth grid: neighbouring units look at "
               "neighbouring places.")


map_and_controls()
if px_per_unit is not None and final:
    retinotopy_view()
