"""AppTest of every page: renders with real runs, trains a tiny job, shows bad input plainly.

Two tiny runs (a topographic map and plain sparse coding, a few seconds each) are trained once
per module into a private runs folder ($SPARSE_LAB_RUNS); shipped runs in checkpoints/ are
listed beside them and rendered too when present.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_ui.testing import cli_train, open_app, private_runs
from sparse_models.cli import main as cli_main
from sparse_models.training.runs import RUNS_ENV, list_runs
from sparse_models.training.runs import SHIPPED_DIR as SHIPPED

TIMEOUT = 60  # seconds per script run: the first run imports torch and analyses a run
TINY = ["data.n_patches=512", "train.batch_size=64", "train.log_every=5",
        "train.snapshot_every=10", "train.threads=1"]
PAGES = {  # page file (relative to the main script) -> text a user sees on it when all is well
    "../pages/overview.py": "Sparse Feature Lab",
    "../pages/train.py": "Train",
    "../pages/filters.py": "Filters",
    "../pages/orientation.py": "Orientation map & pinwheels",
    "../pages/sparsity.py": "Sparsity",
    "../pages/compare.py": "Compare",
    "../pages/tree.py": "Tree",
    "../pages/drsae.py": "DrSAE",
    "../pages/conv.py": "Convolutional",
    "../pages/sweep.py": "Sweep",
}


@pytest.fixture(scope="module")
def lab_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A runs folder with 'tiny-topo' (8×8 torus, 3×3 pools) and 'tiny-sc' (64 units)."""
    with private_runs(tmp_path_factory.mktemp("runs")) as runs:
        cli_train(runs, "topographic", "tiny-topo",
                  [*TINY, "model.group.map_shape=[8,8]", "model.group.size=3", "train.steps=60"])
        cli_train(runs, "sparse_coding", "tiny-sc", [*TINY, "model.n_units=64", "train.steps=20"])
        yield runs


@pytest.fixture(autouse=True)
def _no_job_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test on `lab_runs`, its jobs are stopped, waited for and cleared. A fresh Train
    page follows the newest job, so a job a test leaves behind (e.g. one that collapsed, as the
    5-step job at learning rate 0.5 does) would show its message on the next test's page, and
    which test comes next differs on each of the suite's two workers."""
    yield
    if "lab_runs" not in request.fixturenames:
        return
    from app_ui.jobs import _manager_for

    manager = _manager_for(str(request.getfixturevalue("lab_runs")))
    for job in manager.jobs():
        if not job.done:
            manager.stop(job.id)
        manager.wait(job.id, timeout=60)
    manager.clear_finished()
    assert not manager.jobs(), "a job of this test did not end within 60 s of being stopped"


def app(page: str | None = None, run: str | None = None, **query: str) -> AppTest:
    return open_app(page, TIMEOUT, **({"run": run} if run is not None else {}), **query)


def texts(at: AppTest) -> str:
    """All text a user reads on the page (markdown, captions, messages, titles)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "success",
                 "warning", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def chart_texts(at: AppTest, index: int = 0) -> list[str]:
    """Every string in a Plotly chart's figure (titles, annotations, hover text), read from its
    JSON: how Plotly writes the JSON (e.g. "σ" or "\\u03c3") depends on whether orjson is
    installed."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(json.loads(at.get("plotly_chart")[index].proto.spec))
    return found


def by_label(widgets, label: str):
    found = [w for w in widgets if w.label == label]
    assert found, f"no widget labelled {label!r}; have {[w.label for w in widgets]}"
    return found[0]


