"""Analysis results for the pages, cached per run (path + weights mtime) and settings.

Every function takes the run's path and stamp (see `runs.RunRef`) so `st.cache_data` keys on
them; the expensive part of a page is computed once per run, and view-only controls (like the
pinwheel smoothing) only redo the cheap step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import streamlit as st
import torch

from sparse_models.analysis import (
    column_spacing,
    dead_units,
    find_pinwheels,
    pinwheel_density,
    power_spectrum,
    preferred_orientation,
    shuffled_density,
)
from sparse_models.analysis.cached import analyze_run
from sparse_models.analysis.pinwheels import block_centre_share, density_by_size
from sparse_models.analysis.retinotopy import retinotopy
from sparse_models.analysis.sparsity import (
    activity_inputs,
    activity_samples,
    spread_first,
)
from sparse_models.training.runs import RunError

from .runs import RunRef, _load_run_cached


def _run(path: str, stamp: float):
    return _load_run_cached(path, stamp)


def has_pools(ref: RunRef) -> bool:
    """Whether the run's model pools its units (its `has_pools`; a large sheet has pools but no
    dense pool matrix)."""
    return bool(ref.load().model.has_pools)


def map_order(ref: RunRef) -> str | None:
    """What orders the run's units on their map when it has no pools, in its model's words
    (e.g. lateral inhibition), else None."""
    return ref.load().model.map_order


def map_info(ref: RunRef) -> tuple[tuple[int, int] | None, str | None]:
    """`(map_shape, None)` when the run's units form a 2-D map worth analysing (from what its
    model declares), else `(None, why not)` in words for the user."""
    run = ref.load()
    shape, why = run.layout.map_shape()
    if shape is None:
        return None, (f"{ref.name} is a {run.config.model!r} model and {why}, so there is no "
                      f"orientation map to draw.")
    if run.filters().shape[1] != 1:
        return None, (f"{ref.name}'s filters have {run.filters().shape[1]} channels; "
                      f"orientation is measured on single-channel filters.")
    return (int(shape[0]), int(shape[1])), None


@st.cache_data(max_entries=32, show_spinner=False)
def filters(path: str, stamp: float, kind: str | None = None) -> np.ndarray:
    """`(N, C, h, w)` filters of one kind (default: the model's default kind)."""
    return _run(path, stamp).filters(kind)


def orientation_of(filters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Preferred orientation and selectivity per unit of filters `(N, C, h, w)` (single
    channel; the channels are summed otherwise), e.g. a replay snapshot's."""
    return preferred_orientation(filters[:, 0] if filters.shape[1] == 1 else filters.sum(axis=1))


@st.cache_data(max_entries=16, show_spinner=False)
def unit_orientation(path: str, stamp: float) -> tuple[np.ndarray, np.ndarray]:
    """Preferred orientation (radians) and selectivity per unit, from the default filters
    (single-channel; the channels are summed otherwise, which the pages say)."""
    return orientation_of(_run(path, stamp).filters())


def _map_dict(theta: np.ndarray, sel: np.ndarray, periodic: bool) -> dict[str, Any]:
    spec, radial_k, radial_p = power_spectrum(theta, periodic)
    return {"theta": theta, "selectivity": sel, "periodic": periodic,
            "spacing": column_spacing(theta, periodic), "spectrum": spec,
            "radial_k": radial_k, "radial_power": radial_p}


@st.cache_data(max_entries=16, show_spinner="Measuring the orientation map…")
def orientation(path: str, stamp: float, snapshot: int | None = None) -> dict[str, Any]:
    """Everything about the map that does not depend on the smoothing: θ and selectivity maps,
    the column spacing Λ and the power spectrum. Done once per run (and per replay snapshot:
    `snapshot` is its index, None for the final weights)."""
    run = _run(path, stamp)
    rows, cols = run.map_shape
    if snapshot is None:
        theta, sel = unit_orientation(path, stamp)
    else:
        theta, sel = orientation_of(snapshots(path, stamp)[1][snapshot])
    return _map_dict(theta.reshape(rows, cols), sel.reshape(rows, cols), run.map_periodic)


@st.cache_data(max_entries=128, show_spinner=False)
def pinwheels(path: str, stamp: float, smooth: float, weighted: bool = True,
              n_shuffles: int = 10, snapshot: int | None = None) -> dict[str, Any]:
    """Pinwheels of the map at smoothing σ (map units): the cheap step redone on every change."""
    o = orientation(path, stamp, snapshot)
    theta, periodic, lam = o["theta"], o["periodic"], o["spacing"]
    sel = o["selectivity"] if weighted else None
    found = find_pinwheels(theta, periodic, smooth, sel)
    if math.isfinite(lam):
        density = pinwheel_density(theta, periodic, smooth, sel, spacing=lam)
        shuffled = shuffled_density(theta, n_shuffles, 0, periodic, smooth, sel, spacing=lam)
    else:
        density = shuffled = math.nan
    # a sheet: how many sit at a position's centre (its block of units), against chance
    block = _run(path, stamp).model.layout.position_blocks()
    at_centres, chance = (block_centre_share(found, block, theta.shape) if block is not None
                          else (math.nan, math.nan))
    return {"pinwheels": found, "count": len(found),
            "positive": sum(1 for p in found if p[2] > 0),
            "negative": sum(1 for p in found if p[2] < 0),
            "density": density, "shuffled_density": shuffled,
            "at_centres": at_centres, "at_centres_chance": chance}


def dead_map(path: str, stamp: float) -> np.ndarray:
    """(rows, cols) bool: the units that never fire on the activity samples (final weights)."""
    run = _run(path, stamp)
    return dead_units(codes(path, stamp)).reshape(run.map_shape)


@st.cache_data(max_entries=16, show_spinner="Encoding patches…")
def codes(path: str, stamp: float, data_path: str | None = None,
          data_stamp: float = 0.0) -> np.ndarray:
    """Codes `(n ≤ ACTIVITY_SAMPLES, K)` of the run's model on the activity rule's samples of
    `data_path`'s run (default: its own), so two models can be compared on the same data: its
    first ACTIVITY_SAMPLES training patches, or for a model with several code rows per input
    (convolutional) rows spread over those of its first ACTIVITY_IMAGES images, exactly the rows
    its report measures (`sparsity.spread_first`)."""
    run = _run(path, stamp)
    data_run = run if data_path is None else _run(data_path, data_stamp)
    per = run.model.rows_per_sample
    x = data_run.dataset().x[:activity_inputs(per)].float()
    with torch.no_grad():
        z = run.model.encode(x.reshape(x.shape[0], -1))
    z = z.reshape(z.shape[0], -1).cpu()
    return activity_samples(spread_first(z, per))


@st.cache_data(max_entries=16, show_spinner=False)
def pool_matrix(path: str, stamp: float) -> np.ndarray | None:
    P = _run(path, stamp).model.pools()
    return None if P is None else P.detach().cpu().numpy()


@st.cache_data(max_entries=32, show_spinner="Analysing the run…")
def summary(path: str, stamp: float) -> dict[str, Any]:
    """The run's full analysis (`analyze_model`): sparsity, reconstruction, map measures."""
    # analyze_run's on-disk cache is keyed by the run's step count, so it serves user runs too.
    return analyze_run(_run(path, stamp))


@st.cache_data(max_entries=16, show_spinner=False)
def metrics_history(path: str, stamp: float) -> list[dict[str, Any]]:
    return _run(path, stamp).metrics()


@st.cache_data(max_entries=8, show_spinner="Loading training snapshots…")
def _snapshot_file(path: str, stamp: float) -> tuple[np.ndarray, np.ndarray, str, str | None]:
    """The run's snapshots read once: `(steps, filters, kind, None)`, or empty arrays and the
    reason when the file is damaged (that costs the replay only)."""
    run = _run(path, stamp)
    try:
        return (*run.snapshots(), None)
    except RunError as exc:
        kind = run.model.default_filter_kind()
        f = run.filters(kind)
        return np.zeros(0, np.int64), np.zeros((0, *f.shape), np.float32), kind, str(exc)


def snapshots(path: str, stamp: float) -> tuple[np.ndarray, np.ndarray, str]:
    """`(steps (S,), filters (S, N, C, h, w), kind)` recorded during training; none when the
    snapshots file is damaged (`snapshots_problem` says why)."""
    return _snapshot_file(path, stamp)[:3]


def snapshots_problem(path: str, stamp: float) -> str | None:
    """Why the run's replay is unavailable (a damaged snapshots file), or None."""
    return _snapshot_file(path, stamp)[3]


@st.cache_data(max_entries=64, show_spinner=False)
def random_field_control(shape: tuple[int, int], spacing: float, smooth: float,
                         n: int = 10) -> tuple[float, float]:
    """Mean and s.d. of the pinwheel density of `n` Gaussian random orientation maps with this
    column spacing, on a map of this size, counted the same way (π in expectation)."""
    from sparse_models.bench_pinwheels import random_field_density

    if not (math.isfinite(spacing) and spacing > 0):
        return math.nan, math.nan
    return random_field_density(tuple(shape), float(spacing), n=n, smooth_sigma=float(smooth))


@st.cache_data(max_entries=64, show_spinner=False)
def size_curve(path: str, stamp: float, smooth: float, weighted: bool = True,
               snapshot: int | None = None) -> list[tuple[int, float, float, int]]:
    """Pinwheel density on windows of growing side (`density_by_size`), with the map's Λ."""
    o = orientation(path, stamp, snapshot)
    sel = o["selectivity"] if weighted else None
    return density_by_size(o["theta"], o["spacing"], smooth_sigma=smooth, selectivity=sel)


# What may differ between runs of the same experiment: the seeds, and training settings that only
# change what is recorded or where it runs, not what is learned.
SEED_KEYS = (("model_config", "seed"), ("data", "seed"), ("train", "seed"),
             ("train", "snapshot_every"), ("train", "log_every"), ("train", "eval_every"),
             ("train", "threads"), ("train", "device"))


def _without_seeds(config: dict[str, Any]) -> dict[str, Any]:
    c = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()
         if k not in ("command", "parent")}
    for section, key in SEED_KEYS:
        if isinstance(c.get(section), dict):
            c[section].pop(key, None)
    return c


def seed_siblings(ref: RunRef) -> list[RunRef]:
    """Finished runs (this one first) with exactly this run's settings but for their seeds:
    the same experiment repeated, for a spread over seeds."""
    from sparse_models.training.runs.format import read_run_config

    from .runs import all_runs, run_stamp

    me = _without_seeds(ref.load().config.to_dict())
    out = [ref]
    for info in all_runs():
        if info.path == ref.info.path or info.state != "completed" or info.model != ref.info.model:
            continue
        try:
            other = _without_seeds(read_run_config(info.path).to_dict())
        except Exception:  # a damaged folder is simply not a sibling
            continue
        if other == me:
            out.append(RunRef(str(info.path), run_stamp(info.path), info))
    return out


@st.cache_data(max_entries=16, show_spinner=False)
def retinotopy_of(path: str, stamp: float) -> dict[str, Any]:
    """A sheet's receptive-field centres and retinotopy numbers (`analysis.retinotopy`)."""
    run = _run(path, stamp)
    return retinotopy(run.filters()[:, 0], run.layout, run.map_shape)
