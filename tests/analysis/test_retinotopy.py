"""Retinotopy of hand-built sheets, where every receptive-field centre is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_models.analysis.report import analyze_model, sheet_measures
from sparse_models.analysis.retinotopy import energy_centres, retinotopy
from sparse_models.models import build_model


def _delta_sheet(per_position: int, stride: int, offset) -> torch.nn.Module:
    """A 20×20-image sheet of 8×8 fields whose decoder filter for map cell (r, c) is a single
    pixel at offset(r, c) within its field."""
    m = build_model("sheet", {"input_shape": [20, 20], "receptive_field": 8, "stride": stride,
                              "per_position": per_position, "pool_size": 2,
                              "smooth_retinotopy": False})
    rows, cols = m.config.sheet
    a, b = m.config.block
    D = torch.zeros(rows, a, cols, b, 8, 8)  # unit-map order: (pos row, block row, pos col, ...)
    for r in range(rows * a):
        for c in range(cols * b):
            dy, dx = offset(r, c)
            D[r // a, r % a, c // b, c % b, dy, dx] = 1.0
    with torch.no_grad():  # back to the model's (positions, K, r²) storage
        m.D.copy_(D.permute(0, 2, 1, 3, 4, 5).reshape(rows * cols, a * b, 64))
    return m


def test_centres_of_energy_are_where_the_energy_is():
    f = np.zeros((2, 5, 7))
    f[0, 1, 2] = 3.0
    f[1, 4, 0] = f[1, 4, 6] = 1.0  # two equal pixels: the centre halfway
    np.testing.assert_allclose(energy_centres(f), [[1, 2], [4, 3]])


def test_one_unit_per_position_centred_filters_move_one_stride_per_unit():
    m = _delta_sheet(1, 3, lambda r, c: (4, 4))
    shape, _ = m.layout.map_shape()
    r = retinotopy(m.filters("decoder"), m.layout, shape)
    assert r["slope_rows"] == pytest.approx(3.0) and r["slope_cols"] == pytest.approx(3.0)
    assert r["r2_rows"] == pytest.approx(1.0) and r["scatter_px"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(r["centres"][shape[1] + 2], [3 + 4, 6 + 4])  # map cell (1, 2)


def test_a_block_whose_filters_step_inside_the_field_is_evenly_retinotopic():
    """K = 4 units at positions 4 px apart; the block's units look 2 px apart: the centres move
    2 px per map unit (= stride / 2 = `px_per_map_unit`) with no scatter."""
    m = _delta_sheet(4, 4, lambda r, c: (2 * (r % 2) + 1, 2 * (c % 2) + 1))
    shape, _ = m.layout.map_shape()
    r = retinotopy(m.filters("decoder"), m.layout, shape)
    assert m.layout.px_per_map_unit == 2.0
    assert r["slope_rows"] == pytest.approx(2.0) and r["slope_cols"] == pytest.approx(2.0)
    assert r["scatter_px"] == pytest.approx(0.0, abs=1e-9)


def test_scattered_centres_lower_r2_and_show_as_scatter():
    """Alternate units look 2 px up or down: the slope is kept, the scatter is the known 1 px
    RMS along rows (±1 about the line), and R² falls below 1."""
    m = _delta_sheet(1, 2, lambda r, c: (3 + 2 * ((r + c) % 2), 3))
    shape, _ = m.layout.map_shape()
    r = retinotopy(m.filters("decoder"), m.layout, shape)
    assert r["slope_cols"] == pytest.approx(2.0)
    assert r["r2_rows"] < 1.0
    assert r["scatter_px"] == pytest.approx(1.0, abs=0.05)


def test_the_report_gives_a_sheets_spacing_in_pixels_and_other_models_say_why_not():
    torch.manual_seed(0)
    m = _delta_sheet(4, 4, lambda r, c: (2 * (r % 2) + 1, 2 * (c % 2) + 1))
    out = analyze_model(m, torch.randn(64, 400), n_shuffles=2)
    assert out["why_no_retinotopy"] is None and out["px_per_map_unit"] == 2.0
    if out["column_spacing"] is not None:
        assert out["column_spacing_px"] == pytest.approx(2.0 * out["column_spacing"])
    assert out["rf_scatter_px"] == pytest.approx(0.0, abs=1e-9)
    topo = build_model("topographic", {"input_shape": [6, 6], "group": {"map_shape": [4, 4]}})
    res = sheet_measures(topo.filters("decoder"), topo.layout, (4, 4), 3.0)
    assert res["column_spacing_px"] is None and "not laid out over an image" in res["why_no_retinotopy"]


def paint_lattice(m) -> None:
    """Make a block-layout sheet's decoder filters 8×8 gratings oriented as
    `test_pinwheels.lattice_map` of its blocks: one pinwheel at each block's centre."""
    from tests.analysis.test_pinwheels import lattice_map

    (rows, cols), (a, b) = m.config.sheet, m.config.block
    shape = (rows * a, cols * b)
    theta = lattice_map(shape, a)
    yy, xx = np.mgrid[0:8, 0:8] - 3.5
    D = torch.zeros(rows, a, cols, b, 8, 8)
    for r in range(shape[0]):
        for c in range(shape[1]):
            t = theta[r, c]  # a grating whose stripes run at θ (its wave vector across them)
            g = np.cos(2 * np.pi * (-np.sin(t) * xx - np.cos(t) * yy) / 4.0)
            D[r // a, r % a, c // b, c % b] = torch.from_numpy(g)
    with torch.no_grad():
        m.D.copy_(D.permute(0, 2, 1, 3, 4, 5).reshape(rows * cols, a * b, 64))


def test_the_report_finds_a_sheets_pinwheels_at_its_positions_centres():
    """A sheet whose decoder filters are gratings oriented as a lattice with one pinwheel at
    the centre of each position's 4×4 block (`test_pinwheels.lattice_map`): the report puts
    every pinwheel there; a patch map has no positions, so no such share."""
    m = build_model("sheet", {"input_shape": [20, 20], "receptive_field": 8, "stride": 4,
                              "per_position": 16, "pool_size": 2, "smooth_retinotopy": False})
    paint_lattice(m)
    out = analyze_model(m, torch.randn(64, 400), n_shuffles=2)
    # 16×16 map of 4×4 blocks: 12 of the 15 plaquette centres a side lie within 1 of a centre
    assert out["pinwheels_at_position_centres_chance"] == pytest.approx((12 / 15) ** 2)
    assert out["pinwheels_at_position_centres"] == 1.0
    topo = build_model("topographic", {"input_shape": [6, 6], "group": {"map_shape": [4, 4]}})
    res = analyze_model(topo, torch.randn(64, 36), n_shuffles=2)
    assert res["pinwheels_at_position_centres"] is None
    assert res["pinwheels_at_position_centres_chance"] is None
