"""Figure builders: the right traces, shapes and colours for the arrays they are given."""

from __future__ import annotations

import colorsys

import numpy as np
import plotly.graph_objects as go
import pytest

from sparse_models import plotting as P


def test_tile_filters_places_each_filter_scaled_with_nan_padding() -> None:
    f = np.stack([np.full((3, 2), v, dtype=np.float32) for v in (1.0, -4.0, 0.0)])
    tiles = P.tile_filters(f, (2, 2), pad=1)
    assert tiles.shape == (2 * 4 + 1, 2 * 3 + 1)
    assert np.all(tiles[1:4, 1:3] == 1.0)  # unit 0 at (0, 0), scaled to max |value| = 1
    assert np.all(tiles[1:4, 4:6] == -1.0)  # unit 1 at (0, 1)
    assert np.all(tiles[5:8, 1:3] == 0.0)  # a zero filter stays zero (no division by 0)
    assert np.isnan(tiles[5:8, 4:6]).all()  # no unit 3: left empty
    assert np.isnan(tiles[0]).all() and np.isnan(tiles[:, 0]).all()  # padding


def test_tile_filters_rejects_a_grid_too_small() -> None:
    with pytest.raises(ValueError, match="no room"):
        P.tile_filters(np.zeros((5, 2, 2)), (2, 2))


def test_filter_grid_image_is_uint8_and_upscaled() -> None:
    img = P.filter_grid_image(np.random.randn(4, 3, 3), (2, 2), pad=1, upscale=3)
    assert img.dtype == np.uint8 and img.shape == (9 * 3, 9 * 3)  # 2 tiles of 3 + 3 pads


def test_filter_grid_figure_has_tiles_and_one_clickable_marker_per_unit() -> None:
    n, rows, cols = 6, 2, 3
    freq = np.linspace(0, 1, n)
    fig = P.filter_grid_figure(np.random.randn(n, 4, 5), (rows, cols),
                               hover={"firing rate": freq}, selected=4)
    heat, units = fig.data
    assert isinstance(heat, go.Heatmap) and np.asarray(heat.z).shape == (2 * 5 + 1, 3 * 6 + 1)
    assert isinstance(units, go.Scatter) and len(units.x) == n
    custom = np.asarray(units.customdata)
    assert custom[:, 0].tolist() == list(range(n))  # unit index
    assert custom[4, 1:3].tolist() == [1, 1]  # unit 4 sits at row 1, column 1
    np.testing.assert_allclose(custom[:, 3], freq)
    assert list(units.selectedpoints) == [4]
    assert "firing rate" in units.hovertemplate
    # marker centres fall on their tiles: unit 4's centre is inside its tile of the heatmap
    x, y = units.x[4], units.y[4]
    assert np.isfinite(np.asarray(heat.z)[int(round(y)), int(round(x))])


@pytest.mark.parametrize("h", [0.0, 0.1, 0.3, 0.5, 0.62, 0.9])
@pytest.mark.parametrize("s,v", [(1.0, 1.0), (0.5, 0.8), (0.0, 0.3)])
def test_hsv_to_rgb_matches_colorsys(h: float, s: float, v: float) -> None:
    ours = P.hsv_to_rgb(np.array([h]), np.array([s]), np.array([v]))[0]
    np.testing.assert_allclose(ours, colorsys.hsv_to_rgb(h, s, v), atol=1e-12)


