"""The Convolutional page: a tiny conv run and a tiny run stacked on it drawn (filters or
layer-2 patches, feature and pooled maps of a bundled or uploaded image, invariance curves),
an upload that is not a picture refused in words, another model's run explained, a retrain
and a stack started as background jobs with the settings as typed; conv runs on the Filters
and Compare pages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from app_ui.testing import (
    assert_no_error,
    chart_title,
    chart_titled,
    cli_train,
    finish_jobs,
    open_app,
    plotly_array,
    plotly_charts,
    png_bytes,
    private_runs,
)
from sparse_models.analysis.cached import analyze_run
from sparse_models.analysis.sparsity import CONV_ACTIVITY_RULE
from sparse_models.models.conv import ConvAutoencoder
from sparse_models.models.sparse_coding import SparseCoding
from sparse_models.training.runs import SHIPPED_DIR, load_run

PAGE = "../pages/conv.py"
TINY = [f"{k}={json.dumps(v) if isinstance(v, list | tuple) else v}"
        for k, v in ConvAutoencoder.tiny.items()]
TINY_SC = [f"{k}={v}" for k, v in SparseCoding.tiny.items()]


def _set(settings: list[str], **changes: object) -> list[str]:
    keep = [s for s in settings if s.split("=", 1)[0] not in changes]
    return keep + [f"{k}={v}" for k, v in changes.items()]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("conv-page-runs")
    with private_runs(d):
        l1 = cli_train(d, "conv", "tiny-conv", TINY)
        cli_train(d, "conv", "tiny-stacked", _set(TINY, **{"model.layer1": l1,
                                                           "model.kernel": 2}))
        cli_train(d, "sparse_coding", "tiny-sc", TINY_SC)
        yield d


def _texts(at, kind: str) -> str:
    return "\n".join(str(e.value) for e in getattr(at, kind)).replace("\\", "")


def test_a_conv_run_shows_filters_maps_and_invariance(runs):
    at = open_app(PAGE, run="tiny-conv")
    assert_no_error(at)
    model = load_run(runs / "tiny-conv").model
    K, k = model.config.maps, model.config.kernel
    for title in ("Decoder filters D", "Encoder filters W"):
        tiles = plotly_array(chart_titled(at, title)["data"][0]["z"])
        assert tiles.shape == (2 * (k + 1) + 1, 2 * (k + 1) + 1)  # K = 4 on a 2×2 grid
    maps = chart_titled(at, f"Feature maps z ({K})")
    assert len(maps["data"][1]["text"]) == K  # one hover label per map
    chart_titled(at, f"L2-pooled maps ({K // model.config.pool_maps})")
    chart_titled(at, "Input: camera")
    for kind in ("Phase", "Rotation"):
        names = [t["name"] for t in chart_titled(at, kind)["data"] if t.get("showlegend") is not False]
        assert any(n.startswith("unpooled (mean") for n in names)
        assert any(n.startswith("pooled (mean") for n in names)
    labels = {m.label for m in at.metric}
    assert {"Phase invariance ratio", "Rotation invariance ratio", "Explained variance"} <= labels
    assert "Filters" in [s.value for s in at.subheader]


def test_the_maps_are_the_models_on_the_prepared_image(runs):
    from app_ui.conv import centre_window, data_style, prepare
    from app_ui.runs import RunRef, find_run, run_stamp
    from sparse_models.data.images import load_grey_image

    at = open_app(PAGE, run="tiny-conv", conv_image="coffee")
    assert_no_error(at)
    run = load_run(runs / "tiny-conv")
    info = find_run("tiny-conv")
    style = data_style(RunRef(str(info.path), run_stamp(info.path), info))
    img = centre_window(prepare(load_grey_image("coffee", style["downscale"]), style),
                        int(at.number_input(key="conv_window").value))
    with torch.no_grad():
        z = run.model.feature_maps(torch.as_tensor(img)[None, None])[0].numpy()
    shown = chart_titled(at, "Feature maps z")["data"][1]["text"]
    assert shown[2] == f"map 2: max z = {z[2].max():.3g}"


def test_a_stacked_run_shows_its_layer2_patches_and_frozen_layer1(runs):
    at = open_app(PAGE, run="tiny-stacked")
    assert_no_error(at)
    model = load_run(runs / "tiny-stacked").model
    gallery = chart_titled(at, "Layer 2: the patches that excite each map most")
    assert len(gallery["data"][1]["text"]) == model.config.maps * 8
    l1 = chart_titled(at, "Layer 1 (frozen): encoder filters")
    assert plotly_array(l1["data"][0]["z"]).shape[0] > 0
    assert "tiny-conv" in _texts(at, "caption")
    chart_titled(at, "Feature maps z")
    chart_titled(at, "Phase")
    assert at.toggle(key="conv_re_stack").disabled  # no third layer on a second


def test_an_upload_that_is_not_a_picture_is_refused_in_words(runs):
    at = open_app(PAGE, run="tiny-conv")
    at.radio(key="conv_source").set_value("Upload a picture").run()
    assert_no_error(at)
    at.file_uploader(key="conv_upload").set_value(
        ("photo.png", b"this is not a picture", "image/png")).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "photo.png is not a picture that can be read" in _texts(at, "error")
    assert not [f for f in plotly_charts(at) if chart_title(f).startswith("Feature maps")]
    at.file_uploader(key="conv_upload").set_value(
        ("flat.png", png_bytes(np.full((40, 40), 200)), "image/png")).run()
    assert "one flat colour" in _texts(at, "error")
    at.file_uploader(key="conv_upload").set_value(
        ("tiny.png", png_bytes(np.eye(3) * 255), "image/png")).run()
    assert "needs at least" in _texts(at, "error")
    rng = np.random.default_rng(0)
    at.file_uploader(key="conv_upload").set_value(
        ("noise.png", png_bytes(rng.integers(0, 255, (60, 50))), "image/png")).run()
    assert_no_error(at)
    chart_titled(at, "Input: noise.png")
    chart_titled(at, "Feature maps z")


def test_another_models_run_is_explained_with_a_link_to_a_conv_run(runs):
    at = open_app(PAGE, run="tiny-sc")
    assert_no_error(at)
    said = _texts(at, "info")
    assert "is a 'sparse_coding' run, not a convolutional one" in said and "conv" in said
    assert not at.get("plotly_chart")
    button = at.button(key="conv_show_other")
    assert button.label == "Show the conv run tiny-conv"
    button.click().run()
    assert at.selectbox(key="run").value == "tiny-conv"


def test_retrain_starts_a_job_with_the_settings_as_typed(runs):
    at = open_app(PAGE, run="tiny-conv")
    at.number_input(key="conv_re_maps").set_value(6).run()
    at.number_input(key="conv_re_kernel").set_value(4).run()
    at.number_input(key="conv_re_pool").set_value(3).run()
    at.number_input(key="conv_re_stride").set_value(1).run()
    at.number_input(key="conv_re_lam").set_value(0.2).run()
    at.number_input(key="conv_re_steps").set_value(3).run()
    at.text_input(key="conv_re_name").set_value("tiny-conv-re").run()
    assert_no_error(at)
    at.button(key="conv_retrain").click().run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Training conv tiny-conv-re" in _texts(at, "success")
    (job,) = [j for j in finish_jobs(runs) if j.name == "tiny-conv-re"]
    assert job.state == "completed", job.error
    cfg = load_run(runs / "tiny-conv-re").config
    m = cfg.model_config
    assert (m.maps, m.kernel, m.pool_size, m.pool_stride, m.lam, cfg.train.steps) == (
        6, 4, 3, 1, 0.2, 3)
    assert not m.stacked and cfg.data == load_run(runs / "tiny-conv").config.data


def test_stacking_starts_a_second_layer_on_this_run(runs):
    at = open_app(PAGE, run="tiny-conv")
    at.toggle(key="conv_re_stack").set_value(True).run()
    at.number_input(key="conv_re_kernel").set_value(2).run()
    at.number_input(key="conv_re_steps").set_value(2).run()
    at.text_input(key="conv_re_name").set_value("tiny-conv-stack").run()
    assert_no_error(at)
    assert at.button(key="conv_retrain").label == "Stack and train"
    at.button(key="conv_retrain").click().run()
    assert "Training a stacked layer tiny-conv-stack" in _texts(at, "success")
    (job,) = [j for j in finish_jobs(runs) if j.name == "tiny-conv-stack"]
    assert job.state == "completed", job.error
    m = load_run(runs / "tiny-conv-stack").config.model_config
    assert m.stacked and Path(m.layer1) == (runs / "tiny-conv").resolve()
    assert (m.kernel, load_run(runs / "tiny-conv-stack").config.train.steps) == (2, 2)


def test_a_setting_that_cannot_work_is_said_and_keeps_train_disabled(runs):
    at = open_app(PAGE, run="tiny-conv")
    at.number_input(key="conv_re_kernel").set_value(30).run()
    assert not at.exception
    assert "larger than the 12×12 image" in _texts(at, "error")
    assert at.button(key="conv_retrain").disabled


@pytest.mark.parametrize("page", ["../pages/filters.py", "../pages/compare.py"])
@pytest.mark.parametrize("run", ["tiny-conv", "tiny-stacked"])
def test_conv_runs_are_drawn_on_the_filters_and_compare_pages(runs, page, run):
    at = open_app(page, run=run)
    assert_no_error(at)
    assert at.selectbox(key="run").value == run
    assert at.get("plotly_chart")
    if page.endswith("filters.py"):
        links = [e.proto.label for e in at.get("page_link")]
        assert "See it on the Convolutional page" in links


@pytest.mark.parametrize("run", ["tiny-conv", "tiny-stacked", "conv-layer1"])
def test_a_conv_runs_sparsity_and_dead_maps_are_the_reports(runs, run):
    # One rule everywhere: the Sparsity page, the Filters page and the report (Compare,
    # `analyze`) measure a conv run on the same (image, position) rows spread over its images.
    # The shipped conv-layer1 has one map that (almost) never fires.
    report = analyze_run(SHIPPED_DIR / run if run == "conv-layer1" else runs / run)
    k = report["n_units"]
    dead = round(report["dead_fraction"] * k)
    at = open_app("../pages/sparsity.py", run=run)
    assert_no_error(at)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Active units per patch"] == f"{report['mean_l0']:.1f} of {k}"
    assert shown["Dead units"] == f"{dead} of {k}"
    assert any(CONV_ACTIVITY_RULE in str(e.value) for e in at.info)
    at = open_app("../pages/filters.py", run=run)
    assert_no_error(at)
    said = [str(c.value) for c in at.caption]
    if dead:
        assert any(f"{dead} dead unit(s) never fire" in c for c in said), said
    else:
        assert not any("dead unit(s) never fire" in c for c in said), said
