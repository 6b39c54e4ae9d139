"""Pinwheels, column spacing and density on maps with known answers (Kaschube et al. 2010)."""

import math

import numpy as np
import pytest

from sparse_models.analysis.pinwheels import (
    block_centre_share,
    column_spacing,
    find_pinwheels,
    pinwheel_density,
    power_spectrum,
    shuffled_density,
    winding_numbers,
)
from sparse_models.data.synthetic import random_orientation_map


def _polar_angle(shape, r0, c0):
    """Polar angle φ round (r0, c0), counter-clockwise as drawn (y up)."""
    r, c = np.mgrid[: shape[0], : shape[1]].astype(float)
    return np.arctan2(-(r - r0), c - c0)


@pytest.mark.parametrize("charge", [0.5, -0.5])
@pytest.mark.parametrize("centre", [(10.5, 20.5), (10.3, 20.8), (3.9, 4.2)])
def test_single_pinwheel_found_at_the_right_place_with_the_right_sign(charge, centre):
    phi = _polar_angle((24, 32), *centre)
    theta = np.mod(2 * charge * phi / 2 + 0.4, math.pi)  # θ = ±φ/2 + a rotation
    found = find_pinwheels(theta)
    assert len(found) == 1
    r, c, q = found[0]
    assert q == charge
    # The centre lies inside the plaquette whose centre is reported.
    assert abs(r - centre[0]) <= 0.5 and abs(c - centre[1]) <= 0.5


def test_pinwheel_pair_and_smoothing():
    shape = (30, 40)
    theta = np.mod((_polar_angle(shape, 10.5, 10.5) - _polar_angle(shape, 18.5, 29.5)) / 2, math.pi)
    for sigma in (0.0, 1.0):
        found = sorted(find_pinwheels(theta, smooth_sigma=sigma))
        assert found == [(10.5, 10.5, 0.5), (18.5, 29.5, -0.5)]


@pytest.mark.parametrize("periodic", [False, True])
def test_smooth_maps_have_no_pinwheels(periodic):
    c = np.arange(40)[None, :] * np.ones((30, 1))
    r = np.arange(30)[:, None] * np.ones((1, 40))
    constant = np.full((30, 40), 1.2)
    # Turns by exactly π across the columns: periodic on the torus, yet no singularity.
    gradient = np.mod(math.pi * c / 40 + 0.3 * np.sin(2 * math.pi * r / 30), math.pi)
    for theta in (constant, gradient):
        assert find_pinwheels(theta, periodic=periodic) == []
        assert find_pinwheels(theta, periodic=periodic, smooth_sigma=1.5) == []


def test_charges_cancel_on_a_torus():
    theta = random_orientation_map((64, 64), 10.0, seed=3)
    found = find_pinwheels(theta, periodic=True)
    assert len(found) > 50
    assert sum(q for _, _, q in found) == 0
    w = winding_numbers(2 * theta, periodic=True)
    assert w.shape == (64, 64) and set(np.unique(w)) <= {-1, 0, 1}


def test_plane_wave_spacing_is_exact():
    r, c = np.mgrid[:64, :64]
    theta = np.mod(math.pi * (3 * r + 4 * c) / 64, math.pi)  # e^{2iθ}: wave vector (3, 4)/64
    assert column_spacing(theta, periodic=True) == pytest.approx(64 / 5, rel=1e-9)
    spec, k, radial = power_spectrum(theta, periodic=True)
    assert spec.shape == (64, 64) and k.shape == radial.shape
    assert k[np.argmax(radial)] == pytest.approx(5 / 64)


def test_constant_map_has_no_spacing():
    assert math.isnan(column_spacing(np.full((16, 16), 0.3), periodic=True))
    assert math.isnan(pinwheel_density(np.full((16, 16), 0.3)))


def test_density_is_pi_on_random_maps_torus():
    densities, errors = [], []
    for seed in range(20):
        theta, period = random_orientation_map((128, 128), 16.0, seed=seed, return_period=True)
        errors.append(column_spacing(theta, periodic=True) / period - 1)
        densities.append(pinwheel_density(theta, periodic=True))
    assert np.max(np.abs(errors)) < 0.03
    assert np.mean(densities) == pytest.approx(math.pi, rel=0.05)


