"""Quality measures: map smoothness, explained variance, live units, pool similarity."""

import math

import numpy as np
import pytest

from sparse_models.analysis.quality import (
    explained_variance,
    live_fraction,
    mean_selectivity,
    neighbour_orientation_diff_deg,
    orientation_difference,
    within_vs_between_pool_similarity,
)
from sparse_models.data.synthetic import random_orientation_map
from sparse_models.groups import GroupSpec


@pytest.mark.parametrize("periodic", [False, True])
def test_random_orientations_differ_by_45_degrees(periodic):
    theta = np.random.default_rng(0).uniform(0, math.pi, (200, 200))
    assert neighbour_orientation_diff_deg(theta, periodic) == pytest.approx(45.0, abs=0.5)


def test_smooth_maps_differ_little():
    assert neighbour_orientation_diff_deg(np.full((10, 10), 2.0)) == 0.0
    rows, cols = 10, 12
    theta = np.mod(0.01 * np.arange(cols)[None, :] * np.ones((rows, 1)), math.pi)
    n_h, n_v = rows * (cols - 1), (rows - 1) * cols
    expected = math.degrees(0.01) * n_h / (n_h + n_v)
    assert neighbour_orientation_diff_deg(theta) == pytest.approx(expected)
    assert neighbour_orientation_diff_deg(random_orientation_map((64, 64), 16.0), True) < 15.0


def test_orientation_difference_is_circular_mod_pi():
    assert orientation_difference(0.01, math.pi - 0.01) == pytest.approx(0.02)
    assert orientation_difference(0.0, math.pi / 2) == pytest.approx(math.pi / 2)
    assert orientation_difference(1.0, 1.0 + math.pi) == pytest.approx(0.0, abs=1e-12)


def test_seam_counts_only_on_a_torus():
    theta = np.zeros((4, 4))
    theta[:, -1] = math.pi / 2  # the seam column-pair (3, 0) differs by 90°
    open_map = neighbour_orientation_diff_deg(theta, periodic=False)
    torus = neighbour_orientation_diff_deg(theta, periodic=True)
    assert open_map == pytest.approx(90.0 * 4 / 24)
    assert torus == pytest.approx(90.0 * 8 / 32)


def test_explained_variance_known_answers():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 8)) + 3.0
    mean = x.mean(axis=0, keepdims=True)
    assert explained_variance(x, x) == pytest.approx(1.0)
    assert explained_variance(x, np.broadcast_to(mean, x.shape)) == pytest.approx(0.0, abs=1e-12)
    assert explained_variance(x, mean + 0.5 * (x - mean)) == pytest.approx(0.75)
    assert explained_variance(x, np.zeros_like(x)) < 0
    assert math.isnan(explained_variance(np.ones((4, 3)), np.zeros((4, 3))))
    with pytest.raises(ValueError):
        explained_variance(x, x[:, :4])


def test_live_fraction_and_mean_selectivity():
    codes = np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 0.5]])
    assert live_fraction(codes) == pytest.approx(2 / 3)
    assert mean_selectivity(np.array([0.2, 0.4])) == pytest.approx(0.3)


def test_pool_similarity_separates_identical_pool_members():
    # Two blocks of two units: members of a pool are copies, the two pools orthogonal.
    a, b = np.array([1.0, 0, 0, 0]), np.array([0, 0, 1.0, 0])
    filters = np.stack([a, 2 * a, b, -b]).reshape(4, 2, 2)
    P = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=float)
    out = within_vs_between_pool_similarity(filters, P)
    assert out["within"] == pytest.approx(1.0) and out["between"] == pytest.approx(0.0)
    assert out["n_within_pairs"] == 2 and out["n_between_pairs"] == 4


def test_pool_similarity_against_a_loop():
    rng = np.random.default_rng(2)
    filters = rng.standard_normal((16, 3, 3))
    P = GroupSpec(kind="neighbourhood", map_shape=(4, 4), size=2, wrap=False).pool_matrix()
    out = within_vs_between_pool_similarity(filters, P)
    f = filters.reshape(16, -1)
    within, between = [], []
    for i in range(16):
        for j in range(i + 1, 16):
            cos = abs(f[i] @ f[j]) / np.linalg.norm(f[i]) / np.linalg.norm(f[j])
            share = any(P[k, i] > 0 and P[k, j] > 0 for k in range(P.shape[0]))
            (within if share else between).append(cos)
    assert out["within"] == pytest.approx(np.mean(within))
    assert out["between"] == pytest.approx(np.mean(between))
    assert out["ratio"] == pytest.approx(np.mean(within) / np.mean(between))
    assert out["n_within_pairs"] == len(within) and out["n_between_pairs"] == len(between)


def test_pool_similarity_without_shared_pools_is_nan():
    out = within_vs_between_pool_similarity(np.random.default_rng(0).random((5, 4)), np.eye(5))
    assert math.isnan(out["within"]) and out["n_within_pairs"] == 0
