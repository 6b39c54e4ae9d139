"""Preferred orientation and selectivity against synthetic Gabors with known orientation."""

import math

import numpy as np
import pytest
import torch

from sparse_models.analysis.orientation import orientation_map, preferred_orientation
from sparse_models.data.synthetic import _gabor_stack, default_sigma, gabor


def _angle_error_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.mod(a - b, math.pi)
    return np.degrees(np.minimum(d, math.pi - d))


def _gabors(size, freq, n, seed, offset=0.0):
    """n Gabors with random orientation and phase; centres jittered by up to ±offset·size."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, math.pi, n)
    phase = rng.uniform(0, 2 * math.pi, n)
    mid = (size - 1) / 2
    cr = mid + rng.uniform(-offset, offset, n) * size
    cc = mid + rng.uniform(-offset, offset, n) * size
    sigma = np.full(n, default_sigma(size, freq))
    return _gabor_stack(size, theta, np.full(n, freq), phase, sigma, cr, cc), theta


# Frequencies with at least one cycle across the patch, up to 0.35 cycles/px.
CASES = [(s, f) for s in (8, 12, 16) for f in (0.08, 0.125, 0.2, 0.3, 0.35) if f * s >= 1]


@pytest.mark.parametrize("size, freq", CASES)
def test_orientation_of_centred_gabors_within_2_degrees(size, freq):
    filters, truth = _gabors(size, freq, 200, seed=int(size * 100 + freq * 1000))
    theta, sel = preferred_orientation(filters)
    assert theta.shape == sel.shape == (200,)
    assert np.all((theta >= 0) & (theta < math.pi))
    assert _angle_error_deg(theta, truth).max() < 2.0


@pytest.mark.parametrize("size, freq", [(12, 0.15), (12, 0.25), (16, 0.1), (16, 0.2)])
def test_orientation_of_off_centre_gabors_within_2_degrees(size, freq):
    filters, truth = _gabors(size, freq, 200, seed=7, offset=0.2)
    theta, _ = preferred_orientation(filters)
    assert _angle_error_deg(theta, truth).max() < 2.0


@pytest.mark.parametrize("theta", [0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4, 2.9])
def test_exact_angles_and_sign_convention(theta):
    est, _ = preferred_orientation(gabor(16, theta, freq=0.2)[None])
    assert _angle_error_deg(est, np.array([theta]))[0] < 0.1
    assert 0 <= est[0] < math.pi


def test_torch_input_matches_numpy():
    filters, _ = _gabors(12, 0.2, 10, seed=1)
    t_np, s_np = preferred_orientation(filters)
    t_t, s_t = preferred_orientation(torch.from_numpy(filters).float())
    assert np.allclose(t_np, t_t, atol=1e-4) and np.allclose(s_np, s_t, atol=1e-4)


def test_selectivity_high_for_gabors_low_for_blobs_and_noise():
    gab, _ = _gabors(12, 0.2, 100, seed=2)
    _, s_gabor = preferred_orientation(gab)
    r = np.arange(12) - 5.5
    blobs = np.stack([np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * s**2))
                      for s in np.linspace(1.0, 4.0, 10)])
    _, s_blob = preferred_orientation(blobs)
    noise = np.random.default_rng(0).standard_normal((100, 12, 12))
    _, s_noise = preferred_orientation(noise)
    assert s_gabor.min() > 0.7
    assert s_blob.max() < 0.02
    assert s_noise.mean() < 0.25
    assert np.all((s_noise >= 0) & (s_noise <= 1))


def test_zero_filter_has_no_selectivity():
    theta, sel = preferred_orientation(np.zeros((2, 8, 8)))
    assert np.array_equal(theta, [0.0, 0.0]) and np.array_equal(sel, [0.0, 0.0])


def test_orientation_map_is_row_major():
    thetas = np.linspace(0, math.pi, 12, endpoint=False)
    filters = np.stack([gabor(12, t) for t in thetas])
    theta_map, sel_map = orientation_map(filters, (3, 4))
    assert theta_map.shape == sel_map.shape == (3, 4)
    assert _angle_error_deg(theta_map[1, 2], thetas[1 * 4 + 2]) < 1.0
    assert _angle_error_deg(theta_map.ravel(), thetas).max() < 1.0
    with pytest.raises(ValueError):
        orientation_map(filters, (5, 5))


def test_rejects_wrong_shape():
    with pytest.raises(ValueError):
        preferred_orientation(np.zeros((8, 8)))
