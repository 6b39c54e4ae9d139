"""DrSAE: it is non-negative ISTA at its start, keeps the paper's constraints and learning rates,
switches from pre-training to fine-tuning by step count, and trains through the pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import sparse_encode

from sparse_models.analysis.code_error import ista_fista_paths
from sparse_models.config import ConfigError
from sparse_models.models import build_model
from sparse_models.models.penalties import fista, ista, lipschitz
from sparse_models.training.trainer import TrainConfig, make_optimizer

TINY = {"input_shape": [8, 8], "n_units": 24, "n_iter": 5, "lam": 0.05, "pretrain_steps": 3}


def _unit_rows(n: int, p: int, seed: int = 0) -> torch.Tensor:
    x = torch.rand(n, p, generator=torch.Generator().manual_seed(seed))
    return x / x.norm(dim=1, keepdim=True)


@pytest.mark.parametrize("T", [1, 2, 11])
def test_with_ista_weights_the_encoder_is_non_negative_ista(T):
    """E = αDᵀ, S = I − αDᵀD, b = αλ: T iterations are exactly T steps of penalties.ista."""
    m = build_model("drsae", {**TINY, "n_iter": T}).double()
    g = torch.Generator().manual_seed(1)
    D = torch.randn(64, 24, generator=g, dtype=torch.float64)  # (P, N), atoms as columns
    D /= D.norm(dim=0, keepdim=True)
    lam = 0.05
    alpha = 1.0 / lipschitz(D.T)
    with torch.no_grad():
        m.D.copy_(D)
        m.E.copy_(alpha * D.T)
        m.S.copy_(torch.eye(24, dtype=torch.float64) - alpha * D.T @ D)
        m.b.fill_(alpha * lam)
    x = _unit_rows(16, 64).double()
    z_ref = ista(x, D.T, lam, n_iter=T, positive=True, L=1.0 / alpha)
    assert torch.allclose(m.encode(x), z_ref, atol=1e-12)
    its = m.iterates(x)
    assert its.shape == (T, 16, 24)
    for t in range(T):
        assert torch.allclose(its[t], ista(x, D.T, lam, n_iter=t + 1, positive=True, L=1 / alpha),
                              atol=1e-12)


def test_a_fresh_model_starts_as_ista_on_its_random_dictionary():
    m = build_model("drsae", TINY).double()
    x = _unit_rows(8, 64).double()
    z = ista(x, m.D.detach().T, m.config.lam, n_iter=5, positive=True, L=1.0 / m.alpha)
    assert torch.allclose(m.encode(x), z, atol=1e-6)
    assert m.alpha <= m.config.e_row_max + 1e-12  # α is capped so E's rows start within bound


@pytest.mark.parametrize("positive", [False, True])
def test_our_ista_and_fista_agree_with_scikit_learn(positive):
    """The solvers the DrSAE and LISTA views compare with: penalties.ista/fista and the
    textbook paths, run long, reach scikit-learn's lasso solution (α = λ: the same objective
    ½‖x − zD‖² + λ‖z‖₁)."""
    g = torch.Generator().manual_seed(2)
    D = torch.randn(20, 30, generator=g, dtype=torch.float64)
    D /= D.norm(dim=1, keepdim=True)  # (K, P)
    x = torch.randn(6, 30, generator=g, dtype=torch.float64)
    lam = 0.2
    ref = sparse_encode(x.numpy(), D.numpy(), algorithm="lasso_cd", alpha=lam, max_iter=20000,
                        positive=positive)
    got = {
        "ista": ista(x, D, lam, n_iter=5000, positive=positive),
        "fista": fista(x, D, lam, n_iter=2000, positive=positive),
        "ista_path": ista_fista_paths(x, D, lam, 5000, positive)[0][-1],
        "fista_path": ista_fista_paths(x, D, lam, 2000, positive)[1][-1],
    }
    for name, z in got.items():
        np.testing.assert_allclose(z.numpy(), ref, atol=2e-4, err_msg=name)
        if positive:
            assert (z >= 0).all(), name
    assert (np.abs(ref) > 1e-3).sum() > 6  # a problem with some active codes, not all zero


def test_norm_constraints_hold_after_every_step():
    m = build_model("drsae", {**TINY, "pretrain_steps": 2})
    c = m.config
    opt = make_optimizer(m, TrainConfig(lr=0.5))  # a large rate pushes against every bound
    g = torch.Generator().manual_seed(3)
    for _ in range(6):
        x = _unit_rows(32, 64, seed=int(torch.randint(0, 1000, (1,), generator=g)))
        y = torch.randint(0, 10, (32,), generator=g)
        m.train_step(x, y, opt)
        assert float(m.D.detach().norm(dim=0).max()) <= c.d_col_max * (1 + 1e-5)
        assert float(m.E.detach().norm(dim=1).max()) <= c.e_row_max * (1 + 1e-5)
        assert float(m.C.detach().norm(dim=1).max()) <= c.c_row_max * (1 + 1e-5)
    assert c.e_row_max == pytest.approx(1.25 / 4)  # 1.25/(T − 1), T = 5


@pytest.mark.parametrize("T,scale", [(11, True), (2, True), (1, True), (5, False)])
def test_learning_rates_are_divided_by_how_often_each_matrix_repeats(T, scale):
    m = build_model("drsae", {**TINY, "n_iter": T, "scale_lr": scale, "classifier_lr": 0.2,
                              "bias_lr": 0.5, "finetune_lr": 0.1, "pretrain_steps": 1})
    opt = make_optimizer(m, TrainConfig(lr=0.01, optimizer="sgd"))
    rates = {g["name"]: g["lr"] for g in opt.param_groups}
    E_rep, S_rep = (T, max(T - 1, 1)) if scale else (1, 1)
    pre = {"E": 0.01 / E_rep, "b": 0.005 / E_rep, "S": 0.01 / S_rep, "D": 0.01, "C": 0.002,
           "c": 0.002}
    assert rates == pytest.approx(pre)
    assert all(g["momentum"] == m.config.momentum for g in opt.param_groups)
    # after pre-training E, S, b and D learn at finetune_lr × those rates; C keeps its own
    x, y = _unit_rows(8, 64), torch.randint(0, 10, (8,))
    m.train_step(x, y, opt)
    m.train_step(x, y, opt)
    rates = {g["name"]: g["lr"] for g in opt.param_groups}
    assert rates == pytest.approx({k: v * (1.0 if k in "Cc" else 0.1) for k, v in pre.items()})
    owned = [p for g in opt.param_groups for p in g["params"]]
    assert len(owned) == len(list(m.parameters()))  # every parameter, once


def test_pretraining_then_fine_tuning_by_step_count():
    """While pre-training the classification loss trains C alone; after `pretrain_steps` it
    reaches the encoder too. The count travels with the weights (a buffer)."""
    m = build_model("drsae", {**TINY, "pretrain_steps": 2})
    x, y = _unit_rows(16, 64), torch.randint(0, 10, (16,))
    opt = make_optimizer(m, TrainConfig(lr=1e-3))

    def encoder_grad_of_class_loss() -> float:
        m.zero_grad()
        terms = m.loss(x, y)
        (terms["loss"] - terms["reconstruction"] - terms["sparsity"]).backward()
        return float(m.E.grad.abs().sum()) if m.E.grad is not None else 0.0

    assert m.pretraining and encoder_grad_of_class_loss() == 0.0
    m.train_step(x, y, opt)
    m.train_step(x, y, opt)
    assert int(m.steps_done) == 2 and "steps_done" in m.state_dict()
    assert not m.pretraining and encoder_grad_of_class_loss() > 0.0
    assert not build_model("drsae", {**TINY, "pretrain": False}).pretraining
    terms = m.train_step(x, y, opt)
    assert set(terms) == {"loss", "reconstruction", "sparsity", "classification", "error"}


def test_evaluate_reports_test_error_and_l0():
    m = build_model("drsae", TINY)
    x, y = _unit_rows(50, 64), torch.randint(0, 10, (50,))
    out = m.evaluate(x, y, batch_size=16)
    with torch.no_grad():
        z = m.encode(x)
        err = float((m.class_logits(z).argmax(-1) != y).float().mean())
    assert out["error"] == pytest.approx(err, abs=1e-6)
    assert out["l0"] == pytest.approx(float((z > 0).sum(1).float().mean()))
    assert torch.equal(m.predict(x), m.class_logits(z).argmax(-1))
    assert m.class_logits(torch.zeros(3, 24)).shape == (3, 10)  # an all-zero code: no NaN
    assert torch.isfinite(m.class_logits(torch.zeros(3, 24))).all()


def test_filters_are_decoder_columns_and_encoder_rows():
    m = build_model("drsae", TINY)
    assert m.layout.kind == "none"
    dec, enc = m.filters("decoder"), m.filters("encoder")
    assert dec.shape == enc.shape == (24, 1, 8, 8) and dec.is_contiguous()
    assert torch.equal(dec[5].reshape(-1), m.D.detach()[:, 5])
    assert torch.equal(enc[5].reshape(-1), m.E.detach()[5])
    extra = m.extra_state_for_ui()
    assert extra["C"].shape == (10, 24) and extra["S"].shape == (24, 24)


@pytest.mark.parametrize("change,match", [
    ({"n_iter": 0}, "at least one encoder iteration"),
    ({"n_units": 0}, "at least one code unit"),
    ({"part_angle": 0.9, "categorical_angle": 0.7}, "must not exceed"),
    ({"lam": -1.0}, "lam"),
])
def test_bad_settings_are_refused_in_words(change, match):
    with pytest.raises(ConfigError, match=match):
        build_model("drsae", {**TINY, **change})


def test_a_tiny_run_trains_through_the_pipeline_on_the_digits(runs_dir):
    from sparse_models.analysis.cached import analyze_run
    from sparse_models.models.drsae import DrSAE
    from sparse_models.presets import build_run_config
    from sparse_models.training.pipeline import execute_run
    from sparse_models.training.runs import create_run, load_run, read_metrics

    config = build_run_config("drsae", {**DrSAE.tiny, "train.steps": 8})
    assert config.data.source == "digits" and tuple(config.model_config.input_shape) == (8, 8)
    path = create_run(config, runs_dir, name="tiny-drsae")
    assert execute_run(config, path) == "completed", (path / "status.json").read_text()
    tests = [r for r in read_metrics(path) if r.get("split") == "test"]
    assert [r["step"] for r in tests] == [3, 6, 8]
    assert all({"error", "l0", "classification"} <= set(r) for r in tests)
    run = load_run(path)
    assert int(run.model.steps_done) == 8  # a resumed run would continue in the right phase
    report = analyze_run(run)
    assert 0.0 <= report["test_error"] <= 1.0
    assert report["part_units"] + report["categorical_units"] <= 16
    assert report["mean_l0"] is not None

