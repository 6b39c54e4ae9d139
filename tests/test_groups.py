"""Group structures: pool membership, weights, wrap-around, validation."""

import numpy as np
import pytest

from sparse_models.config import ConfigError, from_dict, to_dict
from sparse_models.groups import GroupSpec, pool_overlay, square_map_shape


def test_blocks_tile_the_map_without_overlap():
    P = GroupSpec(kind="blocks", map_shape=(4, 6), size=2).pool_matrix()
    assert P.shape == (6, 24)
    assert np.array_equal(P.sum(0), np.ones(24))  # every unit in exactly one block
    assert np.array_equal(P[0].reshape(4, 6)[:2, :2], np.ones((2, 2)))


def test_one_dimensional_blocks():
    P = GroupSpec(kind="blocks", map_shape=(1, 12), size=3).pool_matrix()
    assert P.shape == (4, 12) and np.array_equal(P.sum(0), np.ones(12))


@pytest.mark.parametrize("size,stride", [(3, 1), (5, 1), (4, 2), (6, 2)])
def test_torus_neighbourhoods_cover_every_unit_equally(size, stride):
    spec = GroupSpec(map_shape=(12, 12), size=size, stride=stride, wrap=True)
    P = spec.pool_matrix()
    assert P.shape == ((12 // stride) ** 2, 144)
    assert np.all(P.sum(1) == size * size)
    cover = (P > 0).sum(0)
    assert cover.min() == cover.max() == (size // stride) ** 2


def test_wrap_connects_opposite_edges():
    P = GroupSpec(map_shape=(5, 5), size=3, wrap=True).pool_matrix()
    pool = P[4 * 5 + 4].reshape(5, 5)  # window starting at the bottom-right corner
    assert pool[0, 0] == 1 and pool[4, 4] == 1 and pool[2, 2] == 0


def test_no_wrap_windows_hang_over_the_edges_so_every_unit_is_pooled_alike():
    """Without wrap, windows start k − 1 units before the map: with stride 1 every unit, on the
    edge or in the middle, lies in k² windows with the same weights (an edge unit in fewer
    pools would be cheaper to use, and the edges would take the map over)."""
    spec = GroupSpec(map_shape=(7, 6), size=3, stride=1, wrap=False, sigma=1.0)
    P = spec.pool_matrix()
    assert P.shape == (9 * 8, 42)  # (7 + 2) × (6 + 2) windows
    assert ((P > 0).sum(0) == 9).all()
    np.testing.assert_allclose(P.sum(0), P.sum(0)[0], rtol=1e-6)  # the same total weight
    corner = P[0].reshape(7, 6)  # the window starting at (−2, −2) holds only unit (0, 0)
    assert np.count_nonzero(corner) == 1 and corner[0, 0] == pytest.approx(np.exp(-1.0))
    # stride 2: 5 × 5 windows from −2, all inside the map or hanging over it, none empty
    P2 = GroupSpec(map_shape=(7, 7), size=3, stride=2, wrap=False).pool_matrix()
    assert P2.shape == (25, 49) and (P2.sum(1) > 0).all() and (P2.sum(0) > 0).all()


def test_gaussian_weights_peak_in_the_centre():
    P = GroupSpec(map_shape=(8, 8), size=5, sigma=1.0).pool_matrix()
    w = P[0].reshape(8, 8)[:5, :5]
    assert w[2, 2] == pytest.approx(1.0) and w[0, 0] == pytest.approx(np.exp(-4.0))
    assert np.allclose(w, w.T)


def test_explicit_groups_and_none():
    spec = GroupSpec(kind="list", map_shape=(1, 4), groups=((0, 1), (1, 2, 3)))
    assert spec.pool_matrix().tolist() == [[1, 1, 0, 0], [0, 1, 1, 1]]
    assert np.array_equal(GroupSpec(kind="none", map_shape=(2, 2)).pool_matrix(), np.eye(4))


@pytest.mark.parametrize("kw,msg", [
    ({"map_shape": (4, 4), "size": 5}, "larger than the 4×4 map"),
    ({"kind": "blocks", "map_shape": (5, 5), "size": 2}, "do not tile"),
    ({"size": 3, "stride": 4}, "stride 4 is larger"),
    ({"sigma": 0.0}, "sigma must be positive"),
    ({"kind": "list", "map_shape": (1, 3), "groups": ((0, 1),)}, "in no group"),
    ({"kind": "list", "map_shape": (1, 3), "groups": ((0, 5),)}, "outside"),
    ({"kind": "hexagons"}, "group kind"),
    ({"map_shape": (0, 4)}, "map_shape"),
])
def test_bad_specs_give_clear_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg):
        GroupSpec(**kw)


def test_spec_round_trips_through_json_dict():
    spec = GroupSpec(kind="list", map_shape=(1, 3), groups=((0, 1), (2,)))
    assert from_dict(GroupSpec, to_dict(spec)) == spec


def test_overlay_counts_coverage_and_shows_one_pool():
    spec = GroupSpec(map_shape=(6, 6), size=3, stride=1)
    assert np.all(pool_overlay(spec) == 9)
    one = pool_overlay(spec, 0)
    assert one.shape == (6, 6) and one.sum() == 9
    with pytest.raises(IndexError):
        pool_overlay(spec, 36)
    assert "36 pools of 3×3" in spec.describe()


def test_square_map_shape():
    assert square_map_shape(256) == (16, 16)
    assert square_map_shape(12) == (3, 4)
    assert square_map_shape(7) == (1, 7)
