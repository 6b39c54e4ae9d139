"""Known answers for the envelope width: Gaussian blobs, whole-patch gratings, Gabors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparse_models.analysis.localisation import envelope_width, localisation_summary


def _gabor(size: int, sigma: float, theta: float = 0.3, freq: float = 0.2,
           centre: tuple[float, float] | None = None) -> np.ndarray:
    cy, cx = centre if centre is not None else ((size - 1) / 2, (size - 1) / 2)
    y, x = np.mgrid[0:size, 0:size].astype(float)
    u = (x - cx) * math.cos(theta) + (y - cy) * math.sin(theta)
    env = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2)) if sigma else 1.0
    return env * np.cos(2 * math.pi * freq * u)


@pytest.mark.parametrize("sigma", [1.5, 2.5, 4.0])
def test_a_gaussian_blob_has_its_sigma_as_width(sigma: float) -> None:
    blob = _gabor(41, sigma, freq=0.0)  # a plain Gaussian, far from the edges
    assert envelope_width(blob[None])[0] == pytest.approx(sigma, rel=1e-3)


def test_energy_spread_over_the_patch_has_width_side_over_root_6() -> None:
    flat = np.ones((1, 30, 30))
    side_rms = math.sqrt(2 * (30**2 - 1) / 12)  # discrete uniform over 0..29, two axes
    assert envelope_width(flat)[0] == pytest.approx(side_rms, rel=1e-9)
    assert localisation_summary(flat)["envelope_width_fraction"] == pytest.approx(
        side_rms / 30, rel=1e-9)


def test_a_gabor_is_narrower_than_a_grating_and_position_does_not_matter() -> None:
    g = _gabor(16, 2.0)
    shifted = _gabor(16, 2.0, centre=(5.0, 9.0))
    grating = _gabor(16, 0.0)
    w = envelope_width(np.stack([g, shifted, grating]))
    assert w[0] == pytest.approx(w[1], rel=0.05)
    assert w[0] < 0.5 * w[2]


def test_channels_add_their_energy_and_a_zero_filter_is_nan() -> None:
    g = _gabor(12, 2.0)
    two = np.stack([g, g])[None]  # (1, 2, h, w): the same envelope in both channels
    assert envelope_width(two)[0] == pytest.approx(envelope_width(g[None])[0])
    assert math.isnan(envelope_width(np.zeros((1, 5, 5)))[0])
