"""The pinwheel benchmark's controls: Gaussian random fields cut to a map's size."""

from __future__ import annotations

import math

import pytest

from sparse_models.bench_pinwheels import machine_load, random_field_density


def test_random_field_control_is_near_pi_on_a_large_map():
    m, sd = random_field_density((96, 96), 12.0, n=6, smooth_sigma=0.0)
    assert m == pytest.approx(math.pi, rel=0.15) and sd > 0


def test_random_field_control_works_on_small_maps_or_says_nan():
    m, _ = random_field_density((3, 6), 6.0, n=3)  # drawn on a larger torus, then cut
    assert math.isnan(m) or m >= 0
    assert math.isnan(random_field_density((1, 6), 3.0)[0])
    assert math.isnan(random_field_density((16, 16), float("nan"))[0])


def test_machine_load_names_the_cores():
    assert "cores" in machine_load()