def test_orientation_rgb_hue_is_orientation_and_brightness_is_selectivity() -> None:
    theta = np.array([[0.0, np.pi / 2], [np.pi / 3, np.pi - 1e-9]])
    sel = np.array([[1.0, 1.0], [1.0, 0.0]])
    rgb = P.orientation_rgb(theta, sel, brightness_max=1.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert rgb[0, 0].tolist() == [255, 0, 0]  # 0°: red
    assert rgb[0, 1].tolist() == [0, 255, 255]  # 90°: cyan, half-way round the hue wheel
    assert rgb[1, 0].tolist() == [0, 255, 0]  # 60°: green
    assert rgb[1, 1].tolist() == [0, 0, 0]  # no selectivity: black


def test_orientation_map_figure_marks_pinwheels_by_sign() -> None:
    theta = np.random.default_rng(0).uniform(0, np.pi, (8, 10))
    pinwheels = [(1.5, 2.5, 0.5), (4.5, 6.5, -0.5), (6.5, 0.5, 0.5)]
    fig = P.orientation_map_figure(theta, np.ones_like(theta), pinwheels)
    assert isinstance(fig.data[0], go.Image) and np.asarray(fig.data[0].z).shape == (8, 10, 3)
    named = {t.name: t for t in fig.data if isinstance(t, go.Scatter) and t.name}
    assert list(named["+½ pinwheel"].y) == [1.5, 6.5] and list(named["+½ pinwheel"].x) == [2.5, 0.5]
    assert list(named["−½ pinwheel"].y) == [4.5]
    assert any(t.marker.showscale for t in fig.data if isinstance(t, go.Scatter))  # hue legend
    assert tuple(fig.layout.yaxis.range) == (7.5, -0.5)  # row 0 at the top


def test_orientation_map_figure_without_pinwheels_or_colorbar() -> None:
    fig = P.orientation_map_figure(np.zeros((4, 4)), pinwheels=[], show_colorbar=False)
    assert len(fig.data) == 1


def test_power_spectrum_figure_draws_the_ring_at_one_over_lambda() -> None:
    spec = np.random.default_rng(1).random((16, 16))
    k = np.arange(9) / 16
    fig = P.power_spectrum_figure(spec, k, np.random.random(9), spacing=4.0)
    heat, radial, ring = fig.data
    assert isinstance(heat, go.Heatmap) and np.asarray(heat.z).shape == (16, 16)
    np.testing.assert_allclose(np.hypot(ring.x, ring.y), 0.25)
    assert len(P.power_spectrum_figure(spec, k, np.ones(9), spacing=float("nan")).data) == 2


def test_loss_curves_figure_has_one_line_per_term() -> None:
    steps = np.arange(5)
    fig = P.loss_curves_figure(steps, {"loss": steps * 2.0, "reconstruction": steps * 1.0},
                               log_y=True)
    assert [t.name for t in fig.data] == ["loss", "reconstruction"]
    assert fig.layout.yaxis.type == "log"


def test_histograms() -> None:
    counts, edges = np.histogram(np.random.randn(500), 20)
    fig = P.histogram_figure(counts, edges, "t", "z", log_y=True)
    assert len(fig.data) == 1 and len(fig.data[0].y) == 20
    np.testing.assert_allclose(fig.data[0].x, (edges[:-1] + edges[1:]) / 2)
    both = P.overlay_histograms_figure({"a": (counts, edges), "b": (counts * 2, edges)},
                                       normalize=True)
    for t in both.data:
        assert np.isclose(np.sum(t.y), 1.0)


def test_sorted_bar_figure_sorts_and_flags_dead_units() -> None:
    v = np.array([0.2, 0.0, 0.5, 0.1])
    fig = P.sorted_bar_figure(v, highlight_below=0.0)
    bar = fig.data[0]
    assert list(bar.y) == [0.5, 0.2, 0.1, 0.0]
    assert list(bar.customdata) == [2, 0, 3, 1]  # unit ids in that order
    assert bar.marker.color[-1] == "#ff4b4b" and bar.marker.color[0] != "#ff4b4b"


def test_map_heatmap_and_pool_preview() -> None:
    fig = P.map_heatmap_figure(np.arange(12.0).reshape(3, 4), "rates")
    assert np.asarray(fig.data[0].z).shape == (3, 4)
    prev = P.pool_preview_figure(np.full((5, 5), 9.0), np.eye(5))
    assert len(prev.data) == 2 and prev.data[0].zmin == 0 and prev.data[0].zmax == 9.0
    assert len(P.pool_preview_figure(np.ones((5, 5))).data) == 1


def test_orientation_map_image_draws_the_map_and_its_pinwheels():
    from sparse_models.plotting import orientation_map_image, orientation_rgb

    theta = np.tile(np.linspace(0, np.pi, 6, endpoint=False), (4, 1))
    sel = np.ones_like(theta)
    img = orientation_map_image(theta, sel, [(1.0, 2.0, 0.5), (2.0, 4.0, -0.5)], cell=10)
    assert img.shape == (40, 60, 3) and img.dtype == np.uint8
    plain = orientation_map_image(theta, sel, [], cell=10)
    assert np.array_equal(plain[5, 5], orientation_rgb(theta, sel)[0, 0])  # cell colours kept
    assert tuple(img[15, 25]) == (255, 255, 255)  # +½: white disc at row 1.5, col 2.5 cells
    assert tuple(img[25, 45]) == (17, 17, 17)  # −½: dark square at row 2.5, col 4.5 cells
    assert np.array_equal(img[35, 5], plain[35, 5])  # far from markers: untouched


# --- DrSAE and LISTA figures ------------------------------------------------------------------


def test_unit_scatter_has_a_point_per_unit_the_thresholds_and_the_selected_ring() -> None:
    rng = np.random.default_rng(0)
    angle, s, c = rng.uniform(0, 1.5, 9), rng.uniform(0, 1, 9), rng.uniform(0, 5, 9)
    dead = np.zeros(9, bool)
    dead[2] = True
    fig = P.unit_scatter_figure(angle, s, c, 0.5, 0.7, selected=4, dead=dead,
                                hover={"late onset (%)": np.arange(9.0)})
    units, ring = fig.data
    assert np.allclose(units.x, angle) and np.allclose(units.y, s)
    assert np.allclose(units.marker.color, c)
    assert list(units.customdata[:, 0]) == list(range(9))  # the click's point_index is the unit
    assert units.marker.symbol[2] != units.marker.symbol[0]  # a dead unit is drawn apart
    assert ring.x == (angle[4],) and ring.y == (s[4],)
    assert [shape.x0 for shape in fig.layout.shapes] == [0.5, 0.7]
    assert P.unit_scatter_figure(angle, s, c, 0.5, 0.7).data[1].x == ()


def test_class_bar_highlights_one_class_and_keeps_its_range() -> None:
    fig = P.class_bar_figure(np.array([0.1, 0.7, 0.2]), highlight=1, y_range=(0, 1))
    (bar,) = fig.data
    assert list(bar.x) == ["0", "1", "2"]
    assert bar.marker.color[1] != bar.marker.color[0] == bar.marker.color[2]
    assert tuple(fig.layout.yaxis.range) == (0, 1)


def test_gallery_places_each_picture_scaled_with_a_label_at_its_centre() -> None:
    images = np.stack([np.full((3, 2), 2.0), np.full((3, 2), -1.0), np.full((3, 2), np.nan)])
    fig = P.gallery_figure(images, ["a", "b", "empty"], cols=2, pad=1)
    heat, labels = fig.data
    z = np.asarray(heat.z, dtype=float)
    assert z.shape == (2 * 4 + 1, 2 * 3 + 1)
    assert np.all(z[1:4, 1:3] == 1.0) and np.all(z[1:4, 4:6] == -1.0)
    assert np.isnan(z[5:8, 1:3]).all()  # the NaN picture is an empty cell
    assert list(labels.text) == ["a", "b", "empty"]
    assert (labels.x[1], labels.y[1]) == (4.5, 2.0)
    # fewer pictures than columns keep the columns, so one picture is as small as many
    assert np.asarray(P.gallery_figure(images[:1], ["a"], cols=4, pad=1).data[0].z).shape[1] == 13


def test_code_bars_colour_each_unit_by_its_kind() -> None:
    fig = P.code_bars_figure(np.array([0.5, 0.2, 0.1]), np.array([7, 3, 9]),
                             ["part", "categorical", "part"])
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["part"].x) == ["7", "9"] and list(by_name["categorical"].x) == ["3"]
    assert by_name["part"].marker.color == P.KIND_COLORS["part"]
    assert list(fig.layout.xaxis.categoryarray) == ["7", "3", "9"]


