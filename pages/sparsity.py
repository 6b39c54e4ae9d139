"""Sparsity: how sparse the codes are per sample, per unit and per pool; group sparsity vs L1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

import app_ui
from app_ui import analysis
from app_ui.widgets import fmt
from sparse_models.analysis import (
    activation_histogram,
    active_count,
    firing_frequency,
    group_norms,
)
from sparse_models.analysis.sparsity import default_threshold, hoyer_sparsity, pool_clustering
from sparse_models.models import available_models, get_entry
from sparse_models.models.base import SparseModel
from sparse_models.plotting import (
    histogram_figure,
    map_heatmap_figure,
    overlay_histograms_figure,
    sorted_bar_figure,
)
from sparse_models.training.runs import RunError, read_run_config


def code_stats(z: np.ndarray, P: np.ndarray | None, threshold: float) -> dict[str, float]:
    """The numbers of the comparison table, all at one activity threshold."""
    l0 = active_count(z, threshold)
    out = {"active units per patch": float(l0.mean()),
           "active units (fraction)": float(l0.mean() / z.shape[1]),
           "Hoyer sparseness of units": float(np.nanmean(hoyer_sparsity(z))),
           "dead units": int((firing_frequency(z, threshold) <= 0).sum())}
    if P is not None:
        c = pool_clustering(z, P, threshold)
        out["active pools per patch"] = c["active_pools"]
        out["… if those units were scattered at random"] = c["scattered_pools"]
        out["clustering: active / scattered pools (< 1: clustered)"] = c["ratio"]
        out["Hoyer sparseness of pool norms"] = float(np.nanmean(hoyer_sparsity(group_norms(z, P))))
    return out


def _has_pools(model: str) -> bool:
    return get_entry(model).model_cls.pools is not SparseModel.pools


def comparison_candidates(ref: app_ui.RunRef) -> list:
    """Finished runs that can encode this run's patches and differ in having pools or not.
    Only their config files are read here; the chosen one is opened later."""
    me = ref.load()
    shape = tuple(me.config.data.input_shape)
    out, n_units = [], {}
    for info in app_ui.all_runs():
        if info.name == ref.name or info.state != "completed" or not info.model:
            continue
        if _has_pools(info.model) == _has_pools(me.config.model):
            continue
        try:
            cfg = read_run_config(info.path)
        except RunError:
            continue
        if tuple(cfg.data.input_shape) != shape:
            continue
        out.append(info)
        n_units[info.name] = _n_units(cfg)
    # runs with as many units as this one first: then the same pools apply to both codes
    out.sort(key=lambda r: (n_units[r.name] != me.model.n_units, not r.shipped, r.name))
    return out


def _n_units(cfg) -> int | None:
    """Units of a run's model from its config, for ordering only (None when it can't be told)."""
    try:
        return int(cfg.model_cls(cfg.model_config).n_units)
    except Exception:  # ordering only: a model that cannot be built sorts last
        return None


def group_vs_l1_ui(ref: app_ui.RunRef, z: np.ndarray) -> None:
    st.subheader("Group sparsity vs plain L1, on the same patches")
    st.markdown(
        "Plain L1 (sparse coding) penalises every unit on its own, so the active units are "
        "scattered over the map. The group penalty Σⱼ‖z_Pⱼ‖₂ is cheap for a unit whose pool "
        "is already active, so active units **cluster in pools**: for the same number of "
        "active units, fewer pools are switched on. Below, both models encode the same "
        "patches and are measured with the same pools; *clustering* compares the pools "
        "switched on with those the same active units would switch on if they were scattered "
        "over the map at random.")
    candidates = comparison_candidates(ref)
    if not candidates:
        pooled = analysis.has_pools(ref)
        kinds = [m for m in available_models() if _has_pools(m) != pooled]
        example = f" (e.g. {', '.join(kinds)})" if kinds else ""
        st.info("There is no finished run to compare with that " + (
            "uses plain L1" if pooled else "uses group sparsity") + example +
            " on patches of the same size. Train one on the Train page (same patch size), "
            "then come back.")
        st.page_link("../pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    names = [c.name for c in candidates]
    other_name = st.selectbox("Compare with", names, key="sparsity_other", bind="query-params")
    other, error = app_ui.open_run(candidates[names.index(other_name)])
    if other is None:
        st.error(error)
        return
    pooled_ref, plain_ref = (ref, other) if analysis.has_pools(ref) else (other, ref)
    P = analysis.pool_matrix(pooled_ref.path, pooled_ref.stamp)
    z_other = analysis.codes(other.path, other.stamp, ref.path, ref.stamp)
    if P is not None and z_other.shape[1] != z.shape[1]:
        st.caption(f"{other.name} has {z_other.shape[1]} units and {ref.name} has "
                   f"{z.shape[1]}: the same pools cannot be applied to both, so pool "
                   f"statistics are left out. Pick a run with as many units to see them.")
        P = None
    z_pooled, z_plain = (z, z_other) if pooled_ref is ref else (z_other, z)
    # one absolute threshold for both, so 'active' means the same thing
    t = max(default_threshold(z_pooled), default_threshold(z_plain))
    a, b = code_stats(z_pooled, P, t), code_stats(z_plain, P, t)
    table = pd.DataFrame({f"{pooled_ref.name} (group)": a, f"{plain_ref.name} (L1)": b})
    st.dataframe(table.map(fmt), key="sparsity_compare_table")
    if P is not None:
        bins = np.linspace(0, max(group_norms(z_pooled, P).max(), group_norms(z_plain, P).max())
                           or 1.0, 41)
        c1, c2 = st.columns(2)
        c1.plotly_chart(overlay_histograms_figure(
            {f"{pooled_ref.name} (group)": np.histogram(group_norms(z_pooled, P), bins),
             f"{plain_ref.name} (L1)": np.histogram(group_norms(z_plain, P), bins)},
            title="Pool norms, same pools", x_label="‖z_P‖₂", log_y=True, normalize=True),
            key="sparsity_cmp_pools")
        hi = int(max(active_count(z_pooled, t).max(), active_count(z_plain, t).max()))
        lb = np.arange(0, hi + 2, max(1, int(np.ceil((hi + 1) / 40)))) - 0.5
        c2.plotly_chart(overlay_histograms_figure(
            {f"{pooled_ref.name} (group)": np.histogram(active_count(z_pooled, t), lb),
             f"{plain_ref.name} (L1)": np.histogram(active_count(z_plain, t), lb)},
            title="Active units per patch", x_label="L0", normalize=True),
            key="sparsity_cmp_l0")
    st.caption("Each model was trained with its own λ, so the overall level of sparsity "
               "differs; look at how the activity is spread over pools, not at its amount.")


st.title("Sparsity")
ref = app_ui.require_run()
run = ref.load()
z = analysis.codes(ref.path, ref.stamp)
P = analysis.pool_matrix(ref.path, ref.stamp)
t = default_threshold(z)
freq = firing_frequency(z, t)
l0 = active_count(z, t)
dead = np.flatnonzero(freq <= 0)
K = z.shape[1]

st.caption(f"Codes of {ref.name} on {z.shape[0]} of its training patches. A unit counts as "
           f"active when |z| > {t:.2g} (10⁻³ × the largest |z|).")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Active units per patch", f"{l0.mean():.1f} of {K}",
          help="Population sparsity: the mean L0 of a code.")
c2.metric("Hoyer sparseness", fmt(float(np.nanmean(hoyer_sparsity(z))), 2),
          help="1: a single active unit; 0: all units equally active.")
c3.metric("Dead units", f"{dead.size} of {K}", help="Units never active on these patches.")
if P is not None:
    g = group_norms(z, P)
    c4.metric("Active pools per patch", f"{(g > t).sum(axis=1).mean():.1f} of {P.shape[0]}")
else:
    g = None
    c4.metric("Pools", "none", help="This model has no group structure.")

left, right = st.columns(2)
with left:
    counts, edges = activation_histogram(z, bins=60, active_only=True, threshold=t)
    st.plotly_chart(histogram_figure(counts, edges, "Activations of active units",
                                     "z", log_y=True), key="sparsity_act_hist")
    st.plotly_chart(sorted_bar_figure(freq, "Firing frequency per unit (red: dead)",
                                      "fraction of patches", highlight_below=0.0),
                    key="sparsity_freq")
with right:
    lb = np.arange(0, l0.max() + 2) - 0.5
    st.plotly_chart(histogram_figure(*np.histogram(l0, lb), "Active units per patch (L0)",
                                     "L0"), key="sparsity_l0")
    shape, _ = run.layout.map_shape()
    rows, cols = shape or (0, 0)
    if shape is not None and rows * cols == K:
        st.plotly_chart(map_heatmap_figure(freq.reshape(rows, cols),
                                           "Firing frequency on the unit map", zmin=0,
                                           value_label="rate"), key="sparsity_freq_map")

if g is not None:
    st.plotly_chart(histogram_figure(*np.histogram(g, 60), "Pool norms ‖z_P‖₂ (what the "
                                     "group penalty sums)", "pool norm", log_y=True),
                    key="sparsity_pools")
if dead.size:
    st.warning(f"{dead.size} dead unit(s), never active on these patches: "
               + ", ".join(map(str, dead[:40])) + (" …" if dead.size > 40 else ""))
else:
    st.caption("No dead units: every unit is active on some patches.")

st.divider()
group_vs_l1_ui(ref, z)
