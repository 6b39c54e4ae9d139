"""The Orientation page for a sheet over images: Λ in pixels, the density against its controls
(shuffled, random field, over seeds), the orientation histogram, the density curve and the
retinotopy view; a patch model gets the controls but no retinotopy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app_ui.testing import cli_train, open_app, private_runs

SHEET = ["data.crop=24", "data.n_crops=256", "data.images=[\"camera\"]", "model.receptive_field=6",
         "model.stride=3", "model.per_position=4", "model.pool_size=3", "train.steps=6",
         "train.batch_size=32", "train.log_every=3", "train.snapshot_every=3", "train.threads=1"]


@pytest.fixture(scope="module")
def sheet_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Two sheets with the same settings but their seeds, and a third with another λ."""
    with private_runs(tmp_path_factory.mktemp("runs")) as runs:
        cli_train(runs, "sheet", "sheet-a", SHEET)
        cli_train(runs, "sheet", "sheet-b", [*SHEET, "model.seed=1", "data.seed=1"])
        cli_train(runs, "sheet", "sheet-other", [*SHEET, "model.lam=0.2"])
        _lattice_run(runs)
        cli_train(runs, "topographic", "topo", ["model.group.map_shape=[6,6]",
                                                "model.group.size=3", "data.n_patches=256",
                                                "train.steps=6", "train.batch_size=32",
                                                "train.threads=1"])
        yield runs


def _lattice_run(runs: Path) -> None:
    """A block-layout sheet (smooth retinotopy off) whose filters are painted as a lattice with
    one pinwheel at each position's centre, saved as its run's weights."""
    from sparse_models.training.runs import load_run
    from sparse_models.training.runs.writer import RunWriter
    from tests.analysis.test_retinotopy import paint_lattice

    path = cli_train(runs, "sheet", "sheet-blocks", [
        "data.crop=20", "data.n_crops=64", "data.images=[\"camera\"]", "model.receptive_field=8",
        "model.stride=4", "model.per_position=36", "model.pool_size=2",
        "model.smooth_retinotopy=false", "train.steps=2", "train.batch_size=16",
        "train.snapshot_every=0", "train.threads=1"])
    run = load_run(path)
    paint_lattice(run.model)
    RunWriter(path).save_weights(run.model, run.weights_step)
    (path / "analysis.json").unlink(missing_ok=True)


def _table(at) -> dict[str, str]:
    df = at.table[0].value
    return dict(zip(df.iloc[:, 0], df.iloc[:, 1], strict=True))


def test_a_sheet_shows_its_controls_seeds_and_retinotopy(sheet_runs: Path) -> None:
    at = open_app("../pages/orientation.py", 60, run="sheet-a")
    assert not at.exception, [e.message for e in at.exception]
    rows = _table(at)
    assert {"This map", "Over seeds", "Shuffled map", "Random field", "Visual cortex"} <= set(rows)
    assert "±" in rows["Over seeds"]  # sheet-b is the same experiment with other seeds
    this = [m for m in at.metric if m.label == "Pinwheels per Λ²"][0].value
    assert rows["This map"] == this  # one number, the same in both places
    captions = "\n".join(c.value for c in at.caption)
    assert "image pixels" in captions and "over 2 runs" in "\n".join(
        str(v) for v in at.table[0].value.iloc[:, 2])
    labels = {m.label for m in at.metric}
    assert {"Pixels per map unit", "R²", "Scatter"} <= labels
    subheaders = [s.value for s in at.subheader]
    assert any("Retinotopy" in s for s in subheaders)


def test_a_run_with_no_seed_siblings_says_how_to_get_the_spread(sheet_runs: Path) -> None:
    at = open_app("../pages/orientation.py", 60, run="sheet-other")
    assert not at.exception, [e.message for e in at.exception]
    rows = _table(at)
    assert rows["Over seeds"] == "—"


def test_a_patch_map_has_controls_but_no_retinotopy(sheet_runs: Path) -> None:
    at = open_app("../pages/orientation.py", 60, run="topo")
    assert not at.exception, [e.message for e in at.exception]
    assert "Random field" in _table(at)
    assert not any("Retinotopy" in s.value for s in at.subheader)


def test_the_shipped_sheet_says_where_its_pinwheels_sit(sheet_runs: Path) -> None:
    """The shipped sheet's fields drift smoothly across its map (smooth retinotopy), so its
    pinwheels are not tied to its positions' centres; the page says what share lies there,
    against chance, and it is the share `analyze` stored for the run (one number)."""
    from sparse_models.training.runs import REPO_ROOT, load_run

    at = open_app("../pages/orientation.py", 60, run="sheet-pinwheels")
    assert not at.exception, [e.message for e in at.exception]
    (stored,) = load_run(REPO_ROOT / "checkpoints" / "sheet-pinwheels").read_analysis()[
        "entries"].values()
    share = stored["pinwheels_at_position_centres"]
    chance = stored["pinwheels_at_position_centres_chance"]
    assert share < 2 * chance  # pinwheels anywhere, not one a position
    (caption,) = [c.value for c in at.caption if "Where the pinwheels sit" in c.value]
    assert f"{share:.0%} of them" in caption and f"({chance:.0%} would" in caption
    assert "not tied to the positions" in caption and "winding once" not in caption


def test_a_block_layout_sheet_says_its_pinwheels_sit_at_its_positions(sheet_runs: Path) -> None:
    """Without smooth retinotopy a position's units wind round its centre: the page says so."""
    at = open_app("../pages/orientation.py", 60, run="sheet-blocks")
    assert not at.exception, [e.message for e in at.exception]
    (caption,) = [c.value for c in at.caption if "Where the pinwheels sit" in c.value]
    # a 24×24 map of 6×6 blocks: 12 of the 23 plaquette centres a side lie within 1 of a centre
    assert "100% of them" in caption and f"({(12 / 23) ** 2:.0%} would" in caption
    assert "winding once round its centre" in caption and "4 pinwheels per Λ²" in caption


def test_a_patch_map_does_not_say_where_positions_are(sheet_runs: Path) -> None:
    at = open_app("../pages/orientation.py", 60, run="topo")
    assert not at.exception, [e.message for e in at.exception]
    assert not any("Where the pinwheels sit" in c.value for c in at.caption)
