"""LISTA: ISTA at its start, trained to regress a teacher's optimal codes, the teacher checked in
words, and the code-error curves of ISTA, FISTA and LISTA on one dictionary."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_models.analysis.code_error import code_error_curves, iterations_to_match
from sparse_models.config import ConfigError
from sparse_models.models import build_model
from sparse_models.models.lista import Lista
from sparse_models.models.penalties import fista_solve, ista
from sparse_models.presets import build_run_config
from sparse_models.training.pipeline import execute_run
from sparse_models.training.runs import create_run, load_run
from sparse_models.training.trainer import TrainConfig, make_optimizer

TINY = {"input_shape": [8, 8], "n_units": 16, "n_iter": 3, "lam": 0.05}


def _digits(n: int = 200) -> torch.Tensor:
    from sparse_models.data import DigitsConfig, load_dataset

    return load_dataset(DigitsConfig()).x[:n]


@pytest.mark.parametrize("positive", [False, True])
def test_an_untrained_lista_is_ista(positive):
    m = build_model("lista", {**TINY, "positive": positive}).double()
    x = _digits(20).double()
    D = m.D.detach()
    its = m.iterates(x)
    assert its.shape == (3, 20, 16)
    for t in range(3):
        assert torch.allclose(its[t], ista(x, D, 0.05, n_iter=t + 1, positive=positive),
                              atol=1e-6)  # the model's weights were made in float32


def test_training_lowers_the_code_error_below_ista_at_the_same_steps():
    m = build_model("lista", {**TINY, "n_iter": 2})
    x = _digits(400)
    opt = make_optimizer(m, TrainConfig(lr=3e-3))
    first = float(m.loss(x)["code_error"].detach())
    for s in range(60):
        m.train_step(x[(s % 4) * 100:(s % 4 + 1) * 100], None, opt)
    terms = m.loss(x)
    assert float(terms["code_error"].detach()) < 0.5 * first
    assert set(terms) >= {"loss", "code_error", "relative_code_error", "reconstruction"}
    assert m.D.grad is None and not m.D.requires_grad  # the teacher's dictionary stays fixed


def test_code_error_curves_of_ista_fista_and_lista():
    m = build_model("lista", TINY)
    x = _digits(50)
    c = code_error_curves(x, m.D.detach(), 0.05, n_iter=200, lista=m)
    assert c["ista"].shape == c["fista"].shape == (200,) and c["lista"].shape == (3,)
    np.testing.assert_allclose(c["lista"], c["ista"][:3], rtol=1e-4)  # untrained: ISTA
    assert c["ista"][0] < 1.0 and c["fista"][-1] < 1e-4  # FISTA converges to z*
    assert c["fista"][19] < c["ista"][19]  # FISTA gets there faster
    assert iterations_to_match(c["ista"], c["lista"][-1]) <= 3
    assert iterations_to_match(c["ista"], -1.0) is None


def _train_teacher(runs_dir, name, model, extra):
    from sparse_models.models import get_entry

    tiny = get_entry(model).model_cls.tiny
    if extra.get("data.source"):  # the tiny patch settings do not apply to another source
        tiny = {k: v for k, v in tiny.items() if not k.startswith("data.")}
    config = build_run_config(model, {**tiny, **extra})
    path = create_run(config, runs_dir, name=name)
    assert execute_run(config, path) == "completed", (path / "status.json").read_text()
    return path


def test_a_teacher_run_gives_the_dictionary_lambda_and_size(runs_dir):
    teacher = _train_teacher(runs_dir, "sc-digits", "sparse_coding",
                             {"data.source": "digits", "model.lam": 0.07,
                              "model.positive": True})
    config = build_run_config("lista", {**Lista.tiny, "model.teacher": str(teacher)})
    mc = config.model_config
    assert (mc.n_units, mc.teacher_units, mc.lam, mc.positive) == (16, 16, 0.07, True)
    m = build_model("lista", mc)
    assert torch.equal(m.D.detach(), load_run(teacher).model.D.detach())
    path = create_run(config, runs_dir, name="lista-on-sc")
    assert execute_run(config, path) == "completed", (path / "status.json").read_text()
    # The dictionary travels with the weights: the run reloads after its teacher is gone.
    import shutil

    shutil.rmtree(teacher)
    again = load_run(path)
    assert torch.equal(again.model.D.detach(), m.D.detach())


def test_bad_teachers_are_refused_in_words(runs_dir):
    with pytest.raises(ConfigError, match="no run folder at"):
        build_run_config("lista", {**Lista.tiny, "model.teacher": str(runs_dir / "nope")})
    # A run on 6×6 gratings is a dictionary, but for inputs of the wrong size.
    grat = _train_teacher(runs_dir, "sc-gratings", "sparse_coding", {})
    with pytest.raises(ConfigError, match="learned 6×6 inputs but this data has 8×8"):
        build_run_config("lista", {**Lista.tiny, "model.teacher": str(grat)})
    # A folder that is no run:
    (runs_dir / "empty").mkdir()
    with pytest.raises(ConfigError, match="cannot use"):
        build_run_config("lista", {**Lista.tiny, "model.teacher": str(runs_dir / "empty")})


def test_a_teacher_whose_decoder_is_not_a_linear_dictionary_is_refused(runs_dir, monkeypatch):
    from sparse_models.models.sparse_coding import SparseCoding

    teacher = _train_teacher(runs_dir, "sc-digits2", "sparse_coding", {"data.source": "digits"})
    monkeypatch.setattr(SparseCoding, "decode", lambda self, z: torch.relu(z @ self.D - 0.1))
    with pytest.raises(ConfigError, match="not a linear dictionary"):
        build_run_config("lista", {**Lista.tiny, "model.teacher": str(teacher)})
    monkeypatch.setattr(SparseCoding, "filter_kinds", lambda self: ("encoder",))
    with pytest.raises(ConfigError, match="not a dictionary model"):
        build_run_config("lista", {**Lista.tiny, "model.teacher": str(teacher)})


@pytest.mark.parametrize("change,match", [({"n_iter": 0}, "at least one iteration"),
                                          ({"n_units": 0}, "n_units")])
def test_bad_settings_are_refused_in_words(change, match):
    with pytest.raises(ConfigError, match=match):
        build_model("lista", {**TINY, **change})


def test_optimal_codes_are_fista_to_convergence():
    m = build_model("lista", TINY)
    x = _digits(30)
    z, info = fista_solve(x, m.D.detach(), 0.05, 5000, tol=1e-10)
    assert torch.allclose(m.optimal_codes(x), z, atol=1e-4)


def test_the_cli_refuses_a_bad_teacher_in_one_line(runs_dir, capsys):
    from sparse_models.cli import main

    assert main(["train", "lista", "--set", f"model.teacher={runs_dir / 'gone'}"]) == 2
    assert "no run folder at" in capsys.readouterr().err
    assert main(["train", "lista", "--set", "model.n_iter=0", "--show"]) == 2
    assert "at least one iteration" in capsys.readouterr().err


def test_a_tuned_threshold_is_never_worse_than_the_plain_one():
    from sparse_models.analysis.code_error import tuned_threshold_errors

    m = build_model("lista", TINY)
    x = _digits(40)
    plain = code_error_curves(x, m.D.detach(), 0.05, n_iter=10)
    tuned = tuned_threshold_errors(x, m.D.detach(), 0.05, n_iter=10, scales=(0.5, 1.0, 2.0))
    for k in ("ista", "fista"):
        assert tuned[k].shape == (10,) and (tuned[k] <= plain[k] * (1 + 1e-6)).all(), k
        assert set(tuned[f"{k}_scale"]) <= {0.5, 1.0, 2.0}


def test_shifts_move_each_image_and_keep_its_norm():
    m = build_model("lista", {**TINY, "augment_shift": 1})
    x = torch.zeros(2, 64)
    x[0, 3 * 8 + 4] = 2.0  # one pixel at (3, 4)
    x[1] = torch.rand(64, generator=torch.Generator().manual_seed(0))
    xs = m.shifts(x)
    assert xs.shape == (9, 2, 64)
    assert torch.equal(xs[4], x)  # (dy, dx) = (0, 0)
    moved = [divmod(int(v), 8) for v in xs[:, 0].argmax(-1)]
    assert moved == [(3 + dy, 4 + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    torch.testing.assert_close(xs.norm(dim=2), x.norm(dim=1).expand(9, 2))


def test_remembered_optimal_codes_are_the_solvers_and_follow_the_dictionary():
    m = build_model("lista", {**TINY, "target_iter": 2000, "target_tol": 1e-9})
    x = _digits(30)
    first = m.optimal_codes(x[:20])
    both = m.optimal_codes(x)  # 20 remembered, 10 new
    ref = fista_solve(x, m.D.detach(), 0.05, 2000, tol=1e-9)[0]
    torch.testing.assert_close(both, ref, atol=1e-5, rtol=1e-4)
    assert torch.equal(both[:20], first)
    with torch.no_grad():  # another dictionary (e.g. weights loaded): solved again
        m.D.mul_(0.5)
    ref2 = fista_solve(x, m.D.detach(), 0.05, 2000, tol=1e-9)[0]
    torch.testing.assert_close(m.optimal_codes(x), ref2, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("half", [0, 4])
def test_the_learning_rate_halves_every_half_life(half):
    m = build_model("lista", {**TINY, "lr_half_life": half})
    opt = make_optimizer(m, TrainConfig(lr=1e-3))
    x = _digits(40)
    for _ in range(9):
        m.train_step(x, None, opt)
    # the rate of the last step taken (step 9, after 8 before it)
    want = 1e-3 * 0.5 ** (8 / half) if half else 1e-3
    assert all(abs(g["lr"] - want) < 1e-12 for g in opt.param_groups)
