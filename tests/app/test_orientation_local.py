"""The Orientation page for the lateral-inhibition model: a local S draws its map with the
controls and says that inhibition, not pools, orders it; a tree run says why there is no map
and how to get one, without a crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app_ui.testing import cli_train, open_app, private_runs

TINY = ["model.n_iter=10", "data.source=gratings", "data.patch_size=6", "data.n_patches=128",
        "train.steps=4", "train.batch_size=32", "train.log_every=2", "train.snapshot_every=2"]


@pytest.fixture(scope="module")
def lateral_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with private_runs(tmp_path_factory.mktemp("runs")) as runs:
        cli_train(runs, "lateral", "local", [*TINY, "model.structure=local",
                                             "model.map_shape=[6,6]", "model.radius=1.5"])
        cli_train(runs, "lateral", "tree", [*TINY, "model.depth=2", "model.branching=3",
                                            "model.n_trees=2"])
        yield runs


def test_a_local_lateral_run_is_drawn_as_a_map_ordered_by_inhibition(lateral_runs: Path) -> None:
    at = open_app("../pages/orientation.py", 60, run="local")
    assert not at.exception, [e.message for e in at.exception]
    info = "\n".join(i.value for i in at.info)
    assert "lateral inhibition" in info and "6×6 map" in info and "fire together" in info
    assert "salt and pepper" not in info  # it is not the no-pools baseline
    rows = dict(zip(at.table[0].value.iloc[:, 0], at.table[0].value.iloc[:, 1], strict=True))
    assert {"This map", "Shuffled map", "Random field", "Visual cortex"} <= set(rows)
    assert "Pinwheels" in {m.label for m in at.metric}
    assert not any("Retinotopy" in s.value for s in at.subheader)  # patches, not a sheet


def test_a_tree_lateral_run_says_there_is_no_map_and_how_to_get_one(lateral_runs: Path) -> None:
    at = open_app("../pages/orientation.py", 60, run="tree")
    assert not at.exception, [e.message for e in at.exception]
    info = "\n".join(i.value for i in at.info)
    assert "tree, not a 2-D map" in info and "Tree page" in info
    assert "structure=local" in info
    assert not at.table and not at.metric  # nothing drawn


@pytest.mark.parametrize("page", ["../pages/filters.py", "../pages/compare.py"])
def test_other_pages_say_inhibition_orders_a_local_lateral_map(lateral_runs: Path,
                                                               page: str) -> None:
    at = open_app(page, 60, run="local")
    assert not at.exception, [e.message for e in at.exception]
    captions = "\n".join(c.value for c in at.caption)
    assert "only lateral inhibition can order them" in captions
    assert "no particular order" not in captions and "salt-and-pepper" not in captions
