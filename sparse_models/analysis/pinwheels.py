"""Pinwheels, column spacing and pinwheel density of an orientation map.

Following the practice of Kaschube et al. (Science 2010) and the theory of Wolf & Geisel
(Nature 1998), for a map θ: (rows, cols) of preferred orientations in [0, π):
- the complex field z = s·e^{2iθ} (s: selectivity, 1 when not given) is optionally smoothed with
  a Gaussian of width `smooth_sigma` map units (wrapping round a torus when periodic);
- pinwheels are the 2×2 plaquettes around which 2θ winds by ±2π (the sum of the four wrapped
  phase differences); each sits at its plaquette's centre (r + ½, c + ½) and carries charge ±½;
- the column spacing Λ is the wavelength of the peak ring of the power spectrum of e^{2iθ}
  (mean removed; a Hann window when the map is not periodic), refined to sub-bin precision by the
  power-weighted mean |k| over a band of ±30 % around the peak;
- the pinwheel density is the number of pinwheels per Λ². It is ≈ π in the visual cortex of cats,
  tree shrews, galagos and ferrets, and exactly π in expectation for a Gaussian random field with a
  narrow ring spectrum (the known answer the tests use).

Charge sign: +½ means θ turns by +π when walking once counter-clockwise round the centre as the map
is drawn (row 0 at the top, y pointing up, as in `sparse_models.data.synthetic`), e.g. θ = φ/2
with φ the polar angle round the point; −½ means θ turns the other way (θ = −φ/2).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

from .orientation import as_numpy

SPACING_BAND = 0.3  # relative half-width of the band around the spectral peak used to refine Λ


def _wrap(a: np.ndarray) -> np.ndarray:
    """Angles wrapped into [−π, π)."""
    return (a + np.pi) % (2 * np.pi) - np.pi


def _field(
    theta_map: np.ndarray, selectivity: np.ndarray | None, smooth_sigma: float, periodic: bool
) -> np.ndarray:
    """z = s·e^{2iθ}, smoothed when `smooth_sigma` > 0. (rows, cols) complex."""
    z = np.exp(2j * theta_map)
    if selectivity is not None:
        z = z * as_numpy(selectivity)
    if smooth_sigma > 0:
        mode = "wrap" if periodic else "nearest"
        z = (gaussian_filter(z.real, smooth_sigma, mode=mode)
             + 1j * gaussian_filter(z.imag, smooth_sigma, mode=mode))
    return z


def winding_numbers(phase: np.ndarray, periodic: bool = False) -> np.ndarray:
    """Winding of a phase field round each 2×2 plaquette, in turns (−1, 0 or +1).

    phase: (rows, cols). The walk (r, c) → (r+1, c) → (r+1, c+1) → (r, c+1) → (r, c) is
    counter-clockwise as drawn with row 0 at the top. Returns (rows−1, cols−1), or (rows, cols)
    when periodic (plaquettes that wrap round the edges included).
    """
    if periodic:
        a = phase
        b = np.roll(phase, -1, axis=0)
        c = np.roll(b, -1, axis=1)
        d = np.roll(phase, -1, axis=1)
    else:
        a, b, c, d = phase[:-1, :-1], phase[1:, :-1], phase[1:, 1:], phase[:-1, 1:]
    total = _wrap(b - a) + _wrap(c - b) + _wrap(d - c) + _wrap(a - d)
    return np.rint(total / (2 * np.pi)).astype(np.int64)


def find_pinwheels(
    theta_map: np.ndarray,
    periodic: bool = False,
    smooth_sigma: float = 0.0,
    selectivity: np.ndarray | None = None,
) -> list[tuple[float, float, float]]:
    """Pinwheel centres `[(row, col, charge)]`, charge ±0.5 (sign convention: module docstring).

    theta_map: (rows, cols) orientations in radians (any representative mod π);
    selectivity: optional (rows, cols) weights s of z = s·e^{2iθ} (matter only when smoothing).
    Positions are plaquette centres (r + 0.5, c + 0.5); on a torus the plaquettes across the
    seam give positions rows − 0.5 or cols − 0.5.
    """
    theta = as_numpy(theta_map)
    if theta.ndim != 2 or min(theta.shape) < 2:
        raise ValueError(f"theta_map must be a 2-D map at least 2×2, got {theta.shape}")
    z = _field(theta, selectivity, smooth_sigma, periodic)
    w = winding_numbers(np.angle(z), periodic)
    rr, cc = np.nonzero(w)
    return [(float(r) + 0.5, float(c) + 0.5, 0.5 * float(w[r, c])) for r, c in zip(rr, cc, strict=True)]


def power_spectrum(
    theta_map: np.ndarray, periodic: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power spectrum of e^{2iθ} (mean removed; separable Hann window unless periodic).

    Returns `(spectrum: (rows, cols), radial_k: (n_bins,), radial_power: (n_bins,))`: the 2-D
    spectrum fft-shifted (zero frequency at (rows//2, cols//2); axes `fftshift(fftfreq(n))`),
    and its average over rings of width 1/max(rows, cols), with `radial_k` the ring centres in
    cycles per map unit, from 0 up to 0.5.
    """
    spec, _, bins, dk = _spectrum(as_numpy(theta_map), periodic)
    radial = _radial_mean(spec, bins, dk)
    return np.fft.fftshift(spec), np.arange(radial.size) * dk, radial