def test_iterations_heatmap_outlines_the_chosen_iteration() -> None:
    codes = np.arange(12.0).reshape(3, 4)
    fig = P.iterations_heatmap_figure(codes, np.array([1, 5, 6, 8]), t=2)
    assert np.allclose(fig.data[0].z, codes) and list(fig.data[0].y) == [1, 2, 3]
    (rect,) = fig.layout.shapes
    assert (rect.y0, rect.y1) == (1.5, 2.5)


def test_confusion_writes_counts_and_colours_row_shares() -> None:
    counts = np.array([[8, 2], [1, 3]])
    fig = P.confusion_figure(counts)
    (heat,) = fig.data
    assert np.allclose(heat.z, [[0.8, 0.2], [0.25, 0.75]])
    assert np.array_equal(np.asarray(heat.text), counts)


def test_code_error_curves_are_on_a_log_axis_with_markers_for_short_ones() -> None:
    fig = P.code_error_figure({"ISTA": np.geomspace(1, 1e-3, 50), "LISTA (T = 3)":
                               np.array([0.5, 0.1, 0.0])})
    ista, lista = fig.data
    assert fig.layout.yaxis.type == "log"
    assert list(lista.x) == [1, 2, 3] and np.isnan(lista.y[2])  # a zero has no place on log y
    assert ista.mode == "lines" and lista.mode == "lines+markers"


