"""Layout: how a model's units are arranged, the grid they are drawn on, and whether they form
a 2-D map that orientation-map measures apply to (and if not, why)."""

import pytest

from sparse_models.config import ConfigError
from sparse_models.models.base import Layout, square_shape


@pytest.mark.parametrize("n, shape", [(0, (0, 0)), (1, (1, 1)), (12, (3, 4)), (16, (4, 4)),
                                      (7, (1, 7)), (18, (3, 6))])
def test_square_shape_is_exact_and_as_square_as_possible(n, shape):
    assert square_shape(n) == shape


def test_map_grid_is_the_map_itself():
    lay = Layout("map", (4, 6), wrap=True)
    assert lay.n_units == 24
    assert lay.grid_shape(24) == (4, 6)
    assert lay.map_shape() == ((4, 6), "")


def test_a_one_row_map_is_a_strip_not_an_orientation_map():
    shape, why = Layout("map", (1, 8)).map_shape()
    assert shape is None
    assert "1×8 strip" in why and "at least 2 rows and 2 columns" in why


def test_only_a_sheet_with_several_units_a_position_has_position_blocks():
    assert Layout("sheet", (2, 3), per_position=6).position_blocks() == (2, 3)
    assert Layout("sheet", (2, 3), per_position=1).position_blocks() is None
    assert Layout("map", (4, 4), per_position=4).position_blocks() is None


def test_sheet_grid_draws_each_positions_units_as_a_block():
    lay = Layout("sheet", (3, 2), per_position=4, stride_px=4)  # 3×2 positions, 4 units at each
    assert lay.n_units == 24 and lay.block() == (2, 2)
    assert lay.grid_shape(24) == (6, 4)
    assert lay.map_shape() == ((6, 4), "")
    # map cell (3, 2) = unit 14 sits at position (3 // 2, 2 // 2) = (1, 1)
    assert tuple(lay.unit_positions()[14]) == (1, 1)
    assert lay.px_per_map_unit == 2.0  # 4 px between positions, 2 units across each
    assert Layout("sheet", (2, 3), per_position=1).grid_shape(6) == (2, 3)
    assert Layout("sheet", (2, 3), per_position=2).grid_shape(12) == (2, 6)  # 1×2 blocks


def test_a_sheet_of_single_units_in_one_row_is_a_strip():
    lay = Layout("sheet", (1, 5))
    assert lay.grid_shape(5) == (1, 5)
    shape, why = lay.map_shape()
    assert shape is None and "1×5 strip" in why


def test_tree_and_none_are_drawn_near_square_and_have_no_map():
    tree = Layout("tree", parents=(-1, 0, 0, 1, 1, 2))
    assert tree.n_units == 6 and tree.grid_shape(6) == (2, 3)
    assert tree.map_shape() == (None, "its units form a tree, not a 2-D map")
    none = Layout("none")
    assert none.n_units is None
    assert none.grid_shape(12) == (3, 4) and none.grid_shape(7) == (1, 7)
    assert none.map_shape() == (None, "its units have no spatial layout")


@pytest.mark.parametrize("kwargs, message", [
    ({"kind": "ring"}, "layout kind must be"),
    ({"kind": "map", "shape": (0, 4)}, "positive shape"),
    ({"kind": "sheet"}, "positive shape"),  # the default shape (0, 0)
    ({"kind": "sheet", "shape": (2, 2), "per_position": 0}, "per_position"),
])
def test_bad_layouts_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Layout(**kwargs)