def _radial_mean(spec: np.ndarray, bins: np.ndarray, dk: float) -> np.ndarray:
    """Mean power per ring, rings 0 .. 0.5/dk."""
    n_bins = int(math.floor(0.5 / dk)) + 1
    inside = bins < n_bins
    sums = np.bincount(bins[inside], spec[inside], minlength=n_bins)
    counts = np.bincount(bins[inside], minlength=n_bins)
    return sums / np.maximum(counts, 1)


def _spectrum(theta: np.ndarray, periodic: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Unshifted power `(rows, cols)`, |k| per bin in cycles/unit, ring index per bin, ring width."""
    if theta.ndim != 2 or min(theta.shape) < 2:
        raise ValueError(f"theta_map must be a 2-D map at least 2×2, got {theta.shape}")
    rows, cols = theta.shape
    z = np.exp(2j * theta)
    z = z - z.mean()
    if not periodic:
        z = z * np.outer(np.hanning(rows), np.hanning(cols))
    spec = np.abs(np.fft.fft2(z)) ** 2
    k = np.hypot(np.fft.fftfreq(rows)[:, None], np.fft.fftfreq(cols)[None, :])
    dk = 1.0 / max(rows, cols)
    return spec, k, np.rint(k / dk).astype(np.int64), dk


def column_spacing(theta_map: np.ndarray, periodic: bool = False) -> float:
    """Column spacing Λ in map units (NaN when e^{2iθ} has no power, e.g. a constant map).

    The peak ring of the radially averaged spectrum of e^{2iθ} (`power_spectrum`), refined to the
    power-weighted mean |k| of all frequencies within ±`SPACING_BAND` of the peak; Λ = 1/⟨|k|⟩.
    """
    theta = as_numpy(theta_map)
    if 1.0 - abs(np.exp(2j * theta).mean()) ** 2 < 1e-10:  # all orientations (nearly) equal
        return math.nan
    spec, k, bins, dk = _spectrum(theta, periodic)
    radial = _radial_mean(spec, bins, dk)
    k_peak = (1 + int(np.argmax(radial[1:]))) * dk
    band = (k > k_peak * (1 - SPACING_BAND)) & (k < k_peak * (1 + SPACING_BAND))
    power = float(spec[band].sum())
    if power <= 0:  # e.g. a tiny map whose peak ring holds no power: no spacing to measure
        return math.nan
    return 1.0 / float((spec[band] * k[band]).sum() / power)


def _area(shape: tuple[int, int], periodic: bool) -> float:
    """Area the plaquettes tile, in map units²."""
    rows, cols = shape
    return float(rows * cols if periodic else (rows - 1) * (cols - 1))


def block_centre_share(
    pinwheels: list[tuple[float, float, float]],
    block: tuple[int, int],
    map_shape: tuple[int, int],
    radius: float = 1.0,
) -> tuple[float, float]:
    """For a map made of (a, b) blocks (a sheet's units, one block per position): the share of
    `pinwheels` (row, col, charge at plaquette centres, as `find_pinwheels` gives them) that lie
    within `radius` map units of a block's centre along both axes, and the share of all the
    map's plaquette centres that do (what pinwheels at random places would give). A share well
    above its chance says the pinwheels sit where the positions are: each position's units wind
    round its centre. (nan, chance) when there are no pinwheels."""
    a, b = (int(v) for v in block)
    rows, cols = (int(v) for v in map_shape)

    def near(v: np.ndarray, n: int) -> np.ndarray:
        u = (np.asarray(v, dtype=float) - (n - 1) / 2.0) % n  # from the block's centre
        return np.minimum(u, n - u) <= radius + 1e-9

    rr, cc = np.meshgrid(np.arange(rows - 1) + 0.5, np.arange(cols - 1) + 0.5, indexing="ij")
    chance = float((near(rr, a) & near(cc, b)).mean()) if rr.size else math.nan
    if not pinwheels:
        return math.nan, chance
    pr = np.array([p[0] for p in pinwheels])
    pc = np.array([p[1] for p in pinwheels])
    return float((near(pr, a) & near(pc, b)).mean()), chance


def pinwheel_density(
    theta_map: np.ndarray,
    periodic: bool = False,
    smooth_sigma: float = 0.0,
    selectivity: np.ndarray | None = None,
    spacing: float | None = None,
) -> float:
    """Pinwheels per Λ²: count / (area / Λ²). NaN when Λ is undefined.

    Λ is `column_spacing` of the unsmoothed map unless `spacing` is given; the area is
    rows·cols on a torus, (rows−1)(cols−1) otherwise (the area the plaquettes cover).
    """
    theta = as_numpy(theta_map)
    lam = column_spacing(theta, periodic) if spacing is None else float(spacing)
    if not math.isfinite(lam) or lam <= 0:
        return math.nan
    n = len(find_pinwheels(theta, periodic, smooth_sigma, selectivity))
    return n * lam**2 / _area(theta.shape, periodic)


def shuffled_density(
    theta_map: np.ndarray,
    n: int = 10,
    seed: int = 0,
    periodic: bool = False,
    smooth_sigma: float = 0.0,
    selectivity: np.ndarray | None = None,
    spacing: float | None = None,
) -> float:
    """Mean pinwheel density of `n` maps whose units were randomly permuted across positions.

    The baseline for ≈ π: the same orientations (and selectivities, permuted alongside) without
    the map's continuity. A shuffled map has a flat spectrum, so its own Λ is meaningless; the
    density is counted per Λ² of the *original* map (or `spacing` when given).
    """
    theta = as_numpy(theta_map)
    lam = column_spacing(theta, periodic) if spacing is None else float(spacing)
    if not math.isfinite(lam) or lam <= 0:
        return math.nan
    sel = None if selectivity is None else as_numpy(selectivity).ravel()
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        perm = rng.permutation(theta.size)
        t = theta.ravel()[perm].reshape(theta.shape)
        s = None if sel is None else sel[perm].reshape(theta.shape)
        out.append(pinwheel_density(t, periodic, smooth_sigma, s, spacing=lam))
    return float(np.mean(out))


def density_by_size(
    theta_map: np.ndarray,
    spacing: float,
    sizes: list[int] | None = None,
    smooth_sigma: float = 0.0,
    selectivity: np.ndarray | None = None,
) -> list[tuple[int, float, float, int]]:
    """Pinwheel density per Λ² measured on square windows of the map, by window side:
    `[(side, mean density, s.d. over windows, windows)]`.

    The map's pinwheels are found once (on the whole map, not periodic); a side-s window holds
    the pinwheels whose centres fall inside it, over an area of s² map units, with the whole
    map's Λ = `spacing`. Windows tile the map without overlap. A small window holds a handful of
    pinwheels, so its density scatters widely; the curve settles as the window grows: how large a
    map has to be before its density means something. `sizes` default: from 2Λ to the map's
    shorter side in 8 steps.
    """
    theta = as_numpy(theta_map)
    rows, cols = theta.shape
    if not (math.isfinite(spacing) and spacing > 0):
        return []
    if sizes is None:
        lo, hi = int(math.ceil(2 * spacing)), min(rows, cols) - 1
        sizes = sorted({int(v) for v in np.linspace(lo, hi, 8)}) if hi >= lo else [hi]
    found = np.array([(r, c) for r, c, _ in find_pinwheels(theta, False, smooth_sigma,
                                                            selectivity)]).reshape(-1, 2)
    out = []
    for s in sizes:
        if s < 2 or s > min(rows, cols) - 1:
            continue
        vals = []
        for r0 in range(0, rows - s, s):
            for c0 in range(0, cols - s, s):
                inside = ((found[:, 0] >= r0) & (found[:, 0] < r0 + s)
                          & (found[:, 1] >= c0) & (found[:, 1] < c0 + s))
                vals.append(inside.sum() * spacing**2 / s**2)
        out.append((int(s), float(np.mean(vals)), float(np.std(vals)), len(vals)))
    return out
