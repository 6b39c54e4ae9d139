"""`bench drsae` on tiny settings: the table's structure and that its numbers agree with each
other (not the targets, which need the full run)."""

import math

import numpy as np
import pytest
import torch

from sparse_models.bench_drsae import (
    TARGETS,
    bench_drsae,
    format_drsae_bench,
    train_mlp,
    tuned_on,
    verdicts,
)

TINY_DRSAE = {"model.n_units": 24, "model.n_iter": 3, "model.pretrain_steps": 4,
              "train.steps": 8, "train.batch_size": 50, "train.eval_every": 0,
              "train.log_every": 4, "data.n_train": 400}
TINY_LISTA = {"train.steps": 3, "train.batch_size": 50, "model.target_iter": 50,
              "train.log_every": 1, "train.eval_every": 0, "data.n_train": 200}
TINY_TEACHER = {"model.n_units": 20, "train.steps": 3, "train.batch_size": 50,
                "train.log_every": 1, "data.n_train": 200}


@pytest.fixture(scope="module")
def res():
    torch.manual_seed(0)
    return bench_drsae(quick=True, overrides=TINY_DRSAE, lista_overrides=TINY_LISTA,
                       teacher_overrides=TINY_TEACHER, t_values=(1, 2), mlp_lrs=(0.1,),
                       timing_epochs=1, lista_iters=40)


def test_table_structure_and_quick_notice(res):
    lines = format_drsae_bench(res)
    text = "\n".join(lines)
    assert "QUICK" in lines[0] and "say nothing about the targets" in lines[0]
    for what in ("DrSAE, T = 3", "(a) MLP", "(b) DrSAE T = 2", "time per epoch", "LISTA",
                 "targets met"):
        assert what in text, what
    ok = verdicts(res)
    assert set(ok) == {"error", "vs_mlp", "vs_t2", "epoch_s", "lista_t1", "lista_t2"}
    body = "\n".join(lines[1:])  # the first line names the marks in its quick notice
    assert body.count("✔") + body.count("✘") == len(ok)
    assert f"targets met: {sum(ok.values())} of {len(ok)}" in text


def test_numbers_are_consistent(res):
    for key in ("drsae", "drsae_t2"):
        e = res[key]["test_error"]
        assert 0.0 <= e <= 1.0
        assert res[key]["part_units"] + res[key]["categorical_units"] + res[key]["dead_units"] \
            <= 24
    assert 0.0 <= res["mlp"]["error"] <= 1.0 and res["mlp"]["lr"] == 0.1
    assert res["timing"]["epoch_s"] > 0 and res["timing"]["threads"] >= 1
    assert res["teacher"] == "trained here"
    rows = res["lista"]
    assert [r["T"] for r in rows] == [1, 2]
    for r in rows:
        assert r["lista_error"] >= 0
        assert r["steps"] == TINY_LISTA["train.steps"] and r["train_s"] > 0
        for k in ("ista_iters", "fista_iters", "tuned_fista_iters"):
            n = r[k]
            assert n is None or 1 <= n <= r["max_iters"]
        # a match at n iterations means FISTA's error there is ≤ LISTA's
        if r["fista_iters"] is not None and r["fista_iters"] <= r["T"]:
            assert r["fista_error_at_T"] <= r["lista_error"] * (1 + 1e-6)
        # the tuned threshold includes the untuned one (scale 1): never worse on its tuning set,
        # and on other images close to it
        assert math.isfinite(r["tuned_fista_error_at_T"])
    # a lower (better) LISTA error can only need more FISTA iterations: monotone in the error
    by_err = sorted(rows, key=lambda r: -r["lista_error"])
    its = [r["fista_iters"] if r["fista_iters"] is not None else math.inf for r in by_err]
    assert its == sorted(its)


def test_mlp_learns_separable_data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 10, generator=g)
    y = (x[:, 0] > 0).long()
    out = train_mlp(x, y, x, y, steps=100, batch_size=20, optimizer="sgd", lr=0.1,
                    momentum=0.9, hidden=16)
    assert out["error"] < 0.1 and out["wall_s"] > 0


def test_tuned_thresholds_are_never_worse_than_untuned_on_the_tuning_batch():
    from sparse_models.analysis.code_error import code_error_curves

    g = torch.Generator().manual_seed(1)
    D = torch.randn(12, 20, generator=g)
    D = D / D.norm(dim=1, keepdim=True)
    x = torch.randn(30, 20, generator=g)
    tuned = tuned_on(x, x, D, 0.1, False, 15)
    plain = code_error_curves(x, D, 0.1, False, n_iter=15)
    assert np.all(tuned["fista"] <= plain["fista"] * (1 + 1e-5))
    assert np.all(tuned["ista"] <= plain["ista"] * (1 + 1e-5))


def test_targets_are_the_issues():
    assert TARGETS == {"error": 0.05, "epoch_s": 2.0, "lista_factor": 10.0}
