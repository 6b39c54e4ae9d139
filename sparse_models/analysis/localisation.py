"""How localised filters are: the width of each filter's energy envelope.

A Gabor-like edge detector has its energy in a small blob; a whole-patch grating spreads it over
the patch. For a filter f: (h, w), take its energy e = f² / Σf², its centre of energy c, and the
RMS distance of the energy from c:

    width(f) = sqrt(Σ_p e(p) ‖p − c‖²)      (pixels)

For a Gaussian envelope exp(−‖p‖²/2σ²) this is σ (the known answer the tests use); for energy
spread evenly over an L×L patch it is L/√6 ≈ 0.41·L. Multi-channel filters sum the energy of
their channels. The same quantity as the spatial spread used to compare sparse coding with ICA
filters (e.g. van Hateren & van der Schaaf 1998), without fitting a Gabor.
"""

from __future__ import annotations

import numpy as np

from .orientation import as_numpy


def envelope_width(filters: np.ndarray) -> np.ndarray:
    """RMS radius of each filter's energy around its centre, in pixels. filters: (N, h, w) or
    (N, C, h, w) -> (N,); NaN for an all-zero filter."""
    f = as_numpy(filters).astype(np.float64)
    if f.ndim == 4:
        energy = (f**2).sum(axis=1)
    elif f.ndim == 3:
        energy = f**2
    else:
        raise ValueError(f"filters must have shape (N, h, w) or (N, C, h, w), got {f.shape}")
    n, h, w = energy.shape
    total = energy.reshape(n, -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        e = energy / total[:, None, None]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    cy = (e * ys).sum(axis=(1, 2))
    cx = (e * xs).sum(axis=(1, 2))
    var = (e * ((ys - cy[:, None, None]) ** 2 + (xs - cx[:, None, None]) ** 2)).sum(axis=(1, 2))
    out = np.sqrt(np.maximum(var, 0.0))
    out[~(total > 0)] = np.nan
    return out


def localisation_summary(filters: np.ndarray) -> dict[str, float]:
    """Mean envelope width in pixels, and as a fraction of the filter's side (the larger one):
    about 0.41 for filters spread over the whole patch, small for localised ones."""
    f = as_numpy(filters)
    width = envelope_width(f)
    side = float(max(f.shape[-2:]))
    mean = float(np.nanmean(width)) if np.isfinite(width).any() else float("nan")
    return {"envelope_width_px": mean, "envelope_width_fraction": mean / side}