def no_trouble(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


# --- every page renders -------------------------------------------------------------------


def shipped_runs() -> list[str]:
    return [r.name for r in list_runs([SHIPPED]) if r.state == "completed"]


def shipped_runs_to_render() -> list[str]:
    """The shipped runs, with one trial standing for each shipped sweep (its other trials are
    the same model at other settings: rendering each on every page adds a minute, not cover)."""
    from sparse_models.sweep import list_sweeps, read_sweep

    others = {t.run for info in list_sweeps([SHIPPED]) if info.state != "broken"
              for t in read_sweep(info.path).trials[1:]}
    return [name for name in shipped_runs() if name not in others]


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("run", ["tiny-topo", "tiny-sc"])
def test_every_page_renders_a_tiny_run(lab_runs: Path, page: str, run: str) -> None:
    at = app(page, run)
    no_trouble(at)
    assert at.selectbox(key="run").value == run
    assert PAGES[page] in [t.value for t in at.title]
    assert any("Device:" in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize("run", shipped_runs_to_render() or [pytest.param("", marks=pytest.mark.skip(
    reason="no shipped runs in checkpoints/ yet"))])
def test_every_page_renders_a_shipped_run(lab_runs: Path, run: str) -> None:
    at = app(run=run)
    for page in PAGES:
        at.switch_page(page)
        at.run()
        no_trouble(at)
        assert at.selectbox(key="run").value == run


def test_picker_lists_user_runs_and_shipped_runs(lab_runs: Path) -> None:
    at = app()
    options = at.selectbox(key="run").options
    assert {"tiny-topo", "tiny-sc"} <= set(options)
    assert set(shipped_runs()) <= set(options)
    # with no shipped run, the default is the user's topographic run, not sparse coding
    if not shipped_runs():
        assert at.selectbox(key="run").value == "tiny-topo"


# --- what each page shows -----------------------------------------------------------------


def test_orientation_page_shows_pinwheel_numbers_and_reacts_to_smoothing(lab_runs: Path) -> None:
    at = app("../pages/orientation.py", "tiny-topo", orientation_smooth="0.5")
    no_trouble(at)
    labels = [m.label for m in at.metric]
    assert {"Column spacing Λ", "Pinwheels", "Pinwheels per Λ²", "Shuffled map"} <= set(labels)
    slider = at.slider(key="orientation_smooth")
    assert slider.value == 0.5  # from the URL: a link reproduces the view
    assert any("pinwheels at σ = 0.5" in t for t in chart_texts(at))
    slider.set_value(2.0).run()
    no_trouble(at)
    assert any("pinwheels at σ = 2" in t for t in chart_texts(at))


def test_orientation_page_says_a_plain_model_has_no_topography(lab_runs: Path) -> None:
    at = app("../pages/orientation.py", "tiny-sc")
    no_trouble(at)
    # Its model declares no spatial layout: the page says so instead of drawing a map whose
    # order means nothing, and draws no orientation chart.
    assert "units have no spatial layout" in texts(at)
    assert "no orientation map" in texts(at)
    assert not at.get("plotly_chart")


def test_filters_page_shows_unit_details_and_replays_training(lab_runs: Path) -> None:
    at = app("../pages/filters.py", "tiny-topo", filters_unit="5")
    no_trouble(at)
    assert at.number_input(key="filters_unit").value == 5
    assert "Unit 5" in texts(at) and "row 0, column 5" in texts(at)
    assert {"Firing rate", "Orientation", "Selectivity"} <= {m.label for m in at.metric}
    time = at.select_slider(key="filters_time")
    assert time.options[0] == "step 0" and time.value.startswith("final")
    time.set_value("step 10").run()
    no_trouble(at)
    assert any("step 10" in t for t in chart_texts(at))


def _unit_metric(at: AppTest, label: str) -> str:
    return next(str(m.value) for m in at.metric if m.label == label)


def test_the_replay_at_step_0_shows_step_0_numbers_everywhere(lab_runs: Path) -> None:
    import numpy as np

    from sparse_models.analysis import preferred_orientation
    from sparse_models.training.runs import load_run

    run = load_run(lab_runs / "tiny-topo")
    steps, snaps, _ = run.snapshots()
    theta0, _ = preferred_orientation(snaps[0][:, 0])
    theta_end, _ = preferred_orientation(run.filters()[:, 0])
    unit = int(np.argmax(np.abs(np.degrees(theta0) - np.degrees(theta_end)) % 180 > 20))
    at = app("../pages/filters.py", "tiny-topo", filters_unit=str(unit), filters_time="step 0")
    no_trouble(at)
    assert at.select_slider(key="filters_time").value == "step 0"  # from the URL
    # The unit panel and the hover follow the replay, not the final weights.
    assert _unit_metric(at, "Orientation") == f"{np.degrees(theta0[unit]):.0f}°"
    assert _unit_metric(at, "Firing rate") == "—"
    import base64

    figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    packed = next(f for f in figures if len(f["data"]) == 2)["data"][1]["customdata"]
    rows, cols = (int(v) for v in packed["shape"].split(","))
    hover = np.frombuffer(base64.b64decode(packed["bdata"]), dtype=packed["dtype"]).reshape(
        rows, cols)  # per unit: index, row, col, θ, selectivity (Plotly's packed array)
    assert abs(hover[unit][3] - np.degrees(theta0[unit])) < 1e-3
    at.select_slider(key="filters_time").set_value(at.select_slider(key="filters_time")
                                                   .options[-1]).run()
    assert _unit_metric(at, "Orientation") == f"{np.degrees(theta_end[unit]):.0f}°"
    assert _unit_metric(at, "Firing rate") != "—"


def test_the_orientation_map_replays_training(lab_runs: Path) -> None:
    at = app("../pages/orientation.py", "tiny-topo", orientation_time="step 0")
    no_trouble(at)
    assert at.select_slider(key="orientation_time").value == "step 0"
    assert any("tiny-topo, step 0, pinwheels" in t for t in chart_texts(at))
    final = at.select_slider(key="orientation_time").options[-1]
    at.select_slider(key="orientation_time").set_value(final).run()
    assert any(t.startswith("tiny-topo, pinwheels") for t in chart_texts(at))


def test_play_advances_the_replay(lab_runs: Path) -> None:
    at = app("../pages/filters.py", "tiny-topo", filters_time="step 0")
    at.button(key="filters_play_button").click().run()
    assert at.session_state["filters_playing"]
    # The fragment's timer is not driven by AppTest: a run of the page a tick later is a tick.
    assert at.select_slider(key="filters_time").value == "step 10"
    time.sleep(0.8)
    at.run()
    assert at.select_slider(key="filters_time").value == "step 20"
    at.button(key="filters_play_button").click().run()
    assert not at.session_state["filters_playing"]


def test_sparsity_page_compares_group_sparsity_with_l1(lab_runs: Path) -> None:
    at = app("../pages/sparsity.py", "tiny-topo")
    no_trouble(at)
    assert {"Active units per patch", "Hoyer sparseness", "Dead units"} <= \
        {m.label for m in at.metric}
    assert at.selectbox(key="sparsity_other").value == "tiny-sc"
    table = at.dataframe[0].value
    assert "clustering: active / scattered pools (< 1: clustered)" in table.index


def test_compare_page_highlights_differences(lab_runs: Path) -> None:
    at = app("../pages/compare.py", "tiny-topo")
    no_trouble(at)
    assert at.selectbox(key="compare_a").value == "tiny-topo"
    assert at.selectbox(key="compare_b").value != "tiny-topo"
    assert "Settings that differ" in texts(at)


# --- bad input ----------------------------------------------------------------------------


def test_impossible_group_structure_is_explained_and_start_disabled(lab_runs: Path) -> None:
    at = app("../pages/train.py")
    by_label(at.number_input, "Map rows").set_value(4)
    by_label(at.number_input, "Map columns").set_value(4)
    by_label(at.slider, "Pool size k (k×k)").set_value(5)
    at.run()
    assert not at.exception
    assert any("neighbourhood 5×5 is larger than the 4×4 map" in e.value for e in at.error)
    assert at.button(key="train_start").disabled

    by_label(at.selectbox, "Pool type").set_value("blocks")
    by_label(at.number_input, "Map rows").set_value(16)
    by_label(at.number_input, "Map columns").set_value(16)
    by_label(at.slider, "Pool size k (k×k)").set_value(5)
    at.run()
    assert any("do not tile" in e.value for e in at.error)
    assert at.button(key="train_start").disabled

    by_label(at.slider, "Pool size k (k×k)").set_value(4)
    at.run()
    assert not at.error and not at.button(key="train_start").disabled


def test_broken_run_folder_gives_a_message_not_a_traceback(lab_runs: Path) -> None:
    broken = lab_runs / "broken-run"
    broken.mkdir(exist_ok=True)
    (broken / "config.json").write_text("{ not json")
    try:
        for page in ("../pages/filters.py", "../pages/orientation.py"):
            at = app(page, "broken-run")
            assert not at.exception
            assert any("cannot be used" in e.value for e in at.error)
    finally:
        (broken / "config.json").unlink()
        broken.rmdir()


# --- training from the page ---------------------------------------------------------------


def tiny_train_page(steps: int) -> AppTest:
    """The Train page set up for a small job: an 8×8 map, 3×3 pools, 512 patches, batch 64."""
    at = app("../pages/train.py")
    by_label(at.number_input, "Map rows").set_value(8)
    by_label(at.number_input, "Map columns").set_value(8)
    by_label(at.slider, "Pool size k (k×k)").set_value(3)
    by_label(at.number_input, "Patches").set_value(512)
    by_label(at.number_input, "Steps").set_value(steps)
    by_label(at.number_input, "Batch size").set_value(64)
    return at


def test_train_page_runs_a_tiny_job_that_becomes_selectable(lab_runs: Path) -> None:
    from app_ui.jobs import _manager_for

    at = tiny_train_page(steps=20)
    at.text_input(key="train_name").set_value("app-job")
    at.run()
    no_trouble(at)
    at.button(key="train_start").click().run()
    no_trouble(at)
    job_id = at.session_state["train_job"]
    status = _manager_for(str(lab_runs)).wait(job_id, timeout=60)
    assert status.state == "completed", status.error
    assert status.name == "app-job" and (lab_runs / "app-job" / "weights.safetensors").exists()

    at.run()  # what the polling fragment triggers once the job has finished
    no_trouble(at)
    assert any("Finished app-job" in s.value for s in at.success)
    assert "step 20 / 20" in at.get("progress")[-1].proto.text or any(
        "step 20 / 20" in p.proto.text for p in at.get("progress"))
    assert "app-job" in at.selectbox(key="run").options

    at.button(key=f"train_show_{job_id}").click().run()  # "Show app-job on every page"
    at.run()
    assert at.selectbox(key="run").value == "app-job"
    at.switch_page("../pages/filters.py").run()
    no_trouble(at)
    assert at.selectbox(key="run").value == "app-job"


def test_what_if_retraining_starts_from_the_current_run(lab_runs: Path) -> None:
    from app_ui.jobs import _manager_for

    at = app("../pages/train.py", "tiny-topo")
    at.radio(key="train_start_topographic").set_value(
        "The current run's weights (tiny-topo)").run()
    no_trouble(at)
    assert by_label(at.number_input, "Map rows").disabled  # the weights fix the map size
    assert by_label(at.number_input, "Patch size (px)").disabled  # and the patch size
    by_label(at.slider, "Pool size k (k×k)").set_value(5)
    by_label(at.number_input, "Steps").set_value(10)
    at.run()
    assert any("model.group.size 3 → 5" in c.value for c in at.caption)
    at.button(key="train_start").click().run()
    no_trouble(at)
    status = _manager_for(str(lab_runs)).wait(at.session_state["train_job"], timeout=60)
    assert status.state == "completed", status.error


def test_stop_button_stops_a_running_job(lab_runs: Path) -> None:
    from app_ui.jobs import _manager_for

    at = tiny_train_page(steps=100_000)
    at.run()
    at.button(key="train_start").click().run()
    no_trouble(at)
    job_id = at.session_state["train_job"]
    assert not at.button(key="train_stop").disabled
    at.button(key="train_stop").click().run()
    status = _manager_for(str(lab_runs)).wait(job_id, timeout=60)
    assert status.state == "stopped" and status.step < 100_000
    at.run()
    assert any("Stopped" in w.value for w in at.warning)
    assert at.button(key="train_stop").disabled


def test_sparsity_comparison_with_a_run_of_another_size_leaves_pools_out(lab_runs: Path) -> None:
    at = app("../pages/sparsity.py", "tiny-topo")
    others = at.selectbox(key="sparsity_other").options
    bigger = [o for o in others if o != "tiny-sc"]
    if not bigger:
        pytest.skip("no plain-L1 run with another number of units (e.g. a shipped one)")
    at.selectbox(key="sparsity_other").set_value(bigger[0]).run()
    no_trouble(at)
    assert "pool statistics are left out" in texts(at)


def test_a_missing_image_folder_keeps_start_disabled_with_its_message(lab_runs: Path) -> None:
    at = app("../pages/train.py")
    by_label(at.selectbox, "Data").set_value("folder").run()
    at.text_input(key=by_label(at.text_input, "Image folder").key).set_value(
        str(lab_runs / "no-such-folder")).run()
    assert not at.exception
    shown = [e.value.replace("\\", "") for e in at.error]  # Markdown escapes removed
    assert any("no-such-folder" in e and "does not exist" in e for e in shown), shown
    assert at.button(key="train_start").disabled


def test_a_failed_job_is_reported_in_the_page(lab_runs: Path, tmp_path: Path) -> None:
    from app_ui.jobs import _manager_for

    folder = tmp_path / "broken-images"
    folder.mkdir()
    (folder / "photo.png").write_bytes(b"not a png")  # there, so Start is enabled; unreadable
    at = app("../pages/train.py")
    by_label(at.selectbox, "Data").set_value("folder").run()
    at.text_input(key=by_label(at.text_input, "Image folder").key).set_value(str(folder))
    by_label(at.number_input, "Steps").set_value(5)
    at.run()
    at.button(key="train_start").click().run()
    assert not at.exception
    status = _manager_for(str(lab_runs)).wait(at.session_state["train_job"], timeout=60)
    assert status.state == "failed"
    at.run()
    assert not at.exception
    assert any("failed" in e.value and "photo" in e.value for e in at.error)


@pytest.mark.parametrize("label, value, words", [
    ("Map rows", 100, "Map rows must be at most 48, got 100"),
    ("λ (sparsity weight)", -1.0, "λ (sparsity weight) must be at least 0, got -1"),
    ("Steps", 0, "Steps must be at least 1, got 0"),
    ("Steps", -5, "Steps must be at least 1, got -5"),
    ("Batch size", 100_000, "Batch size must be at most 65536, got 100000"),
    ("Batch size", 30_000, "larger than the number of training samples (20000)"),
])
def test_an_out_of_range_value_keeps_start_disabled_with_its_message(
        lab_runs: Path, label: str, value: float, words: str) -> None:
    at = app("../pages/train.py")
    by_label(at.number_input, label).set_value(value).run()
    assert not at.exception
    shown = [e.value for e in at.error]
    assert any(words in e.replace("\\", "") for e in shown), shown
    assert at.button(key="train_start").disabled
    # The field keeps what was typed: nothing is silently put back.
    assert by_label(at.number_input, label).value == value


def test_a_value_in_range_is_the_value_trained(lab_runs: Path) -> None:
    from app_ui.jobs import _manager_for

    at = app("../pages/train.py")
    for label, value in (("Map rows", 6), ("Map columns", 6), ("Pool size k (k×k)", 3),
                         ("Patches", 512), ("Steps", 5), ("Batch size", 64),
                         ("Learning rate", 0.5), ("Warm-up (steps)", 2)):
        widgets = at.slider if label.startswith("Pool size") else at.number_input
        by_label(widgets, label).set_value(value)
    by_label(at.selectbox, "Rate decay").set_value("cosine")
    at.run()
    assert not at.button(key="train_start").disabled
    at.button(key="train_start").click().run()
    status = _manager_for(str(lab_runs)).wait(at.session_state["train_job"], timeout=60)
    config = json.loads((status.run_dir / "config.json").read_text())
    assert config["model_config"]["group"]["map_shape"] == [6, 6]
    assert config["train"]["lr"] == 0.5 and config["train"]["steps"] == 5
    assert config["train"]["lr_warmup"] == 2 and config["train"]["lr_decay"] == "cosine"


def test_settings_that_do_not_apply_are_disabled(lab_runs: Path) -> None:
    at = app("../pages/train.py")
    assert by_label(at.selectbox, "Inference").value == "amortized"
    assert by_label(at.number_input, "α (prediction weight)").disabled
    assert by_label(at.number_input, "Inference steps").disabled
    by_label(at.selectbox, "Inference").set_value("optimal").run()
    assert not by_label(at.number_input, "α (prediction weight)").disabled
    assert not by_label(at.number_input, "Inference steps").disabled


def test_a_shipped_run_name_is_refused(lab_runs: Path) -> None:
    at = app("../pages/train.py")
    at.text_input(key="train_name").set_value("Topographic-5x5").run()
    assert any("shipped example run" in e.value for e in at.error)
    assert at.button(key="train_start").disabled


def test_a_double_click_on_start_starts_one_job(lab_runs: Path) -> None:
    from app_ui.jobs import _manager_for

    manager = _manager_for(str(lab_runs))
    before = len(manager.jobs())
    at = app("../pages/train.py")
    for label, value in (("Map rows", 4), ("Map columns", 4), ("Patches", 512),
                         ("Steps", 3000), ("Batch size", 64)):
        by_label(at.number_input, label).set_value(value)
    by_label(at.slider, "Pool size k (k×k)").set_value(3)
    at.run()
    at.button(key="train_start").click().run()
    at.button(key="train_start").click().run()
    assert len(manager.jobs()) == before + 1  # (the fixture stops it afterwards)


def test_a_collapsed_run_is_not_reported_as_a_success(lab_runs: Path) -> None:
    from app_ui.jobs import _manager_for

    at = app("../pages/train.py")
    for label, value in (("Map rows", 8), ("Map columns", 8), ("Patches", 512), ("Steps", 40),
                         ("Batch size", 64), ("Learning rate", 1.0)):
        by_label(at.number_input, label).set_value(value)
    by_label(at.slider, "Pool size k (k×k)").set_value(3)
    at.text_input(key="train_name").set_value("too-fast")
    at.run()
    at.button(key="train_start").click().run()
    status = _manager_for(str(lab_runs)).wait(at.session_state["train_job"], timeout=60)
    assert status.state == "completed" and status.health["verdict"] == "collapsed"
    at.run()
    assert not at.success
    assert any("collapsed" in e.value and "every code is zero" in e.value for e in at.error)
    at.selectbox(key="run").set_value("too-fast").run()
    assert "collapsed" in texts(at)


def test_without_any_run_every_page_says_so(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import app_ui.runs

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(RUNS_ENV, str(empty))
    monkeypatch.setattr(app_ui.runs, "SHIPPED_DIR", tmp_path / "no-shipped-runs")
    at = app()
    no_trouble(at)
    assert "No finished topographic run yet" in texts(at)
    for page in ("../pages/filters.py", "../pages/orientation.py", "../pages/sparsity.py",
                 "../pages/compare.py"):
        at.switch_page(page).run()
        no_trouble(at)
        assert "Train" in texts(at) and ("no run yet" in texts(at).lower()
                                         or "needs two runs" in texts(at))
    at.switch_page("../pages/train.py").run()
    no_trouble(at)
    assert not at.button(key="train_start").disabled


def test_train_settings_live_in_the_url(lab_runs: Path) -> None:
    """A link carries the what-if settings (the browser writes them into the URL; that half is
    Streamlit's `bind`, seen in tests/app/test_browser.py's screenshots and by hand)."""
    at = app("../pages/train.py", train_topographic_scratch_size="3",
             train_topographic_scratch_rows="8", train_topographic_scratch_cols="8")
    assert not at.exception  # (jobs of earlier tests may still be listed, failed ones too)
    assert by_label(at.slider, "Pool size k (k×k)").value == 3
    assert by_label(at.number_input, "Map rows").value == 8
    assert "8×8" in texts(at) or "64 pools" in texts(at)  # the pool preview follows them


# --- managing runs ------------------------------------------------------------------------


def _shipped_fingerprint() -> dict[str, int]:
    return {str(p.relative_to(SHIPPED)): p.stat().st_mtime_ns
            for p in SHIPPED.rglob("*") if p.is_file()}


def _tiny_run(runs: Path, name: str, *extra: str) -> Path:
    args = ["train", "sparse_coding", "--out", str(runs), "--name", name, "--quiet"]
    for s in TINY + ["model.n_units=16", "train.steps=10", *extra]:
        args += ["--set", s]
    assert cli_main(args) == 0
    return runs / name


def test_a_run_is_renamed_and_deleted_from_the_sidebar(lab_runs: Path) -> None:
    before = _shipped_fingerprint()
    _tiny_run(lab_runs, "to-manage")
    at = app("../pages/filters.py", "to-manage")
    at.text_input(key="manage_new_name").set_value("managed").run()
    at.button(key="manage_rename").click().run()
    assert not at.exception
    assert at.selectbox(key="run").value == "managed"
    assert (lab_runs / "managed").is_dir() and not (lab_runs / "to-manage").exists()
    # Delete needs its confirmation first.
    assert at.button(key="manage_delete").disabled
    at.checkbox(key="manage_confirm_delete").check().run()
    at.button(key="manage_delete").click().run()
    assert not at.exception
    assert not (lab_runs / "managed").exists()
    assert "managed" not in at.selectbox(key="run").options
    assert _shipped_fingerprint() == before  # checkpoints/ untouched


def test_a_shipped_run_offers_no_management(lab_runs: Path) -> None:
    if not SHIPPED.is_dir() or not any(SHIPPED.iterdir()):
        pytest.fail("the shipped runs are missing from checkpoints/")
    name = next(p.name for p in sorted(SHIPPED.iterdir())
                if p.is_dir() and not p.name.startswith("."))  # .sweeps holds no run
    at = app("../pages/filters.py", name)
    assert at.selectbox(key="run").value == name
    keys = {w.key for w in at.button} | {w.key for w in at.checkbox}
    assert not keys & {"manage_delete", "manage_rename", "manage_resume"}


def test_a_stopped_run_is_resumed_from_the_sidebar(lab_runs: Path) -> None:
    from app_ui.jobs import _manager_for

    path = _tiny_run(lab_runs, "to-resume", "train.checkpoint_every=5")
    status = json.loads((path / "status.json").read_text())
    status.update(state="stopped", steps_done=5)
    (path / "status.json").write_text(json.dumps(status))
    config = json.loads((path / "config.json").read_text())
    config["train"]["steps"] = 20  # more steps to go, as a stopped run has
    (path / "config.json").write_text(json.dumps(config))
    at = app("../pages/filters.py", "to-resume")
    at.button(key="manage_resume").click().run()
    assert not at.exception
    job = next(j for j in _manager_for(str(lab_runs)).jobs() if j.name == "to-resume")
    done = _manager_for(str(lab_runs)).wait(job.id, timeout=60)
    assert done.state == "completed" and done.step == 20


def test_failed_runs_can_be_hidden_from_the_picker(lab_runs: Path) -> None:
    path = _tiny_run(lab_runs, "went-wrong")
    status = json.loads((path / "status.json").read_text())
    status.update(state="failed", error="made up for the test")
    (path / "status.json").write_text(json.dumps(status))
    at = app("../pages/overview.py", "tiny-topo")
    assert "went-wrong" in at.selectbox(key="run").options
    at.toggle(key="runs_hide_failed").set_value(True).run()
    assert "went-wrong" not in at.selectbox(key="run").options
    assert at.selectbox(key="run").value == "tiny-topo"


# --- bad links, damaged files, per-job controls ---------------------------------------------


@pytest.mark.parametrize("value", ["1e400", "nan", "abc", "7.5"])
def test_a_link_with_an_unusable_number_keeps_the_page(lab_runs: Path, value: str) -> None:
    at = app("../pages/train.py", train_topographic_scratch_steps=value)
    no_trouble(at)
    assert any("link's value for Steps" in w.value for w in at.warning)
    assert by_label(at.number_input, "Steps").value == 2000  # the default, said so
    assert not at.button(key="train_start").disabled


def test_a_link_cannot_point_the_app_at_a_folder(lab_runs: Path) -> None:
    at = app("../pages/train.py", train_topographic_scratch_source="folder",
             train_topographic_scratch_folder_folder="/etc")
    assert by_label(at.selectbox, "Data").value == "folder"
    assert by_label(at.text_input, "Image folder").value == ""


def test_text_from_files_is_shown_as_text(lab_runs: Path, tmp_path: Path) -> None:
    folder = tmp_path / "[click me](https:"
    at = app("../pages/train.py")
    by_label(at.selectbox, "Data").set_value("folder").run()
    at.text_input(key=by_label(at.text_input, "Image folder").key).set_value(str(folder)).run()
    shown = [e.value for e in at.error if "does not exist" in e.value]
    assert shown and "\\[click me\\]\\(https:" in shown[0]  # escaped: no link is made


def test_damaged_snapshots_and_status_cost_only_their_view(lab_runs: Path) -> None:
    path = _tiny_run(lab_runs, "damaged-bits")
    (path / "snapshots.safetensors").write_bytes(b"\x00" * 64)
    (path / "status.json").write_text("")
    for page in ("../pages/filters.py", "../pages/orientation.py", "../pages/sparsity.py"):
        at = app(page, "damaged-bits")
        assert not at.exception
        assert not any("could not be drawn" in e.value for e in at.error), page
    at = app("../pages/filters.py", "damaged-bits")
    assert any("replay is unavailable" in w.value for w in at.warning)
    assert at.get("plotly_chart")  # the filters themselves are still drawn


def test_every_job_has_its_own_stop(lab_runs: Path) -> None:
    from app_ui.jobs import _manager_for
    from sparse_models.presets import build_run_config

    manager = _manager_for(str(lab_runs))
    config = build_run_config("sparse_coding", {
        "data.n_patches": 512, "model.n_units": 16, "train.steps": 100_000,
        "train.batch_size": 64, "train.threads": 1})
    first = manager.submit(config, name="long-one")
    second = manager.submit(config, name="long-two")
    try:
        at = app("../pages/overview.py")  # a fresh tab: it started neither job
        keys = {b.key for b in at.button}
        assert {f"job_stop_{first}", f"job_stop_{second}"} <= keys
        at.button(key=f"job_stop_{first}").click().run()
        assert manager.wait(first, timeout=30).state == "stopped"
        assert not manager.status(second).done  # the other job goes on
    finally:
        manager.stop(second)
        manager.wait(second, timeout=30)


def test_a_job_whose_folder_is_deleted_says_so(lab_runs: Path) -> None:
    import shutil

    from app_ui.jobs import _manager_for
    from sparse_models.presets import build_run_config

    manager = _manager_for(str(lab_runs))
    config = build_run_config("sparse_coding", {
        "data.n_patches": 512, "model.n_units": 16, "train.steps": 100_000,
        "train.batch_size": 64, "train.threads": 1, "train.checkpoint_every": 50})
    job = manager.submit(config, name="vanishing")
    deadline = time.monotonic() + 30
    while manager.status(job).step < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    shutil.rmtree(lab_runs / "vanishing")
    done = manager.wait(job, timeout=30)
    assert done.state == "failed" and "was deleted while it trained" in done.error


def test_a_run_deleted_behind_the_apps_back_is_reported_gone(lab_runs: Path) -> None:
    import shutil

    path = _tiny_run(lab_runs, "here-then-gone")
    at = app("../pages/filters.py", "here-then-gone")
    assert at.selectbox(key="run").value == "here-then-gone"
    shutil.rmtree(path)
    at.run()
    assert not at.exception
    assert any("here-then-gone is gone" in w.value.replace("\\", "") for w in at.warning)
    assert "here-then-gone" not in at.selectbox(key="run").options
    assert at.selectbox(key="run").value != "here-then-gone"


def test_a_link_names_the_model_and_the_data_source(lab_runs: Path) -> None:
    at = app("../pages/train.py", train_model="sparse_coding",
             train_sparse_coding_scratch_source="gratings")
    assert at.selectbox(key="train_model").value == "sparse_coding"
    assert by_label(at.selectbox, "Data").value == "gratings"
    assert "no group structure" in texts(at)


def test_overview_links_a_tree_model_to_the_tree_page(lab_runs: Path) -> None:
    """The shipped lateral-tree run has no orientation map; its Overview section says so and
    links to the Tree page instead."""
    if not (SHIPPED / "lateral-tree").exists():
        pytest.fail("the shipped lateral-tree run is missing (checkpoints/README.md)")
    at = app("../pages/overview.py")
    no_trouble(at)
    links = [e.proto.label for e in at.get("page_link")]
    assert "See its tree: one filter per node" in links
