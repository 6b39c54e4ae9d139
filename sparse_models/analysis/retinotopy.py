"""Retinotopy of a sheet: where each unit looks in the image, against where it sits on the map.

A sheet's unit i has an r×r receptive field whose top-left corner is at image pixel
(row, col) = stride · position(i) (`Layout.unit_positions`). Its receptive-field centre is that
corner plus the centre of energy of its filter f (the energy-weighted mean pixel of f², as in
`localisation`), so a unit whose filter is a blob in the corner of its field looks at that corner.

The map is retinotopic when the centres move steadily across the image as one walks across the
map: a least-squares line per axis, centre ≈ slope · map coordinate + offset, gives the slope
(image pixels per map unit; stride / block side when the filters are centred), how much of the
centres' spread the map explains (R²), and the scatter of centres about the line (RMS pixels),
which in the visual cortex is about a receptive field's size within one hypercolumn.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .orientation import as_numpy


def energy_centres(filters: np.ndarray) -> np.ndarray:
    """(N, 2) centre of energy (row, col) of each filter (N, h, w) or (N, C, h, w), in pixels of
    the filter; the filter's middle for an all-zero one."""
    f = as_numpy(filters)
    energy = (f**2).sum(axis=1) if f.ndim == 4 else f**2
    if energy.ndim != 3:
        raise ValueError(f"filters must have shape (N, h, w) or (N, C, h, w), got {f.shape}")
    n, h, w = energy.shape
    total = energy.reshape(n, -1).sum(axis=1)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    safe = np.where(total > 0, total, 1.0)
    cy = np.where(total > 0, (energy * ys).sum(axis=(1, 2)) / safe, (h - 1) / 2)
    cx = np.where(total > 0, (energy * xs).sum(axis=(1, 2)) / safe, (w - 1) / 2)
    return np.stack([cy, cx], axis=1)


def rf_centres(filters: np.ndarray, positions: np.ndarray, stride_px: int) -> np.ndarray:
    """(N, 2) receptive-field centres in image pixels: each unit's field corner
    (stride · position) plus its filter's centre of energy."""
    pos = np.asarray(positions, dtype=np.float64)
    return pos * float(stride_px) + energy_centres(filters)


def _fit(coord: np.ndarray, centre: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Least-squares centre ≈ slope · coord + offset: (slope, R², residuals)."""
    A = np.stack([coord, np.ones_like(coord)], axis=1)
    (slope, offset), *_ = np.linalg.lstsq(A, centre, rcond=None)
    resid = centre - (slope * coord + offset)
    var = float(centre.var())
    r2 = 1.0 - float(resid.var()) / var if var > 0 else float("nan")
    return float(slope), r2, resid


def retinotopy(filters: np.ndarray, layout: Any, map_shape: tuple[int, int]) -> dict[str, Any]:
    """Receptive-field centres of a sheet's units against their place on the (rows, cols) map.

    filters: (N, h, w) in unit-map order (row-major); layout: a sheet `Layout` with `stride_px`.
    Returns `centres` (N, 2) in image pixels, and per axis the slope (pixels per map unit), R²
    and the RMS scatter of the centres about the fitted line (pixels)."""
    rows, cols = (int(v) for v in map_shape)
    f = as_numpy(filters)
    if f.shape[0] != rows * cols:
        raise ValueError(f"{f.shape[0]} filters do not fill the {rows}×{cols} map")
    centres = rf_centres(f, layout.unit_positions(), layout.stride_px)
    mr, mc = np.divmod(np.arange(rows * cols), cols)
    slope_r, r2_r, res_r = _fit(mr.astype(np.float64), centres[:, 0])
    slope_c, r2_c, res_c = _fit(mc.astype(np.float64), centres[:, 1])
    scatter = float(np.sqrt(np.mean(res_r**2 + res_c**2)))
    return {"centres": centres, "slope_rows": slope_r, "slope_cols": slope_c,
            "r2_rows": r2_r, "r2_cols": r2_c, "scatter_px": scatter}


def retinotopy_summary(filters: np.ndarray, layout: Any, map_shape: tuple[int, int]) -> dict[str, float]:
    """The report's numbers: mean slope (px per map unit), mean R², scatter (px)."""
    r = retinotopy(filters, layout, map_shape)
    return {"retinotopy_px_per_unit": (r["slope_rows"] + r["slope_cols"]) / 2,
            "retinotopy_r2": (r["r2_rows"] + r["r2_cols"]) / 2,
            "rf_scatter_px": r["scatter_px"]}
