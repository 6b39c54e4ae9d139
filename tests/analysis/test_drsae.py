"""DrSAE unit analysis on known answers: angles, part / categorical units, recurrent and
classifier norms, late onset, confusion matrix; and the report's keys for a DrSAE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sparse_models.analysis.drsae import (
    class_averages,
    classifier_norms,
    confusion_matrix,
    drsae_summary,
    encoder_decoder_angles,
    error_rate,
    late_onset_share,
    recurrent_norms,
    unit_kinds,
    unit_measures,
)
from sparse_models.models import build_model


def test_angles_between_encoder_rows_and_decoder_columns():
    E = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])  # (N=4, P=2)
    D = np.array([[3.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 1.0]])  # (P=2, N=4)
    a = encoder_decoder_angles(E, D)
    np.testing.assert_allclose(a, [0.0, math.pi / 2, math.pi / 4, math.pi / 2], atol=1e-7)
    part, cat = unit_kinds(a, 0.5, 0.7)
    assert part.tolist() == [True, False, False, False]
    assert cat.tolist() == [False, True, True, True]
    part, cat = unit_kinds(a, 0.5, 1.0)  # π/4 ≈ 0.785 lies between: neither kind
    assert not part[2] and not cat[2]


def test_recurrent_and_classifier_norms():
    S = np.eye(3)
    S[0, 1] = -0.6
    S[0, 2] = 0.8
    np.testing.assert_allclose(recurrent_norms(S), [1.0, 0.0, 0.0])
    C = np.array([[3.0, 0.0, 1.0], [4.0, 0.0, 0.0]])  # (classes, N)
    np.testing.assert_allclose(classifier_norms(C), [5.0, 0.0, 1.0])


def test_late_onset_is_off_at_the_first_iteration_and_on_at_the_second():
    its = np.zeros((3, 4, 2))  # (T, B, N)
    its[1, :2, 0] = 1.0  # unit 0: on at t=2 for inputs 0, 1
    its[0, 0, 1] = its[1, 0, 1] = 1.0  # unit 1: on from t=1 (not late)
    its[1, 3, 1] = 1.0  # unit 1 late on input 3
    np.testing.assert_allclose(late_onset_share(its), [0.5, 0.25])
    assert late_onset_share(its[:1]).tolist() == [0.0, 0.0]  # T = 1: nothing is late


def test_confusion_matrix_error_and_class_averages():
    y = np.array([0, 0, 1, 2, 2, 2])
    p = np.array([0, 1, 1, 2, 0, 2])
    cm = confusion_matrix(y, p, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert cm.sum() == 6 and error_rate(y, p) == pytest.approx(2 / 6)
    x = np.arange(12, dtype=float).reshape(6, 2)
    avg = class_averages(x, y, 4)
    np.testing.assert_allclose(avg[0], [1.0, 2.0])
    assert np.isnan(avg[3]).all()  # a class without examples


def test_unit_measures_of_a_model_started_as_ista_are_all_part_units():
    """At its start E = αDᵀ: every encoder row points along its decoder column (angle 0)."""
    m = build_model("drsae", {"input_shape": [8, 8], "n_units": 12, "n_iter": 3})
    x = m.D.detach().T.clone()  # each atom as an input: its own unit fires on it
    u = unit_measures(m, x)
    assert set(u) >= {"angle", "part", "categorical", "s_norm", "c_norm", "late_onset"}
    assert np.allclose(u["angle"], 0.0, atol=1e-3) and u["part"].all() and not u["categorical"].any()
    assert u["activity"].min() > 0  # on these inputs every unit fires
    with torch.no_grad():  # unit 0's encoder row now points along unit 1's decoder column
        m.E[0] = m.E[1]
        m.b[11] = 10.0  # and unit 11 never fires: dead, neither kind
    s = drsae_summary(m, x)
    assert (s["part_units"], s["categorical_units"], s["dead_units"]) == (10, 1, 1)
    assert s["categorical_mean_s_norm"] is not None and s["part_angle"] == 0.5


def test_the_report_adds_the_unit_counts_only_for_a_drsae(runs_dir):
    from sparse_models.analysis.report import analyze_model

    m = build_model("drsae", {"input_shape": [8, 8], "n_units": 12, "n_iter": 3})
    x = torch.cat([m.D.detach().T, torch.rand(38, 64)])
    y = torch.randint(0, 10, (50,))
    out = analyze_model(m, x, x_test=x, y_test=y, max_samples=50)
    assert (out["part_units"], out["categorical_units"], out["dead_units"]) == (12, 0, 0)
    assert 0 <= out["test_error"] <= 1 and out["test_l0"] >= 0
    sc = build_model("sparse_coding", {"input_shape": [8, 8], "n_units": 12, "n_iter": 5})
    assert "part_units" not in analyze_model(sc, x, max_samples=50)
