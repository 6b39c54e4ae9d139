"""Synthetic data with known answers: Gabor filters, grating patches, random orientation maps.

Orientation convention (shared with `sparse_models.analysis.orientation`): `theta` is the
orientation of the *stripes* (the bar/edge orientation, as in neuroscience), in radians in
[0, π), measured counter-clockwise from the image x axis (the column axis, pointing right) with
y pointing *up* (towards decreasing row index), i.e. as the image looks when drawn with row 0 at
the top. theta = 0: horizontal stripes; theta = π/4: stripes running from bottom-left to top-right;
theta = π/2: vertical stripes. The wave vector is perpendicular to the stripes.

`random_orientation_map` draws a Gaussian random field with a narrow ring spectrum on a torus,
`z(x) = Σ_k a_k e^{i k·x}` with |k| ≈ 2π/Λ and complex Gaussian `a_k`, and returns
`θ = arg(z)/2 mod π`. For such a field the expected pinwheel density is exactly π per Λ²
(Wolf & Geisel, Nature 1998; Kaschube et al., Science 2010): the density is ⟨k²⟩/(4π), and with
Λ = 2π/⟨k⟩ that is π⟨k²⟩/⟨k⟩² → π for a narrow ring.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..config import setting
from .base import Dataset, PatchesConfig, PatchSource, register_source

# Ranges of the random patches of `grating_patches`.
GRATING_FREQ_RANGE = (0.08, 0.3)  # cycles per pixel, drawn log-uniformly
GRATING_FRACTION = 0.3  # fraction of patches that are full-field gratings (no envelope)
GRATING_NOISE = 0.05  # std of the white noise added, relative to a unit-amplitude pattern


def default_sigma(size: int, freq: float) -> float:
    """Envelope width used when none is given: about one cycle across ±σ, capped at size/4."""
    return float(min(0.5 / freq, size / 4.0))


def _gabor_stack(
    size: int,
    theta: np.ndarray,
    freq: np.ndarray,
    phase: np.ndarray,
    sigma: np.ndarray,
    center_r: np.ndarray,
    center_c: np.ndarray,
) -> np.ndarray:
    """Gabors `(n, size, size)` from parameter vectors `(n,)`; sigma = inf gives a grating."""
    rows = np.arange(size, dtype=np.float64)
    x = rows[None, None, :] - center_c[:, None, None]  # (n, 1, size): x to the right
    y = center_r[:, None, None] - rows[None, :, None]  # (n, size, 1): y up
    t = theta[:, None, None]
    u = -x * np.sin(t) + y * np.cos(t)  # coordinate along the wave vector, ⟂ to the stripes
    carrier = np.cos(2 * np.pi * freq[:, None, None] * u + phase[:, None, None])
    with np.errstate(divide="ignore"):
        inv = np.where(np.isfinite(sigma), 1.0 / (2.0 * sigma**2), 0.0)[:, None, None]
    return np.exp(-(x**2 + y**2) * inv) * carrier


def gabor(
    size: int,
    theta: float,
    freq: float = 0.2,
    phase: float = 0.0,
    sigma: float | None = None,
    center: tuple[float | None, float | None] = (None, None),
) -> np.ndarray:
    """A Gabor filter `(size, size)`, peak amplitude 1.

    `theta`: stripe orientation (module docstring convention); `freq`: cycles per pixel (keep it
    below ~0.35: beyond, the envelope's spectrum reaches Nyquist and aliases);
    `phase`: carrier phase at the centre (0 = even/cosine, π/2 = odd); `sigma`: Gaussian envelope
    width in pixels (default `default_sigma`; `math.inf` gives a plain grating); `center`:
    (row, col) of the envelope, default the patch centre `(size-1)/2`.
    """
    if sigma is None:
        sigma = default_sigma(size, freq)
    mid = (size - 1) / 2.0
    cr = mid if center[0] is None else float(center[0])
    cc = mid if center[1] is None else float(center[1])
    one = lambda v: np.array([float(v)])  # noqa: E731
    return _gabor_stack(size, one(theta), one(freq), one(phase), one(sigma), one(cr), one(cc))[0]


def gabor_bank(
    n: int,
    size: int,
    seed: int | np.random.Generator = 0,
    freq_range: tuple[float, float] = (0.1, 0.3),
    sigma: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`n` centred Gabors with uniform random orientation, phase and frequency.

    Returns `(filters: (n, size, size), thetas: (n,))`, thetas in [0, π).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    thetas = rng.uniform(0, np.pi, n)
    freqs = rng.uniform(*freq_range, n)
    phases = rng.uniform(0, 2 * np.pi, n)
    sig = np.array([default_sigma(size, f) if sigma is None else sigma for f in freqs])
    mid = np.full(n, (size - 1) / 2.0)
    return _gabor_stack(size, thetas, freqs, phases, sig, mid, mid), thetas


@dataclass(frozen=True)
class GratingsConfig(PatchesConfig):
    source: ClassVar[str] = "gratings"
    contrast_normalize: bool = setting(False, label="Contrast normalisation",
                                       help="Divide each patch by its own std.")


@register_source
class GratingPatches(PatchSource):
    name = "gratings"
    Config = GratingsConfig
    description = "synthetic oriented gratings and Gabor patches (known answers)"

    @classmethod
    def draw(cls, cfg: GratingsConfig) -> Dataset:
        return grating_patches(cfg)


def grating_patches(cfg: GratingsConfig) -> Dataset:
    """`cfg.n_patches` random Gabor patches and gratings of `cfg.patch_size`², plus a little noise.

    Each patch has a uniform random orientation and phase and a log-uniform frequency in
    `GRATING_FREQ_RANGE`; a fraction `GRATING_FRACTION` are full-field gratings, the rest Gabors
    with a random centre and width. Patches are mean-removed (optionally divided by their own std
    when `cfg.contrast_normalize`) and scaled to unit average pixel variance. Whitening is not
    applied: the patterns are already band-limited. Seeded by `cfg.seed`.
    """
    rng = np.random.default_rng(cfg.seed)
    n, p = cfg.n_patches, cfg.patch_size
    theta = rng.uniform(0, np.pi, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    lo, hi = GRATING_FREQ_RANGE
    freq = np.exp(rng.uniform(math.log(lo), math.log(hi), n))
    sigma = rng.uniform(p / 6.0, p / 2.5, n)
    sigma[rng.random(n) < GRATING_FRACTION] = np.inf
    center_r = rng.uniform(0, p - 1, n)
    center_c = rng.uniform(0, p - 1, n)
    x = np.empty((n, p * p), dtype=np.float64)
    for s in range(0, n, 4096):  # chunks keep the float64 temporaries small
        e = min(n, s + 4096)
        g = _gabor_stack(p, theta[s:e], freq[s:e], phase[s:e], sigma[s:e], center_r[s:e],
                         center_c[s:e])
        x[s:e] = g.reshape(e - s, -1)
    x += GRATING_NOISE * rng.standard_normal(x.shape)
    x -= x.mean(axis=1, keepdims=True)
    if cfg.contrast_normalize:
        x /= x.std(axis=1, keepdims=True) + 1e-8
    scale = 1.0 / math.sqrt(float((x**2).mean()))
    x *= scale
    info = {
        "source": "gratings",
        "freq_range": list(GRATING_FREQ_RANGE),
        "grating_fraction": GRATING_FRACTION,
        "noise": GRATING_NOISE,
        "scale": scale,
        "whitening": "none (synthetic patterns are not whitened)",
        "contrast_normalize": bool(cfg.contrast_normalize),
    }
    return Dataset(x=torch.from_numpy(x.astype(np.float32)), input_shape=(1, p, p), y=None,
                   name="gratings", info=info)


# --- random orientation maps -------------------------------------------------------------------

def _ring_modes(
    shape: tuple[int, int], period: float, ring_width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wave vectors of the torus near |k| = 2π/period and their spectral amplitudes.

    Returns `(kr, kc, amp)`, each `(M,)`: row/column wave numbers (radians per unit) and the
    Gaussian ring profile `exp(-(|k|-k0)²/(2 (ring_width k0)²))`, cut at 3 widths.
    """
    rows, cols = shape
    kr = 2 * np.pi * np.fft.fftfreq(rows)[:, None] * np.ones((1, cols))
    kc = 2 * np.pi * np.fft.fftfreq(cols)[None, :] * np.ones((rows, 1))
    k = np.hypot(kr, kc)
    k0 = 2 * np.pi / period
    w = ring_width * k0
    keep = (np.abs(k - k0) <= 3 * w) & (k > 0)
    if keep.sum() < 4:
        raise ValueError(
            f"a {rows}×{cols} torus has too few wave vectors near period {period:g} for a ring "
            f"of relative width {ring_width:g}; use a larger map or a wider ring")
    amp = np.exp(-((k[keep] - k0) ** 2) / (2 * w**2))
    return kr[keep], kc[keep], amp


def ring_period(shape: tuple[int, int], period: float, ring_width: float = 0.1) -> float:
    """Ensemble column spacing Λ = 2π/⟨|k|⟩ of `random_orientation_map` (power-weighted mean
    over the torus' discrete wave vectors); close to `period` when the ring has many modes."""
    kr, kc, amp = _ring_modes(shape, period, ring_width)
    k = np.hypot(kr, kc)
    p = amp**2
    return float(2 * np.pi / ((p * k).sum() / p.sum()))


def random_orientation_map(
    shape: tuple[int, int] = (128, 128),
    period: float = 16.0,
    seed: int | np.random.Generator = 0,
    ring_width: float = 0.1,
    return_period: bool = False,
) -> np.ndarray | tuple[np.ndarray, float]:
    """Orientation map `theta: (rows, cols)` in [0, π) from a ring-spectrum Gaussian random field.

    `period` Λ is in map units (pixels); `ring_width` is the relative std of |k| around 2π/Λ.
    The field is periodic on the `rows × cols` torus. With `return_period`, also returns the
    period this draw realises, 2π/⟨|k|⟩ weighted by the drawn power |a_k|².
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    rows, cols = shape
    kr, kc, amp = _ring_modes(shape, period, ring_width)
    a = amp * (rng.standard_normal(amp.size) + 1j * rng.standard_normal(amp.size))
    spec = np.zeros(shape, dtype=np.complex128)
    ir = np.rint(kr * rows / (2 * np.pi)).astype(int) % rows
    ic = np.rint(kc * cols / (2 * np.pi)).astype(int) % cols
    spec[ir, ic] = a
    z = np.fft.ifft2(spec)  # z[r, c] = Σ a_k e^{i(kr r + kc c)} / (rows cols)
    theta = np.mod(np.angle(z) / 2.0, np.pi)
    theta[theta >= np.pi] = 0.0  # np.mod rounds tiny negative angles up to π
    if not return_period:
        return theta
    p = np.abs(a) ** 2
    k_mean = float((p * np.hypot(kr, kc)).sum() / p.sum())
    return theta, 2 * np.pi / k_mean
