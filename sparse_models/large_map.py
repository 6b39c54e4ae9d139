"""A topographic map of 32×32 units (issue #10, part 3): the recipe, and its measurements.

With the default settings a 32×32 map collapses: a blob of units takes every patch and the rest
never fire again (a silent shrink unit gets no gradient, and the encoder weight decay then
shrinks its filter away). Reviving the silent units (`model.revive_every`: each restarts from a
badly reconstructed patch's residual) through most of training keeps them in use.

Revival alone (3×3 uniform pools, λ 0.2, extra L1 0.15, 16×16 patches, 2000 steps) gives a
smooth map, but one with no length scale of its own (one orientation period across the map) and
whole-patch grating filters. The recipe below adds retinotopic apertures (`model.aperture`, as
the sheet model's receptive fields): unit (r, c) sees only a disc of radius 4 px centred at
((r + ½)·16/32 − ½, (c + ½)·16/32 − ½), so neighbours on the map look at neighbouring places,
every place must be covered by all orientations, and the map repeats about every 10 units
(≈ 3 periods across). Filters are zero mean inside the disc (no unoriented blobs), the map does
not wrap (the centres would jump at a torus's seam), and training runs 6000 steps with revival up
to step 4500.

`bench_large_map` trains the recipe from scratch through the normal run pipeline and measures
its map; `bench_localisation` sets the envelope width of its filters against plain sparse coding
trained on the same patches. Both train from scratch: no figure here is stored.
"""

from __future__ import annotations

import math
from typing import Any

# λ: 0.17 gave EV 0.861 but Δθ 20.1°; 0.2 gave Δθ 18.9° but EV 0.845 (seed 0, 6000 steps).
LAM = 0.185

LARGE_MAP: dict[str, object] = {
    "model.group.map_shape": [32, 32],
    "model.group.size": 3,
    "model.group.sigma": None,
    "model.group.wrap": False,
    "model.aperture": 4.0,
    "model.zero_mean": True,
    "model.lam": LAM,
    "model.l1": 0.15,
    "model.revive_every": 100,
    "model.revive_until": 4500,
    "data.patch_size": 16,
    "train.steps": 6000,
}

# The previous recipe (revival only, whole-patch filters, a torus map): one orientation period
# across the map. Kept for comparison: `bench_large_map(overrides=REVIVAL_ONLY_OVERRIDES)`.
REVIVAL_ONLY_OVERRIDES: dict[str, object] = {
    "model.group.wrap": True,
    "model.aperture": 0.0,
    "model.zero_mean": False,
    "model.lam": 0.2,
    "model.revive_until": 1900,
    "train.steps": 2000,
}


def _train(model: str, overrides: dict[str, Any], command: str) -> dict[str, Any]:
    """`bench.train_from_scratch` (the normal run pipeline, then the analysis); RuntimeError
    when the run did not complete."""
    from .bench import train_from_scratch

    q = train_from_scratch(model, overrides, command)
    if q["state"] != "completed":
        raise RuntimeError(f"the {model} run did not complete: {q['state']}")
    return q


def recipe(seed: int = 0, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """LARGE_MAP with the model and training seeds set, plus `overrides` (e.g. smaller sizes)."""
    return {**LARGE_MAP, "model.seed": seed, "train.seed": seed, **(overrides or {})}


def bench_large_map(seed: int = 0, overrides: dict[str, Any] | None = None,
                    device: str = "auto") -> dict[str, Any]:
    """Train the LARGE_MAP recipe from scratch (run pipeline, as `python -m sparse_models train
    topographic` does) and measure its map with `analysis.report.analyze_model`.

    Returns live_fraction, neighbour_orientation_diff_deg, explained_variance, column_spacing
    (Λ, map units), periods_across (map side / Λ), pinwheel_count, pinwheel_density,
    envelope_width_px, train_seconds (wall, end to end), map_shape, steps, overrides.
    """
    ov = {**recipe(seed, overrides), "train.device": device}
    q = _train("topographic", ov, "sparse_models.large_map.bench_large_map")
    rows, cols = q["map_rows"], q["map_cols"]
    spacing = q.get("column_spacing")
    periods = min(rows, cols) / spacing if spacing else math.nan
    return {
        "live_fraction": q["live_fraction"],
        "neighbour_orientation_diff_deg": q["neighbour_orientation_diff_deg"],
        "explained_variance": q["explained_variance"],
        "column_spacing": spacing if spacing is not None else math.nan,
        "periods_across": periods,
        "pinwheel_count": q["pinwheel_count"],
        "pinwheel_density": q["pinwheel_density"],
        "envelope_width_px": q["envelope_width_px"],
        "train_seconds": q["wall_s"],
        "map_shape": (int(rows), int(cols)),
        "steps": q["steps"],
        "overrides": ov,
    }


def bench_localisation(seed: int = 0, overrides: dict[str, Any] | None = None,
                       sparse_coding_overrides: dict[str, Any] | None = None,
                       device: str = "auto",
                       topographic_width_px: float | None = None) -> dict[str, Any]:
    """Envelope width (`analysis.localisation`, the report's `envelope_width_px`: mean over
    units, pixels) of the LARGE_MAP recipe's decoder filters against plain sparse coding
    (`sparse_coding`, its own default settings) trained on the same patches (the recipe's data
    settings). `topographic_width_px`: the recipe's width already measured (e.g. by
    `bench_large_map`), so that it is not trained again.

    Returns topographic_width_px, sparse_coding_width_px, ratio (topographic / sparse coding;
    target ≤ 1.15), patch_size, the units of each model trained here and their training times.
    """
    topo_ov = {**recipe(seed, overrides), "train.device": device}
    command = "sparse_models.large_map.bench_localisation"
    out: dict[str, Any] = {"patch_size": int(topo_ov["data.patch_size"])}
    if topographic_width_px is None:
        topo = _train("topographic", topo_ov, command)
        topographic_width_px = topo["envelope_width_px"]
        out.update(topographic_units=topo["n_units"], topographic_train_seconds=topo["wall_s"])
    data = {k: v for k, v in topo_ov.items() if k.startswith("data.")}
    sc_ov = {**data, "model.seed": seed, "train.seed": seed, "train.device": device,
             **(sparse_coding_overrides or {})}
    sc = _train("sparse_coding", sc_ov, command)
    wt, ws = topographic_width_px, sc["envelope_width_px"]
    out.update(topographic_width_px=wt, sparse_coding_width_px=ws,
               ratio=wt / ws if ws > 0 else math.nan, sparse_coding_units=sc["n_units"],
               sparse_coding_train_seconds=sc["wall_s"])
    return out
