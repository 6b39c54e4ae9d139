"""Preferred orientation and orientation selectivity of filters, from their Fourier energy.

For a filter f: (h, w) with zero-padded power spectrum P(k) (DC bin removed), the doubled-angle
mean of the wave-vector direction φ(k),

    m = Σ_k W(|k|) P(k) e^{2iφ(k)} / Σ_k W(|k|) P(k),

gives the preferred orientation θ = arg(−m)/2 mod π (the stripes are perpendicular to the wave
vector, hence the minus sign: a quarter turn is a half turn of the doubled angle) and the
selectivity |m| ∈ [0, 1] (1: all energy along one direction; 0: isotropic). This is the
"vector sum of the orientation tuning curve" of neuroscience, here from the filter's energy
(e.g. Kaschube et al., Science 2010; Swindale 1998).

Two choices keep the estimate unbiased on a square pixel grid (checked in the tests: within 2° of
the truth for Gabors of 8–16 px with at least one cycle across the patch):
- the filter's mean is *not* subtracted before padding (that would add the spectrum of the square
  support, which is anisotropic); only the DC bin is dropped;
- an isotropic radial taper W(|k|) = cos²(π|k|) for |k| < ½ cycle/px, 0 beyond, removes the
  corners of the square frequency domain and the aliased energy near Nyquist. A radial weight
  cannot bias the angle: it keeps each spectral lobe symmetric about its own axis.

Convention (as `sparse_models.data.synthetic.gabor`): θ is the stripe orientation, counter-clockwise
from the column (x) axis with y pointing *up* (towards row 0), in [0, π).
"""

from __future__ import annotations

import numpy as np
import torch

_CHUNK = 256  # filters per FFT batch, to bound memory on large sheets


def as_numpy(a: np.ndarray | torch.Tensor) -> np.ndarray:
    """A float64 numpy copy of an array or (detached, CPU) tensor."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def wrap_orientation(theta: np.ndarray) -> np.ndarray:
    """Angles mod π into [0, π) (np.mod can return π itself for tiny negative inputs)."""
    t = np.mod(theta, np.pi)
    return np.where(t >= np.pi, t - np.pi, t)


def _pad_size(h: int, w: int) -> int:
    return int(max(64, 4 * max(h, w)))


def _spectral_weights(pad: int) -> tuple[np.ndarray, np.ndarray]:
    """`(e^{2iφ}, W(|k|))`, both `(pad, pad)`, for an unshifted FFT grid; zero at DC."""
    fr = np.fft.fftfreq(pad)[:, None]  # cycles/px along rows (downwards)
    fc = np.fft.fftfreq(pad)[None, :]  # cycles/px along columns (rightwards)
    phi = np.arctan2(-fr, fc)  # wave-vector direction with y up
    e2 = np.exp(2j * phi)
    k = np.hypot(fr, fc)
    taper = np.where(k < 0.5, np.cos(np.pi * k) ** 2, 0.0)
    taper[0, 0] = 0.0
    return e2, taper


def preferred_orientation(
    filters: np.ndarray | torch.Tensor,
) -> tuple[np.ndarray, np.ndarray]:
    """Preferred stripe orientation and selectivity of each filter.

    filters: (N, h, w). Returns `(theta: (N,) in [0, π), selectivity: (N,) in [0, 1])`.
    A filter with no energy gets theta 0 and selectivity 0.
    """
    f = as_numpy(filters)
    if f.ndim != 3:
        raise ValueError(f"filters must have shape (N, h, w), got {tuple(f.shape)}")
    n, h, w = f.shape
    pad = _pad_size(h, w)
    e2, taper = _spectral_weights(pad)
    m = np.zeros(n, dtype=np.complex128)
    for s in range(0, n, _CHUNK):
        power = np.abs(np.fft.fft2(f[s:s + _CHUNK], s=(pad, pad))) ** 2 * taper
        total = power.sum(axis=(1, 2))
        num = (power * e2).sum(axis=(1, 2))
        m[s:s + _CHUNK] = np.where(total > 0, num / np.where(total > 0, total, 1.0), 0.0)
    theta = wrap_orientation(np.angle(-m) / 2.0)
    theta[m == 0] = 0.0
    selectivity = np.clip(np.abs(m), 0.0, 1.0)
    return theta, selectivity


def orientation_map(
    filters: np.ndarray | torch.Tensor, map_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Orientation and selectivity laid out on the unit map.

    filters: (N, h, w) with N = rows·cols, unit i at (i // cols, i % cols) (row-major).
    Returns `(theta_map, selectivity_map)`, each `(rows, cols)`.
    """
    rows, cols = (int(s) for s in map_shape)
    theta, sel = preferred_orientation(filters)
    if theta.size != rows * cols:
        raise ValueError(f"{theta.size} filters do not fill a {rows}×{cols} map")
    return theta.reshape(rows, cols), sel.reshape(rows, cols)
