"""The DrSAE page: a tiny DrSAE run drawn (units scatter, galleries, a digit settling over the
iterations, test error), an upload that is not a digit refused in words, another model's run
explained, the LISTA view for a LISTA run trained on the DrSAE's dictionary, and a retrain
started as a background job with the settings as typed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from app_ui.testing import (
    assert_no_error,
    chart_titled,
    cli_train,
    finish_jobs,
    open_app,
    plotly_array,
    png_bytes,
    private_runs,
)
from sparse_models.models.drsae import DrSAE
from sparse_models.models.lista import Lista
from sparse_models.models.sparse_coding import SparseCoding
from sparse_models.presets import default_sections
from sparse_models.training.runs import load_run

PAGE = "../pages/drsae.py"
TINY = [f"{k}={v}" for k, v in DrSAE.tiny.items()]
TINY_SC = [f"{k}={v}" for k, v in SparseCoding.tiny.items()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("drsae-page-runs")
    with private_runs(d):
        drsae = cli_train(d, "drsae", "tiny-drsae", TINY)
        cli_train(d, "lista", "tiny-lista", [f"{k}={v}" for k, v in Lista.tiny.items()
                                             if k != "model.n_units"]
                  + [f"model.teacher={drsae}"])
        cli_train(d, "sparse_coding", "tiny-sc", TINY_SC)
        yield d


def _texts(at, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind))


def test_a_drsae_run_is_drawn_with_its_units_and_test_error(runs):
    at = open_app(PAGE, run="tiny-drsae")
    assert_no_error(at)
    labels = {m.label: m.value for m in at.metric}
    assert {"Test error", "Part-units", "Categorical units", "Iterations T"} <= set(labels)
    run = load_run(runs / "tiny-drsae")
    ds = run.dataset()
    with torch.no_grad():
        wrong = (run.model.predict(ds.x_test) != ds.y_test).float().mean().item()
    assert labels["Test error"] == f"{100 * wrong:.2f} %"
    scatter = chart_titled(at, "Units: angle")
    units = scatter["data"][0]
    assert len(plotly_array(units["x"])) == run.model.n_units  # one point per unit, in unit order
    assert [s["x0"] for s in scatter["layout"]["shapes"][:2]] == [0.5, 0.7]  # the thresholds
    chart_titled(at, "Confusion matrix on the 297 held-out inputs")
    chart_titled(at, "class probabilities at t = 3")


def test_a_unit_picked_by_number_is_inspected(runs):
    at = open_app(PAGE, run="tiny-drsae", drsae_unit="5")
    assert_no_error(at)
    assert "**Unit 5**" in _texts(at, "markdown")
    w = load_run(runs / "tiny-drsae").model.C.detach()[:, 5].numpy()
    bars = chart_titled(at, "classifier weights")["data"][0]
    assert np.allclose(plotly_array(bars["y"]), w, atol=1e-6)
    ring = chart_titled(at, "Units: angle")["data"][1]
    assert len(plotly_array(ring["x"])) == 1


def test_the_iteration_slider_changes_what_is_shown(runs):
    at = open_app(PAGE, run="tiny-drsae", drsae_digit="3")
    assert_no_error(at)
    last = chart_titled(at, "reconstruction D z at t = 3")
    at.slider(key="drsae_t").set_value(1).run()
    assert_no_error(at)
    first = chart_titled(at, "reconstruction D z at t = 1")
    assert not np.allclose(plotly_array(first["data"][0]["z"]), plotly_array(last["data"][0]["z"]))
    run = load_run(runs / "tiny-drsae")
    x = run.dataset().x_test[3:4]
    with torch.no_grad():
        z1 = run.model.iterates(x)[0, 0]
    assert f"at t = 1, **{int((z1 > 0).sum())} active units**" in _texts(at, "markdown")
    chart_titled(at, "class probabilities at t = 1")


def test_an_upload_that_is_not_a_digit_picture_is_refused_in_words(runs):
    at = open_app(PAGE, run="tiny-drsae")
    at.radio(key="drsae_source").set_value("Upload a picture").run()
    assert_no_error(at)
    at.file_uploader(key="drsae_upload").set_value(
        ("digit.png", b"this is not a picture", "image/png")).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "is not a picture that can be read" in _texts(at, "error")
    at.file_uploader(key="drsae_upload").set_value(
        ("blank.png", png_bytes(np.full((30, 30), 255)), "image/png")).run()
    assert "one flat colour" in _texts(at, "error")
    # a dark stroke on white paper: accepted, inverted, and settled like a test digit
    paper = np.full((40, 30), 255)
    paper[8:32, 13:17] = 0
    at.file_uploader(key="drsae_upload").set_value(("one.png", png_bytes(paper), "image/png")).run()
    assert_no_error(at)
    assert "one.png: at t = 3" in _texts(at, "markdown").replace("\\", "")


def test_an_uploaded_digit_is_prepared_like_the_runs_inputs(runs):
    from app_ui.drsae import prepare_upload

    run = load_run(runs / "tiny-drsae")
    paper = np.full((40, 30), 255)
    paper[8:32, 13:17] = 0
    x, picture = prepare_upload(png_bytes(paper), "one.png", (8, 8), run.dataset().x)
    assert x.shape == (64,) and picture.shape == (8, 8)
    assert abs(x.mean()) < 1e-5 and abs(np.linalg.norm(x) - 1) < 1e-5  # as digits' rows
    assert picture[:, 3:5].mean() > picture[:, :2].mean()  # the stroke is light, in the middle


def test_another_models_run_is_explained(runs):
    at = open_app(PAGE, run="tiny-sc")
    assert_no_error(at)
    said = _texts(at, "info")
    assert "is a 'sparse_coding' run" in said.replace("\\", "") and "not a DrSAE" in said
    assert not at.get("plotly_chart")
    assert [b for b in at.button if b.key == "drsae_show_other"]


def test_a_drsae_run_on_the_orientation_page_is_explained(runs):
    at = open_app("../pages/orientation.py", run="tiny-drsae")
    assert_no_error(at)
    assert "no orientation map" in _texts(at, "info") + _texts(at, "caption")
    assert not at.get("plotly_chart")


def test_a_lista_run_shows_code_error_against_iterations(runs):
    at = open_app(PAGE, run="tiny-lista")
    assert_no_error(at)
    curves = chart_titled(at, "Code error on")
    names = [t["name"] for t in curves["data"]]
    assert names == ["ISTA", "FISTA", "LISTA (T = 2)"]
    assert curves["layout"]["yaxis"]["type"] == "log"
    assert "the dictionary of tiny-drsae" in _texts(at, "caption").replace("\\", "")
    at.toggle(key="drsae_curve_tuned").set_value(True).run()
    assert_no_error(at)
    assert [t["name"] for t in chart_titled(at, "Code error on")["data"]] == [
        "ISTA", "FISTA", "FISTA, tuned threshold", "LISTA (T = 2)"]
    assert "FISTA with a tuned threshold" in _texts(at, "caption")
    # and the DrSAE's own page finds the LISTA run trained on its dictionary
    at = open_app(PAGE, run="tiny-drsae")
    assert at.selectbox(key="drsae_lista").value == "tiny-lista"
    assert "LISTA (T = 2)" in [t["name"] for t in chart_titled(at, "Code error on")["data"]]
    # a LISTA trained from here starts from the model's own number of steps
    steps = default_sections("lista")["train"]["steps"]
    assert steps > 600 and at.number_input(key="drsae_lista_steps").value == steps


def test_retrain_starts_a_job_with_the_settings_as_typed(runs):
    at = open_app(PAGE, run="tiny-drsae")
    at.number_input(key="drsae_re_units").set_value(12).run()
    at.number_input(key="drsae_re_T").set_value(2).run()
    at.number_input(key="drsae_re_lam").set_value(0.1).run()
    at.number_input(key="drsae_re_steps").set_value(4).run()
    at.toggle(key="drsae_re_pretrain").set_value(False).run()
    at.text_input(key="drsae_re_name").set_value("tiny-retrained").run()
    assert_no_error(at)
    assert not at.button(key="drsae_retrain").disabled
    at.button(key="drsae_retrain").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Training DrSAE tiny-retrained" in _texts(at, "success").replace("\\", "")
    (job,) = [j for j in finish_jobs(runs) if j.name == "tiny-retrained"]
    assert job.state == "completed", job.error
    cfg = load_run(runs / "tiny-retrained").config
    m = cfg.model_config
    assert (m.n_units, m.n_iter, m.lam, m.pretrain, cfg.train.steps) == (12, 2, 0.1, False, 4)
    before = load_run(runs / "tiny-drsae").config
    assert cfg.data == before.data  # the same data as the run it came from
