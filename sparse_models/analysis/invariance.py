"""Invariance, measured: how much a unit's response changes as its best grating's phase shifts,
as an image translates a few pixels, and as the grating turns a little.

A unit is anything `respond` gives a column for: `respond(images: (N, 1, H, W)) -> (N, U)`, the
U units' responses at the centre of the images (e.g. a conv model's maps at the centre
position, or its L2-pooled units there: `conv_responders`). For each unit:

- its best grating: the orientation and frequency (cycles/px) whose response, averaged over
  phase, is largest (`best_gratings`);
- its phase curve: the response to that grating as its phase runs over a period;
- its translation curves: the response to natural images shifted by up to `max_shift` px;
- its rotation curve: the response to its best grating turned by small angles.

The modulation of a curve r is (max r − min r)/(max r + min r): 0 for a constant response, 1
when it falls to zero somewhere (a half-wave rectified simple cell over phase). Hubel & Wiesel's
complex cells, and an energy model of a quadrature pair, keep their response over phase: their
modulation is near 0. The invariance ratio of pooled over unpooled units is the mean
modulation of live pooled units over that of live unpooled units (below 1: pooling made the
response more invariant).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

Respond = Callable[[torch.Tensor], torch.Tensor]

FREQS = (0.04, 0.06, 0.08, 0.11, 0.14, 0.18, 0.23, 0.3, 0.38)  # cycles per pixel
N_ORIENT = 12
N_PHASE = 16
ANGLES = (-20.0, -15.0, -10.0, -5.0, 0.0, 5.0, 10.0, 15.0, 20.0)  # degrees, for rotation
LIVE = 1e-3  # a unit whose best mean response is below LIVE × the largest is not live
BATCH = 512


def grating(size: int, theta: float, freq: float, phase: float) -> np.ndarray:
    """cos(2π·freq·(x cos θ + y sin θ) + phase) on a size×size grid centred on its middle
    pixel ((size−1)/2); θ in radians (stripes' normal, counter-clockwise from horizontal, y up)."""
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    x, y = xx - c, c - yy
    return np.cos(2 * np.pi * freq * (x * np.cos(theta) + y * np.sin(theta)) + phase)


def modulation(curves: np.ndarray) -> np.ndarray:
    """(max − min)/(max + min) along the last axis; 0 where the response is 0 throughout."""
    r = np.maximum(np.asarray(curves, dtype=np.float64), 0.0)
    hi, lo = r.max(-1), r.min(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hi + lo > 0, (hi - lo) / (hi + lo), 0.0)


def _respond_all(respond: Respond, images: np.ndarray) -> np.ndarray:
    """respond over (N, H, W) images in batches -> (N, U) float64."""
    out = []
    with torch.no_grad():
        for s in range(0, images.shape[0], BATCH):
            x = torch.as_tensor(images[s:s + BATCH], dtype=torch.float32).unsqueeze(1)
            out.append(respond(x).double().cpu().numpy())
    return np.concatenate(out)


@dataclass
class Invariance:
    """One sweep's result. curves: (U, n) responses over `xs` (n,); modulation: (U,);
    live: (U,) bool, the units that respond at all; best_theta (rad), best_freq (c/px): (U,)."""

    xs: np.ndarray
    curves: np.ndarray
    modulation: np.ndarray
    live: np.ndarray
    best_theta: np.ndarray
    best_freq: np.ndarray
    amplitude: np.ndarray | None = None  # (U,) what `live` was judged on

    @property
    def mean_modulation(self) -> float:
        """Mean modulation of the live units (NaN when none is live)."""
        m = self.modulation[self.live]
        return float(m.mean()) if m.size else float("nan")

    def units(self, part: slice) -> Invariance:
        """The sweep of units `part` alone, as if they had been swept by themselves: liveness is
        judged against the largest amplitude among them."""
        amp = self.amplitude[part]
        return Invariance(self.xs, self.curves[part], self.modulation[part], _live(amp),
                          self.best_theta[part], self.best_freq[part], amp)


def best_gratings(respond: Respond, size: int, freqs: tuple[float, ...] = FREQS,
                  n_orient: int = N_ORIENT, n_phase: int = 8
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each unit's best orientation (rad), frequency (c/px) and its phase-averaged response
    there, over a grid of gratings: three (U,) arrays."""
    thetas = np.arange(n_orient) * np.pi / n_orient
    phases = np.arange(n_phase) * 2 * np.pi / n_phase
    stims = np.stack([grating(size, t, f, p) for t in thetas for f in freqs for p in phases])
    r = _respond_all(respond, stims).reshape(n_orient, len(freqs), n_phase, -1).mean(2)
    flat = r.reshape(-1, r.shape[-1])  # (orient·freq, U)
    best = flat.argmax(0)
    return thetas[best // len(freqs)], np.asarray(freqs)[best % len(freqs)], flat.max(0)


def _live(amplitude: np.ndarray) -> np.ndarray:
    top = float(amplitude.max()) if amplitude.size else 0.0
    return amplitude > LIVE * top if top > 0 else np.zeros(amplitude.shape, bool)


Best = tuple[np.ndarray, np.ndarray, np.ndarray]


def phase_invariance(respond: Respond, size: int, n_phase: int = N_PHASE,
                     freqs: tuple[float, ...] = FREQS, n_orient: int = N_ORIENT,
                     best: Best | None = None) -> Invariance:
    """Each unit's response to its best grating as the phase runs over one period (`best`:
    `best_gratings`' answer for these freqs and orientations, when already known)."""
    theta, freq, amp = best or best_gratings(respond, size, freqs, n_orient)
    phases = np.arange(n_phase) * 2 * np.pi / n_phase
    groups = _by_grating(theta, freq)
    stims = np.stack([grating(size, t, f, p) for t, f in groups for p in phases])
    r = _respond_all(respond, stims).reshape(len(groups), n_phase, -1)  # every group at once
    curves = np.empty((theta.shape[0], n_phase))
    for g, units in enumerate(groups.values()):
        curves[units] = r[g][:, units].T
    return Invariance(phases, curves, modulation(curves), _live(amp), theta, freq, amp)


def rotation_invariance(respond: Respond, size: int, angles: tuple[float, ...] = ANGLES,
                        n_phase: int = 8, freqs: tuple[float, ...] = FREQS,
                        n_orient: int = N_ORIENT, best: Best | None = None) -> Invariance:
    """Each unit's phase-averaged response to its best grating turned by `angles` (degrees)
    (`best`: as for `phase_invariance`)."""
    theta, freq, amp = best or best_gratings(respond, size, freqs, n_orient)
    phases = np.arange(n_phase) * 2 * np.pi / n_phase
    d = np.deg2rad(np.asarray(angles, dtype=np.float64))
    groups = _by_grating(theta, freq)
    stims = np.stack([grating(size, t + a, f, p) for t, f in groups for a in d for p in phases])
    r = _respond_all(respond, stims).reshape(len(groups), d.size, n_phase, -1).mean(2)
    curves = np.empty((theta.shape[0], d.size))
    for g, units in enumerate(groups.values()):
        curves[units] = r[g][:, units].T
    return Invariance(np.asarray(angles, dtype=np.float64), curves, modulation(curves),
                      _live(amp), theta, freq, amp)


def translation_invariance(respond: Respond, images: np.ndarray, size: int,
                           max_shift: int = 2, top: float = 0.25) -> Invariance:
    """Each unit's response as a size×size window of each image (N, H', W') moves by every
    (dy, dx) with |dy|, |dx| ≤ max_shift. A unit's curve (over the (2m+1)² shifts, xs their
    index, (dy, dx) row-major from (−m, −m))
    and modulation are averaged over the `top` share of images that drive it most (averaged
    over shifts). best_theta/best_freq are NaN: no grating is involved."""
    images = np.asarray(images, dtype=np.float64)
    m = int(max_shift)
    n, h, w = images.shape
    if h < size + 2 * m or w < size + 2 * m:
        raise ValueError(f"images of {h}×{w} px are too small for {size}×{size} windows "
                         f"shifted by up to {m} px")
    r0, c0 = (h - size) // 2 - m, (w - size) // 2 - m
    shifts = [(dy, dx) for dy in range(2 * m + 1) for dx in range(2 * m + 1)]
    windows = np.stack([images[:, r0 + dy:r0 + dy + size, c0 + dx:c0 + dx + size]
                        for dy, dx in shifts], axis=1)  # (N, S, size, size)
    r = _respond_all(respond, windows.reshape(-1, size, size)).reshape(n, len(shifts), -1)
    r = r.transpose(2, 0, 1)  # (U, N, S)
    drive = r.mean(2)  # (U, N)
    k = max(1, int(round(top * n)))
    best = np.argsort(-drive, axis=1)[:, :k]  # (U, k) the images that drive each unit most
    chosen = np.take_along_axis(r, best[:, :, None], axis=1)  # (U, k, S)
    mods = modulation(chosen).mean(1)
    amp = drive.max(1)
    nan = np.full(r.shape[0], np.nan)
    return Invariance(np.arange(len(shifts), dtype=np.float64), chosen.mean(1), mods,
                      _live(amp), nan, nan, amp)


def _by_grating(theta: np.ndarray, freq: np.ndarray) -> dict[tuple[float, float], np.ndarray]:
    """Units grouped by their best grating, so each grating's sweep is computed once."""
    groups: dict[tuple[float, float], list[int]] = {}
    for i, key in enumerate(zip(theta.tolist(), freq.tolist(), strict=True)):
        groups.setdefault(key, []).append(i)
    return {k: np.asarray(v) for k, v in groups.items()}


def invariance_ratio(pooled: Invariance, unpooled: Invariance) -> float:
    """Mean modulation of live pooled units over that of live unpooled units."""
    a, b = pooled.mean_modulation, unpooled.mean_modulation
    return a / b if np.isfinite(a) and np.isfinite(b) and b > 0 else float("nan")


# --- a conv model's units --------------------------------------------------------------------
def _centre(t: torch.Tensor) -> torch.Tensor:
    """Maps (N, U, h, w) at their centre position -> (N, U)."""
    return t[:, :, t.shape[2] // 2, t.shape[3] // 2]


def conv_responders(model: torch.nn.Module) -> tuple[Respond, Respond, int]:
    """(unpooled, pooled, size): a conv model's units at the centre of size×size images, its
    maps (N, K) and its L2 pools (N, K/pool_maps); size covers a centre pool's whole field
    (a stacked model's through layer 1 as well)."""
    c = model.config
    field = c.kernel + c.pool_size - 1  # pixels of this layer's input under one pool
    if c.stacked:
        _, k1, _, p1, s1 = c.layer1_arch
        field = (field - 1) * s1 + p1 + k1 - 1
    size = 2 * field + 1

    def unpooled(x: torch.Tensor) -> torch.Tensor:
        return _centre(model.feature_maps(x))

    def pooled(x: torch.Tensor) -> torch.Tensor:
        return _centre(model.pooled_maps(x))

    return unpooled, pooled, size


def conv_invariance(model: torch.nn.Module, images: np.ndarray | None = None,
                    max_shift: int = 2) -> dict[str, Invariance]:
    """Phase, rotation and (with natural `images` (N, H', W'), large enough for the windows
    and shifts) translation sweeps of a conv model's unpooled and pooled units: keys
    `phase_unpooled`, `phase_pooled`, `rotation_*`, `translation_*`."""
    _, _, size = conv_responders(model)
    # Both kinds of unit from one pass: a pooled unit's response is computed from the same
    # maps, so each stimulus goes through the model once. Every unit's sweep is its own (its
    # best grating, its curves), so sweeping them together changes no number; liveness is
    # then judged within each kind, as if swept apart (`Invariance.units`).
    def both(x: torch.Tensor) -> torch.Tensor:
        z = model.feature_maps(x)
        return torch.cat([_centre(z), _centre(model.pooled(z))], dim=1)

    n = model.config.maps  # unpooled units: one per map
    parts = {"unpooled": slice(0, n), "pooled": slice(n, None)}
    best = best_gratings(both, size)  # shared by the phase and rotation sweeps
    sweeps = {"phase": phase_invariance(both, size, best=best),
              "rotation": rotation_invariance(both, size, best=best)}
    if images is not None:
        sweeps["translation"] = translation_invariance(both, images, size, max_shift)
    return {f"{kind}_{name}": sweep.units(part)
            for name, part in parts.items() for kind, sweep in sweeps.items()}


def invariance_summary(sweeps: dict[str, Invariance]) -> dict[str, float | None]:
    """Report numbers from `conv_invariance`: each sweep's mean modulation (live units) and
    the pooled/unpooled ratio per kind; None where a sweep is missing."""
    out: dict[str, float | None] = {}
    for kind in ("phase", "translation", "rotation"):
        u, p = sweeps.get(f"{kind}_unpooled"), sweeps.get(f"{kind}_pooled")
        out[f"{kind}_modulation_unpooled"] = u.mean_modulation if u else None
        out[f"{kind}_modulation_pooled"] = p.mean_modulation if p else None
        out[f"{kind}_invariance_ratio"] = invariance_ratio(p, u) if u and p else None
    return out
