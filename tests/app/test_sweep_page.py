"""AppTest of the Sweep page: the shipped sweep on first load and a bad definition in words
(a sweep launched from the page is in test_sweep_browser.py, in a real browser)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app_ui.testing import open_app, private_runs
from sparse_models.sweep import list_sweeps, read_sweep, trial_rows
from sparse_models.training.runs import SHIPPED_DIR

PAGE = "../pages/sweep.py"
SHIPPED_SWEEP = "pool-lam"


@pytest.fixture(scope="module")
def empty_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with private_runs(tmp_path_factory.mktemp("runs")) as runs:
        yield runs


def texts(at) -> str:
    parts = []
    for kind in ("title", "markdown", "caption", "info", "success", "warning", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts).replace("\\", "")  # markdown escapes, as the reader sees it


def test_the_shipped_sweep_fills_the_page_on_first_load(empty_runs: Path) -> None:
    at = open_app(PAGE, 60)
    assert not at.exception
    assert "Sweep" in [t.value for t in at.title]
    picker = at.selectbox(key="sweep")
    assert picker.value == SHIPPED_SWEEP
    sweep = read_sweep(SHIPPED_DIR / ".sweeps" / SHIPPED_SWEEP)
    table = at.dataframe[0].value
    assert len(table) == len(sweep.trials) == 8
    assert set(table["state"]) == {"completed"}
    # the default plot: pinwheel density against the pool size, one line per λ
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "pinwheel_density against model.group.size" in spec["layout"]["title"]["text"]
    lines = [t for t in spec["data"] if t.get("mode") == "lines+markers"]
    assert len(lines) == 2 and all(len(t["x"]) == 2 for t in lines)
    rows = trial_rows(sweep)
    for trace in lines:  # each point is the mean over the two seeds of the trials' values
        lam = float(trace["name"].split("= ")[1])
        for x, y in zip(trace["x"], trace["y"], strict=True):
            vals = [r["pinwheel_density"] for r in rows
                    if r["model.group.size"] == x and r["model.lam"] == lam]
            assert len(vals) == 2 and y == pytest.approx(sum(vals) / 2)


def test_a_bad_definition_is_refused_in_words(empty_runs: Path) -> None:
    at = open_app(PAGE, 60)
    at.text_input(key="sweep_values_topographic_model.group.size").input("3,5")
    at.text_input(key="sweep_values_topographic_model.lam").input("0.1,abc")
    at.button(key="sweep_launch").click().run()
    assert not at.exception
    assert "Could not launch: trial t002 (model.group.size=3, model.lam=abc)" in texts(at)
    assert "model.lam must be a number, got 'abc'" in texts(at)
    assert list_sweeps([empty_runs]) == []  # nothing was made


def test_trials_a_stopped_sweep_cut_short_read_as_stopped_not_running(tmp_path: Path) -> None:
    """A sweep stopped while two trials ran: the page counts them as stopped (nothing runs) and
    offers to resume it."""
    from sparse_models.sweep import SweepSpec, create_sweep, expand
    from sparse_models.sweep.store import append_event, sweeps_dir, update_status

    with private_runs(tmp_path / "runs") as runs:
        spec = SweepSpec("topographic", grid={"model.lam": [0.1, 0.2, 0.3]})
        trials, fixed, keys = expand(spec, "cut", max_trials=None)
        sweep = create_sweep(sweeps_dir(runs), "cut", spec, trials, fixed, ("train.seed",), runs)
        for t in trials[:2]:
            append_event(sweep.path, {"trial": t.id, "state": "running", "run": t.run})
        update_status(sweep.path, state="stopped")
        at = open_app(PAGE, 60)
        at.selectbox(key="sweep").set_value("cut").run()
        assert not at.exception
        assert list(at.dataframe[0].value["state"]) == ["stopped", "stopped", "pending"]
        progress = [p.proto.text for p in at.get("progress")]
        assert any("2 stopped" in t and "0 running" in t and "sweep stopped" in t
                   for t in progress), progress
        assert "The sweep is stopped with 3 trials unfinished." in texts(at)
        assert at.button(key="sweep_resume")