def test_maps_are_tiled_from_zero_to_each_maps_own_largest_value() -> None:
    maps = np.zeros((3, 2, 2))
    maps[0] = [[0, 2], [4, -1]]  # negative values are drawn as 0
    maps[1, 0, 0] = 0.5
    fig = P.maps_figure(maps, ["a", "b", "silent"], cols=2, pad=1, title="maps")
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (2 * 3 + 1, 2 * 3 + 1)
    assert np.allclose(z[1:3, 1:3], [[0, 0.5], [1, 0]])
    assert z[1, 4] == 1 and np.allclose(z[4:6, 1:3], 0)  # a weak map and a silent one
    assert np.isnan(z[4, 4]) and np.isnan(z[0, 0])  # the empty cell and the padding
    assert list(fig.data[1].text) == ["a", "b", "silent"]
    assert list(fig.data[1].x) == [1.5, 4.5, 1.5] and list(fig.data[1].y) == [1.5, 1.5, 4.5]


def test_invariance_curves_are_each_units_share_of_its_largest_with_a_mean_per_kind() -> None:
    xs = np.arange(4.0)
    flat = np.array([[2.0, 2, 2, 2], [1, 1, 1, 1]])
    modulated = np.array([[0.0, 1, 2, 1], [4, 2, 0, 2], [0, 0, 0, 0]])
    fig = P.invariance_figure(xs, {"unpooled": modulated, "pooled": flat},
                              live={"unpooled": np.array([True, False, True])},
                              x_text=["a", "b", "c", "d"], title="Phase")
    by_name = {t.name: np.asarray(t.y, dtype=float) for t in fig.data}
    # the dead unit (1) and the silent one (2) are left out: one unpooled unit, two pooled
    assert set(by_name) == {"unpooled unit 0", "unpooled (mean of 1)", "pooled unit 0",
                            "pooled unit 1", "pooled (mean of 2)"}
    assert np.allclose(by_name["unpooled unit 0"], [0, 0.5, 1, 0.5])
    assert np.allclose(by_name["pooled (mean of 2)"], 1.0)
    means = [t for t in fig.data if t.showlegend is not False]
    assert [t.line.color for t in means] == [P.UNPOOLED_COLOR, P.POOLED_COLOR]
    assert list(fig.layout.xaxis.ticktext) == ["a", "b", "c", "d"]
    assert fig.layout.title.text == "Phase"
