"""One JSON-ready summary of a trained model: sparsity, reconstruction, orientation map, pinwheels,
and for units on a tree their path share, parent–child similarity and branch usage.

`summarize` works on plain arrays; `analyze_model` gets them from any `SparseModel` (encode,
decode, filters, map_shape, map_periodic, pools) and calls it. The map measures follow
Kaschube et al. (Science 2010) and Wolf & Geisel (Nature 1998): a pinwheel density near π per
column spacing² is what V1 shows and what a Gaussian random orientation map gives; the density of
the same map with its units shuffled is reported beside it as the baseline.

Every value is a plain int, float, bool or None (None where a measure is undefined: no map, no
pools, a constant map), so the dict can be written to JSON as is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .. import trees
from . import pinwheels as pw
from .localisation import localisation_summary
from .orientation import as_numpy, orientation_map, preferred_orientation
from .quality import (
    explained_variance,
    live_fraction,
    mean_selectivity,
    neighbour_orientation_diff_deg,
    within_vs_between_pool_similarity,
)
from .retinotopy import retinotopy_summary
from .sparsity import (
    activity_inputs,
    activity_samples,
    activity_threshold,
    sparsity_summary,
    spread_first,
)

# Map units; mild smoothing of s·e^{2iθ} before counting pinwheels. It removes the spurious
# pinwheels of ~20° orientation noise, but also merges close pinwheel pairs: on noise-free random
# maps it lowers the density by about 6 % at Λ = 8 units and 2 % at Λ = 12.
DEFAULT_SMOOTH_SIGMA = 1.0
N_SHUFFLES = 10  # shuffled maps averaged for the baseline density

_MAP_KEYS = (
    "neighbour_orientation_diff_deg", "pinwheel_count", "pinwheel_count_positive",
    "pinwheel_count_negative", "column_spacing", "spectral_peak_ratio", "pinwheel_density",
    "shuffled_pinwheel_density", "pinwheels_at_position_centres",
    "pinwheels_at_position_centres_chance",
)


TREE_KEYS = (
    "tree_units", "tree_count", "tree_depth", "path_share", "tree_active_share",
    "mean_active_units", "clash_share", "parent_child_similarity", "all_pairs_similarity",
    "parent_child_similarity_ratio", "min_branch_usage", "min_branch_unit",
    "branches_under_1pct",
)
RARE_BRANCH = 0.01  # a branch used on fewer inputs than this counts as rarely used


def _clean(v: Any) -> Any:
    """Python scalars only; NaN/inf become None."""
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return float(v) if math.isfinite(float(v)) else None
    return v


def spectral_peak_ratio(theta_map: np.ndarray, periodic: bool = False) -> float:
    """Peak of the radially averaged spectrum of e^{2iθ} over its mean (bins > 0): ≈ 1–3 for a
    map without structure (salt and pepper), much larger for a map with a clear column spacing."""
    _, _, radial = pw.power_spectrum(theta_map, periodic)
    r = radial[1:]
    return float(r.max() / r.mean()) if r.size and r.mean() > 0 else math.nan


def map_measures(
    theta_map: np.ndarray,
    selectivity_map: np.ndarray | None = None,
    periodic: bool = False,
    smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
    n_shuffles: int = N_SHUFFLES,
    seed: int = 0,
    block: tuple[int, int] | None = None,
) -> dict[str, float | int | None]:
    """Smoothness, pinwheels, column spacing and densities of one orientation map (rows, cols);
    for a sheet's map of `block`-shaped positions, the share of the pinwheels at the positions'
    centres against its chance (`pinwheels.block_centre_share`; None without a block)."""
    found = pw.find_pinwheels(theta_map, periodic, smooth_sigma, selectivity_map)
    at_centres = (pw.block_centre_share(found, block, theta_map.shape) if block is not None
                  else (None, None))
    spacing = pw.column_spacing(theta_map, periodic)
    if math.isfinite(spacing):
        density = pw.pinwheel_density(theta_map, periodic, smooth_sigma, selectivity_map,
                                      spacing=spacing)
        shuffled = pw.shuffled_density(theta_map, n_shuffles, seed, periodic, smooth_sigma,
                                       selectivity_map, spacing=spacing)
    else:
        density = shuffled = math.nan
    return {
        "neighbour_orientation_diff_deg": neighbour_orientation_diff_deg(theta_map, periodic),
        "pinwheel_count": len(found),
        "pinwheel_count_positive": sum(1 for p in found if p[2] > 0),
        "pinwheel_count_negative": sum(1 for p in found if p[2] < 0),
        "column_spacing": spacing,
        "spectral_peak_ratio": spectral_peak_ratio(theta_map, periodic),
        "pinwheel_density": density,
        "shuffled_pinwheel_density": shuffled,
        "pinwheels_at_position_centres": at_centres[0],
        "pinwheels_at_position_centres_chance": at_centres[1],
    }


def summarize(
    filters: np.ndarray | torch.Tensor,
    map_shape: tuple[int, int] | None,
    codes: np.ndarray | torch.Tensor,
    x: np.ndarray | torch.Tensor,
    x_hat: np.ndarray | torch.Tensor,
    pool_matrix: np.ndarray | torch.Tensor | None = None,
    periodic: bool = False,
    smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
    n_shuffles: int = N_SHUFFLES,
    seed: int = 0,
    why_no_map: str | None = None,
    block: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """All measures as a flat JSON-ready dict.

    filters: (N, h, w) or (N, C, h, w) — orientation is measured on single-channel filters only;
    map_shape: (rows, cols) with rows·cols = N, or None (map measures None, `why_no_map` says
    why); codes: (B, K); x, x_hat: (B, D); pool_matrix: (n_pools, K), used for the pool
    statistics of the codes, and for the within/between-pool filter similarity when K = N.
    Each `why_no_*` key holds, in words, why a group of measures is None (None when they apply).
    The sparsity measures (and `live_fraction`) follow the activity rule of `sparsity`: on the
    first ACTIVITY_SAMPLES codes (`sparsity_samples` says how many), with the run's
    `activity_threshold`, as the Sparsity page measures them; codes come in the order of the
    training samples. `block`: a sheet's (a, b) units a position (`map_measures`).
    """
    f = as_numpy(filters)
    if f.ndim == 4 and f.shape[1] == 1:
        f = f[:, 0]
    z = as_numpy(codes)
    z = z.reshape(z.shape[0], -1)
    zs = activity_samples(z)  # the sparsity measures' fixed samples
    t = activity_threshold(zs)
    P = None if pool_matrix is None else as_numpy(pool_matrix)
    why_no_orientation = None
    if f.ndim == 3:
        theta, sel = preferred_orientation(f)
    else:
        why_no_orientation = (f"its filters have {f.shape[1]} channels; orientation is measured "
                              f"on single-channel filters")
        theta = sel = None
    out: dict[str, Any] = {
        "n_samples": int(z.shape[0]),
        "n_units": int(z.shape[1]),
        "n_filters": int(f.shape[0]),
        "live_fraction": live_fraction(zs, t),
        "mean_selectivity": mean_selectivity(sel) if sel is not None else None,
        "explained_variance": explained_variance(x, x_hat),
        **localisation_summary(f),
    }
    sparsity = sparsity_summary(zs, P if P is not None and P.shape[1] == z.shape[1] else None, t)
    out.update({k: v for k, v in sparsity.items() if k not in ("n_samples", "n_units")})
    out["sparsity_samples"] = int(zs.shape[0])

    has_map = map_shape is not None and int(map_shape[0]) * int(map_shape[1]) == f.shape[0]
    if map_shape is not None and not has_map:
        why_no_map = (f"its {f.shape[0]} filters do not fill the "
                      f"{map_shape[0]}×{map_shape[1]} map")
    elif map_shape is not None and min(map_shape) < 2:
        why_no_map = f"its units lie on a {map_shape[0]}×{map_shape[1]} strip"
    elif map_shape is not None and theta is None:
        why_no_map = why_no_orientation
    out["map_rows"] = int(map_shape[0]) if has_map else None
    out["map_cols"] = int(map_shape[1]) if has_map else None
    out["map_periodic"] = bool(periodic) if has_map else None
    out["smooth_sigma"] = float(smooth_sigma)
    if has_map and min(map_shape) >= 2 and theta is not None:
        theta_map, sel_map = orientation_map(f, map_shape)
        out.update(map_measures(theta_map, sel_map, periodic, smooth_sigma, n_shuffles, seed,
                                block))
        why_no_map = None
    else:
        out.update(dict.fromkeys(_MAP_KEYS))
        why_no_map = why_no_map or "it has no 2-D map of units"

    why_no_pools = None
    if P is not None and P.shape[1] == f.shape[0]:
        sim = within_vs_between_pool_similarity(f.reshape(f.shape[0], -1), P)
        out["within_pool_similarity"] = sim["within"]
        out["between_pool_similarity"] = sim["between"]
        out["pool_similarity_ratio"] = sim["ratio"]
        if _clean(sim["ratio"]) is None:
            why_no_pools = ("every pair of units shares a pool (or none does), so similarity "
                            "within pools cannot be set against similarity between them")
    else:
        why_no_pools = ("it has no pools (no group-sparsity penalty)" if P is None else
                        "its pools are over more units than it has filters")
        out["within_pool_similarity"] = None
        out["between_pool_similarity"] = None
        out["pool_similarity_ratio"] = None
    out["why_no_map"] = why_no_map
    out["why_no_orientation"] = why_no_orientation
    out["why_no_pools"] = why_no_pools
    return {k: _clean(v) for k, v in out.items()}


def sheet_measures(filters: Any, layout: Any, map_shape: tuple[int, int] | None,
                   spacing: float | None) -> dict[str, Any]:
    """For a sheet over an image: Λ in image pixels and the retinotopy numbers; None for other
    layouts, with `why_no_retinotopy` saying why."""
    out: dict[str, Any] = {"column_spacing_px": None, "px_per_map_unit": None,
                           **dict.fromkeys(("retinotopy_px_per_unit", "retinotopy_r2",
                                            "rf_scatter_px"))}
    if layout.kind != "sheet" or layout.stride_px <= 0:
        out["why_no_retinotopy"] = "its units are not laid out over an image"
        return out
    if map_shape is None:
        out["why_no_retinotopy"] = "its sheet has no 2-D map"
        return out
    px = layout.px_per_map_unit
    out["px_per_map_unit"] = px
    if spacing is not None:
        out["column_spacing_px"] = _clean(spacing * px)
    out.update({k: _clean(v) for k, v in retinotopy_summary(filters, layout, map_shape).items()})
    out["why_no_retinotopy"] = None
    return out


def _why_no_tree(layout: Any) -> str:
    if layout.kind == "map":
        return "its units lie on a 2-D map, not on a tree"
    if layout.kind == "sheet":
        return "its units lie on a sheet over the image, not on a tree"
    return "its units have no tree (no spatial layout)"


def tree_summary(model: Any, codes: torch.Tensor, filters: torch.Tensor) -> dict[str, Any]:
    """For a model whose `layout` is a tree (Gregor, Szlam & LeCun 2011), on codes (B, N):

    `path_share`: of the inputs with an active unit, the share whose active units all lie on one
    root-to-leaf path (`tree_active_share`: the share with an active unit at all);
    `clash_share`: of all inputs, the share on which two units that inhibit each other are both
    active (S_ij > 0 for a model with S, else the tree's inhibition pattern);
    `parent_child_similarity`: mean |cosine| of parent–child filter pairs, against all pairs
    (`all_pairs_similarity`) and their ratio; branch usage (the share of inputs on which any
    unit of a unit's subtree is active): the least-used branch's usage and root unit, and
    `branches_under_1pct`, the units whose branch is used on fewer than 1 % of the inputs (the
    units a prune at 1 % removes). All None, with `why_no_tree` in words, for other layouts."""
    out: dict[str, Any] = dict.fromkeys(TREE_KEYS)
    layout = model.layout
    if layout.kind != "tree" or not layout.parents:
        out["why_no_tree"] = _why_no_tree(layout)
        return out
    tree = trees.Tree(tuple(layout.parents))
    if tree.n_units != codes.shape[1]:
        out["why_no_tree"] = (f"its tree has {tree.n_units} units but its codes have "
                              f"{codes.shape[1]}")
        return out
    if hasattr(model, "tree_measures"):
        stats = model.tree_measures(codes)
    else:
        stats = trees.tree_statistics(tree, codes, filters)
        a = trees.active(codes).astype(np.float32)
        clashes = ((a @ trees.inhibition_pattern(tree).astype(np.float32)) * a).sum(1)
        stats["clash_share"] = float((clashes > 0).mean()) if a.shape[0] else 0.0
    usage = np.asarray(stats["branch_usage"], dtype=np.float64)
    out.update({
        "tree_units": tree.n_units,
        "tree_count": len(tree.roots),
        "tree_depth": int(tree.depths.max()) + 1,
        "path_share": stats["path_share"],
        "tree_active_share": stats["active_share"],
        "mean_active_units": stats["mean_active_units"],
        "clash_share": stats["clash_share"],
        "parent_child_similarity": stats.get("parent_child_similarity"),
        "all_pairs_similarity": stats.get("all_pairs_similarity"),
        "parent_child_similarity_ratio": stats.get("similarity_ratio"),
        "min_branch_usage": float(usage.min()),
        "min_branch_unit": int(usage.argmin()),
        "branches_under_1pct": int((usage < RARE_BRANCH).sum()),
    })
    out["why_no_tree"] = None
    return {k: _clean(v) for k, v in out.items()}


def analyze_model(
    model: Any,
    x: np.ndarray | torch.Tensor,
    periodic: bool | None = None,
    smooth_sigma: float = DEFAULT_SMOOTH_SIGMA,
    max_samples: int = 5000,
    batch_size: int = 1000,
    n_shuffles: int = N_SHUFFLES,
    seed: int = 0,
    x_test: np.ndarray | torch.Tensor | None = None,
    y_test: np.ndarray | torch.Tensor | None = None,
) -> dict[str, Any]:
    """`summarize` a `SparseModel` on inputs x: (n, n_inputs) (the first `max_samples` rows).

    Runs encode/decode under `torch.no_grad` in batches, on the device of the model's
    parameters, and analyses on the CPU. The map comes from `model.layout` (None, with the
    reason, when it has no 2-D map); units on a tree get `tree_summary` (else `why_no_tree`);
    `periodic` defaults to `model.map_periodic`. With held-out
    data `x_test` the model's `evaluate` metrics are added as `test_*` (else `why_no_test`).
    A DrSAE-like model (an unrolled encoder with a classifier) adds `analysis.drsae`'s
    `SUMMARY_KEYS` (part / categorical unit counts and their means), on the held-out data
    when there is some.
    The model's train/eval mode is left untouched.
    """
    per = getattr(model, "rows_per_sample", 1)
    if per != 1:  # S code rows per image: fewer images keep the codes small
        max_samples = min(max_samples, activity_inputs(per))
    xt = torch.as_tensor(x)[:max_samples].float()
    xt = xt.reshape(xt.shape[0], -1)
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    codes, recon = [], []
    with torch.no_grad():
        for s in range(0, xt.shape[0], batch_size):
            xb = xt[s:s + batch_size].to(device)
            zb = model.encode(xb)
            codes.append(zb.reshape(zb.shape[0], -1).cpu())
            # by input rows: a conv model's code rows are (image, position) pairs
            recon.append(model.decode(zb).reshape(xb.shape[0], -1).cpu())
        kind = model.default_filter_kind()
        filters = model.filters(kind)
        pools = model.pools()
    layout = model.layout
    map_shape, why = layout.map_shape()
    # a conv model's activity samples spread over its images (`sparsity.spread_first`)
    codes = spread_first(torch.cat(codes), per)
    out = summarize(
        filters, map_shape, codes, xt, torch.cat(recon),
        pool_matrix=None if pools is None else pools.detach().cpu(),
        periodic=model.map_periodic if periodic is None else bool(periodic),
        smooth_sigma=smooth_sigma, n_shuffles=n_shuffles, seed=seed, why_no_map=why or None,
        block=layout.position_blocks(),
    )
    out.update(sheet_measures(filters, layout, map_shape, out.get("column_spacing")))
    out.update(tree_summary(model, codes, filters))
    if x_test is not None and len(x_test) > 0:
        xs = torch.as_tensor(x_test)[:max_samples].float().to(device)
        ys = None if y_test is None else torch.as_tensor(y_test)[:max_samples].to(device)
        for k, v in model.evaluate(xs.reshape(xs.shape[0], -1), ys).items():
            out[f"test_{k}"] = _clean(v)
        out["test_samples"] = int(xs.shape[0])
        out["why_no_test"] = None
    else:
        out["why_no_test"] = "the data has no held-out split"
    if _is_drsae_like(model):  # only such models get these keys: other reports are unchanged
        from .drsae import drsae_summary

        xs = xt if x_test is None or len(x_test) == 0 else torch.as_tensor(x_test)[:max_samples]
        xs = xs.float().reshape(xs.shape[0], -1).to(device)
        with torch.no_grad():
            out.update({k: _clean(v) for k, v in drsae_summary(model, xs).items()})
    if _is_conv_like(model):  # only such models get these keys: other reports are unchanged
        out.update(conv_summary(model, xt.to(device)))
    return out


CONV_KEYS = (
    "layer_explained_variance", "phase_modulation_unpooled", "phase_modulation_pooled",
    "phase_invariance_ratio", "translation_modulation_unpooled",
    "translation_modulation_pooled", "translation_invariance_ratio",
    "rotation_modulation_unpooled", "rotation_modulation_pooled", "rotation_invariance_ratio",
)


def conv_summary(model: Any, x: torch.Tensor, max_shift: int = 2) -> dict[str, Any]:
    """A conv model's invariance (`analysis.invariance`: modulation of its unpooled and pooled
    units over its best grating's phase, small translations of the images x: (n, H·W), and
    small rotations; pooled/unpooled ratios) and `layer_explained_variance`, the explained
    variance of its own input (the image, or a stacked model's pooled maps). Translation is
    None, with `why_no_translation`, when the images are too small for the shifted windows."""
    from .invariance import conv_invariance, conv_responders, invariance_summary

    h, w = model.config.input_shape
    size = conv_responders(model)[2]
    images = x[:200].reshape(-1, h, w).cpu().numpy()
    fits = min(h, w) >= size + 2 * max_shift
    with torch.no_grad():
        sweeps = conv_invariance(model, images if fits else None, max_shift)
        m = model.evaluate(x[:200])
        ev = m.get("layer_explained_variance", m.get("explained_variance"))
    out = {"layer_explained_variance": ev, **invariance_summary(sweeps)}
    out["why_no_translation"] = None if fits else (
        f"its {h}×{w} images are smaller than a centre pool's {size}×{size} field shifted by "
        f"{max_shift} px each way")
    return {k: _clean(v) for k, v in out.items()}


def _is_conv_like(model: Any) -> bool:
    """A convolutional model with L2 pooling: `feature_maps`, `pooled_maps` and a config with
    kernel and pool sizes."""
    return all(hasattr(model, a) for a in ("feature_maps", "pooled_maps")) and all(
        hasattr(getattr(model, "config", None), a) for a in ("kernel", "pool_size"))


def _is_drsae_like(model: Any) -> bool:
    """An unrolled encoder with a classifier on its code (DrSAE): E, S, D, C, `iterates`,
    `class_logits` and part/categorical thresholds."""
    return all(hasattr(model, a) for a in ("E", "S", "D", "C", "iterates", "class_logits")) \
        and hasattr(getattr(model, "config", None), "part_angle")