def test_density_is_pi_on_random_map_crops():
    densities, errors = [], []
    for seed in range(20):
        theta, period = random_orientation_map((256, 256), 16.0, seed=seed, return_period=True)
        crop = theta[64:192, 32:160]  # not periodic: windowed spectrum, open plaquettes
        errors.append(column_spacing(crop) / period - 1)
        densities.append(pinwheel_density(crop))
    assert np.max(np.abs(errors)) < 0.03
    assert np.mean(densities) == pytest.approx(math.pi, rel=0.05)


@pytest.mark.parametrize("shape, period", [((16, 16), 8.0), ((64, 64), 8.0), ((96, 160), 12.0)])
def test_spacing_on_other_maps(shape, period):
    for seed in range(5):
        theta, true = random_orientation_map(shape, period, seed=seed, return_period=True)
        assert column_spacing(theta, periodic=True) == pytest.approx(true, rel=0.03)


def test_shuffled_baseline_is_far_above_pi():
    theta = random_orientation_map((64, 64), 8.0, seed=1)
    base = shuffled_density(theta, n=3, seed=0, periodic=True)
    assert base > 3 * math.pi
    assert base == shuffled_density(theta, n=3, seed=0, periodic=True)
    smoothed = shuffled_density(theta, n=3, seed=0, periodic=True, smooth_sigma=1.0)
    assert math.pi < smoothed < base


def test_density_by_window_size_settles_near_pi_on_random_maps():
    """On Gaussian random maps (density π) windows of growing side: the mean density stays near
    π and its spread over windows shrinks as the windows grow."""
    from sparse_models.analysis.pinwheels import density_by_size

    theta = random_orientation_map((192, 192), 12.0, seed=3)
    lam = column_spacing(theta, periodic=True)
    curve = density_by_size(theta, lam, sizes=[24, 48, 95])
    assert [c[0] for c in curve] == [24, 48, 95]
    assert curve[0][3] > curve[1][3] > curve[2][3] >= 1  # fewer, larger windows
    assert curve[-1][1] == pytest.approx(math.pi, rel=0.2)
    assert curve[0][2] > curve[-1][2]  # small windows scatter more
    assert density_by_size(theta, float("nan")) == []


def lattice_map(shape: tuple[int, int], a: int) -> np.ndarray:
    """θ = ½ arg(sin(πx/a) + i sin(πy/a)), x and y measured from the centre of the a×a blocks
    (shifted a quarter cell so that no zero falls on a cell): a smooth map whose pinwheels sit
    exactly at the blocks' centres, with alternating charges."""
    r, c = np.mgrid[: shape[0], : shape[1]].astype(float)
    x, y = c - (a - 1) / 2 + 0.25, r - (a - 1) / 2 + 0.25
    return np.mod(np.angle(np.sin(np.pi * x / a) + 1j * np.sin(np.pi * y / a)) / 2, np.pi)


def test_block_centre_share_counts_the_pinwheels_at_the_blocks_centres_against_chance():
    # a 12×12 map of 6×6 blocks: centres at 2.5 and 8.5 along each axis
    found = [(2.5, 2.5, 0.5), (8.5, 2.5, -0.5), (5.5, 5.5, 0.5), (3.5, 8.5, -0.5)]
    share, chance = block_centre_share(found, (6, 6), (12, 12))
    assert share == 0.75  # all but the one on the blocks' common corner
    # plaquette centres 0.5 … 10.5: 1.5–3.5 and 7.5–9.5 lie within 1 of a centre, 6 of 11 a side
    assert chance == pytest.approx((6 / 11) ** 2)
    assert block_centre_share(found, (6, 6), (12, 12), radius=0.0)[0] == 0.5
    empty = block_centre_share([], (6, 6), (12, 12))
    assert math.isnan(empty[0]) and empty[1] == pytest.approx(chance)


def test_a_lattice_of_pinwheels_at_the_block_centres_is_found_there():
    theta = lattice_map((24, 24), 6)
    found = find_pinwheels(theta)
    assert len(found) == 16  # one a block
    assert sorted({p[2] for p in found}) == [-0.5, 0.5]
    share, chance = block_centre_share(found, (6, 6), (24, 24))
    assert share == 1.0 and chance < 0.3
    # the same pinwheels against blocks half a block off: none at a centre
    assert block_centre_share([(r + 3, c + 3, q) for r, c, q in found], (6, 6), (30, 30))[0] == 0
