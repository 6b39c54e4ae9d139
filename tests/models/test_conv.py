"""The convolutional group-sparse auto-encoder (`conv`) and its stacking."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sparse_models.cli import main
from sparse_models.config import ConfigError
from sparse_models.models import build_model
from sparse_models.models.conv import ConvAutoencoder, l2_pool
from sparse_models.presets import build_run_config
from sparse_models.training.pipeline import execute_run
from sparse_models.training.runs import create_run, load_run

SMALL = {"input_shape": [12, 14], "maps": 6, "kernel": 3, "pool_maps": 2, "pool_size": 3,
         "pool_stride": 2, "l1": 0.1}
TINY_RUN = {**ConvAutoencoder.tiny}


def _model(**over) -> ConvAutoencoder:
    return build_model("conv", {**SMALL, **over})


def test_shapes_code_rows_and_gradients():
    m = _model()
    x = torch.randn(3, 12 * 14)
    z = m.feature_maps(x)
    assert z.shape == (3, 6, 14, 16)  # 'full' maps: k − 1 larger than the image
    assert m.pooled_maps(x).shape == (3, 3, 6, 7)  # 2 maps per pool, 3×3 windows every 2
    rows = m.encode(x)
    assert rows.shape == (3 * 14 * 16, 6) and bool((rows >= 0).all())
    assert torch.equal(rows.reshape(3, 14, 16, 6).permute(0, 3, 1, 2), z)
    assert m.decode(rows).shape == (3, 12 * 14)
    assert m.filters("decoder").shape == m.filters("encoder").shape == (6, 1, 3, 3)
    terms = m.loss(x)
    assert set(terms) == {"reconstruction", "group_sparsity", "l1", "loss"}
    terms["loss"].backward()
    for name in ("W", "D", "b", "gain"):
        g = getattr(m, name).grad
        assert g is not None and bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0, name
    assert m.layout.kind == "none" and m.layout.map_shape()[0] is None
    assert m.n_units == 6


def test_decoder_is_the_adjoint_of_the_encoders_convolution():
    """⟨W ∗ x, z⟩ = ⟨x, Wᵀ ⋆ z⟩ with the decoder tied to the encoder: the reconstruction is the
    exact transpose of the 'full' convolution, border pixels included."""
    m = _model()
    with torch.no_grad():
        m.D.copy_(m.W)
    x = torch.randn(2, 1, 12, 14, dtype=torch.float64)
    z = torch.randn(2, 6, 14, 16, dtype=torch.float64)
    W = m.W.detach().double()
    lhs = (F.conv2d(x, W, padding=2) * z).sum()
    with torch.no_grad():
        rhs = (x * m.reconstruct_maps(z.float()).double()).sum()
    assert float(lhs) == pytest.approx(float(rhs), rel=1e-5)


def test_every_pixel_is_covered_by_as_many_code_positions():
    """Borders: with 'full' code maps each pixel is reconstructed by k² positions per map."""
    m = _model(maps=2, pool_maps=1)
    with torch.no_grad():
        m.D.fill_(1.0)
    ones = torch.ones(1, 2, 14, 16)
    assert torch.equal(m.reconstruct_maps(ones), torch.full((1, 1, 12, 14), 2 * 9.0))


@pytest.mark.parametrize("maps, size, stride", [(1, 1, 1), (2, 3, 2), (3, 2, 1), (1, 4, 3)])
def test_l2_pooling_equals_a_dense_reference(maps, size, stride):
    z = torch.randn(2, 6, 9, 8, dtype=torch.float64)
    got = l2_pool(z, maps, size, stride, eps=0.5)
    J, h, w = 6 // maps, (9 - size) // stride + 1, (8 - size) // stride + 1
    want = torch.empty(2, J, h, w, dtype=torch.float64)
    for j in range(J):
        for r in range(h):
            for c in range(w):
                block = z[:, j * maps:(j + 1) * maps, r * stride:r * stride + size,
                          c * stride:c * stride + size]
                want[:, j, r, c] = torch.sqrt((block ** 2).sum((1, 2, 3)) + 0.5)
    torch.testing.assert_close(got, want)


def test_first_step_starts_from_patches_and_training_lowers_the_loss():
    torch.manual_seed(0)
    m = _model(l1=0.0, pool_maps=1)
    x = torch.randn(16, 12 * 14)
    opt = torch.optim.Adam(m.param_groups(1e-2))
    m.train_step(x, None, opt)
    assert bool(m.started)
    first = float(m.loss(x)["loss"].detach())
    for _ in range(30):
        m.train_step(x, None, opt)
    assert float(m.loss(x)["loss"].detach()) < first
    norms = m.D.detach().flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.ones(6))
    assert bool((m.gain.detach() >= 0).all())


@pytest.mark.parametrize("settings, words", [
    ({"kernel": 13}, "13×13 filter is larger than the 12×14"),
    ({"pool_size": 20}, "do not fit the 14×16 code maps"),
    ({"pool_stride": 4, "pool_size": 3}, "pool stride 4 is larger than the pool window 3"),
    ({"maps": 5, "pool_maps": 2}, "must divide the number of maps"),
    ({"layer1_arch": [4, 3, 1, 2, 2]}, "names no layer-1 run"),
])
def test_bad_configs_are_refused_in_words(settings, words):
    with pytest.raises(ConfigError, match=words):
        _model(**settings)


def test_images_of_the_wrong_size_are_refused_in_words():
    with pytest.raises(ValueError, match="12×14 = 168 pixels"):
        _model().encode(torch.randn(2, 100))
    with pytest.raises(ValueError, match="rows per image"):
        _model().decode(torch.randn(5, 6))


def _train(runs: Path, name: str, over: dict) -> Path:
    cfg = build_run_config("conv", {**TINY_RUN, **over})
    path = create_run(cfg, runs, name=name)
    assert execute_run(cfg, path) == "completed", (path / "status.json").read_text()
    return path


def test_stacked_layer1_is_frozen_copied_and_the_run_describes_itself(tmp_path):
    first = _train(tmp_path, "layer1", {"train.steps": 6})
    l1 = load_run(first).model
    stacked = _train(tmp_path, "stacked", {"model.layer1": str(first), "model.maps": 3,
                                           "model.kernel": 2, "model.pool_size": 2,
                                           "train.steps": 6})
    run = load_run(stacked)
    m = run.model
    assert m.config.layer1_arch == (4, 3, 1, 2, 2) and m.config.in_channels == 4
    assert m.filters().shape == (3, 4, 2, 2)  # one channel per layer-1 pool
    # layer 1 is the first run's, unchanged by training layer 2, and never asked for gradients
    for mine, theirs in (("W1", "W"), ("b1", "b"), ("gain1", "gain"), ("D1", "D")):
        assert torch.equal(getattr(m, mine).detach(), getattr(l1, theirs).detach()), mine
        assert not getattr(m, mine).requires_grad
    assert float(m.in_scale) > 0
    # and the stacked run still loads, with the same layer 1, once the first run is gone
    x = run.dataset().x[:4]
    with torch.no_grad():
        before = m.pooled_maps(x)
    shutil.rmtree(first)
    again = load_run(stacked).model
    assert torch.equal(again.W1, m.W1)
    with torch.no_grad():
        torch.testing.assert_close(again.pooled_maps(x), before)
        assert again.decode(again.encode(x)).shape == x.shape


def test_stacking_on_a_missing_or_wrong_run_is_refused_in_words(tmp_path):
    with pytest.raises(ConfigError, match="no layer-1 run at"):
        build_run_config("conv", {**TINY_RUN, "model.layer1": str(tmp_path / "nope")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a run folder"):
        build_run_config("conv", {**TINY_RUN, "model.layer1": str(tmp_path / "empty")})
    topo_cfg = build_run_config("topographic", {"train.steps": 1, "data.source": "gratings",
                                                "data.patch_size": 6, "data.n_patches": 64,
                                                "model.group.map_shape": [2, 2],
                                                "model.group.size": 1, "train.batch_size": 8})
    topo = create_run(topo_cfg, tmp_path, name="topo")
    with pytest.raises(ConfigError, match="is a topographic run"):
        build_run_config("conv", {**TINY_RUN, "model.layer1": str(topo)})
    first = _train(tmp_path, "layer1", {})
    second = _train(tmp_path, "layer2", {"model.layer1": str(first), "model.kernel": 2,
                                         "model.pool_size": 2})
    with pytest.raises(ConfigError, match="itself a stacked conv run"):
        build_run_config("conv", {**TINY_RUN, "model.layer1": str(second)})


def test_train_and_analyze_through_the_cli(tmp_path, capsys):
    sets = [a for k, v in TINY_RUN.items()
            for a in ("--set", f"{k}={v if not isinstance(v, list) else repr(v)}".replace("'", '"'))]
    assert main(["train", "conv", *sets, "--out", str(tmp_path), "--name", "one", "--quiet"]) == 0
    assert main(["analyze", str(tmp_path / "one"), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"phase_invariance_ratio"' in out and '"layer_explained_variance"' in out
    assert main(["train", "conv", *sets, "--set", f"model.layer1={tmp_path / 'one'}",
                 "--set", "model.kernel=2", "--out", str(tmp_path), "--name", "two",
                 "--quiet"]) == 0
    assert load_run(tmp_path / "two").model.config.stacked
    assert main(["train", "conv", "--set", "data.crop=16", "--set", "model.kernel=20",
                 "--out", str(tmp_path)]) == 2
    assert "20×20 filter is larger than the 16×16 image" in capsys.readouterr().err
