"""Sparsity statistics on hand-made codes, and group norms against a direct loop."""

import math

import numpy as np
import pytest
import torch

from sparse_models.analysis import sparsity
from sparse_models.analysis.sparsity import (
    ACTIVITY_RULE,
    ACTIVITY_SAMPLES,
    REL_THRESHOLD,
    activation_histogram,
    active_count,
    activity_samples,
    activity_threshold,
    dead_units,
    default_threshold,
    firing_frequency,
    group_norms,
    hoyer_sparsity,
    sparsity_summary,
)

# 3 samples × 4 units; 1e-5 is below the default threshold 1e-3 · max|z| = 3e-3.
CODES = np.array([
    [0.0, 1.0, 0.0, 2.0],
    [0.0, 0.0, 0.0, 0.0],
    [3.0, 0.0, 0.0, 1e-5],
])


def test_counts_with_the_default_threshold():
    assert default_threshold(CODES) == pytest.approx(3e-3)
    assert active_count(CODES).tolist() == [2, 0, 1]
    assert firing_frequency(CODES) == pytest.approx([1 / 3, 1 / 3, 0.0, 1 / 3])
    assert dead_units(CODES).tolist() == [False, False, True, False]
    assert dead_units(CODES, min_frequency=0.34).tolist() == [True, True, True, True]


def test_counts_with_an_explicit_threshold():
    assert active_count(CODES, threshold=0.0).tolist() == [2, 0, 2]
    assert firing_frequency(CODES, threshold=1.5) == pytest.approx([1 / 3, 0, 0, 1 / 3])


def test_torch_codes_give_the_same_answers():
    t = torch.tensor(CODES, dtype=torch.float32)
    assert active_count(t).tolist() == [2, 0, 1]
    assert sparsity_summary(t)["mean_l0"] == pytest.approx(1.0)


def test_histogram_counts_every_value_or_only_active_ones():
    counts, edges = activation_histogram(CODES, bins=5)
    assert counts.sum() == CODES.size and edges.shape == (6,)
    counts, _ = activation_histogram(CODES, bins=5, active_only=True)
    assert counts.sum() == 3
    counts, _ = activation_histogram(np.zeros((2, 3)), bins=4, active_only=True)
    assert counts.sum() == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_group_norms_against_a_loop(seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((7, 10)) * (rng.random((7, 10)) < 0.5)
    P = rng.random((4, 10)) * (rng.random((4, 10)) < 0.6)
    expected = np.zeros((7, 4))
    for b in range(7):
        for j in range(4):
            expected[b, j] = math.sqrt(sum(P[j, i] * z[b, i] ** 2 for i in range(10)))
    assert np.allclose(group_norms(z, P), expected)
    assert np.allclose(group_norms(torch.tensor(z), torch.tensor(P)), expected)


def test_group_norms_shape_check():
    with pytest.raises(ValueError):
        group_norms(np.zeros((2, 5)), np.ones((3, 4)))


def test_hoyer_extremes():
    one_hot = np.eye(5)
    flat = np.ones((2, 5))
    assert hoyer_sparsity(one_hot) == pytest.approx(np.ones(5))
    assert hoyer_sparsity(flat) == pytest.approx(np.zeros(2))
    assert np.isnan(hoyer_sparsity(np.zeros((1, 5)))[0])


def test_summary_values():
    P = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=float)
    s = sparsity_summary(CODES, P)
    assert s["n_samples"] == 3 and s["n_units"] == 4 and s["n_pools"] == 2
    assert s["mean_l0"] == pytest.approx(1.0)
    assert s["mean_l0_fraction"] == pytest.approx(0.25)
    assert s["mean_firing_frequency"] == pytest.approx(0.25)
    assert s["dead_fraction"] == pytest.approx(0.25)
    assert s["mean_active_pools"] == pytest.approx(1.0)  # sample 0: both pools; 1: none; 2: one
    # Hoyer over the two non-zero samples only.
    expected = np.mean([(2 - 3 / math.sqrt(5)) / 1, (2 - (3 + 1e-5) / math.sqrt(9 + 1e-10))])
    assert s["hoyer"] == pytest.approx(expected)
    assert all(isinstance(v, int | float) for v in s.values())


def test_pool_clustering_tells_clustered_from_scattered_activity():
    from sparse_models.analysis.sparsity import pool_clustering
    from sparse_models.groups import GroupSpec

    P = GroupSpec(kind="blocks", map_shape=(4, 4), size=2).pool_matrix()  # 4 pools of 4 units
    block = np.zeros((1, 16))
    block[0, [0, 1, 4, 5]] = 1.0  # four active units filling one pool
    clustered = pool_clustering(block, P, threshold=0.5, n_perm=20)
    assert clustered["active_pools"] == 1.0
    assert clustered["scattered_pools"] > 2.0  # shuffled, they spread over several pools
    assert clustered["ratio"] < 0.5
    spread = np.zeros((1, 16))
    spread[0, [0, 2, 8, 10]] = 1.0  # one unit in each pool: nothing to gain by clustering
    assert pool_clustering(spread, P, threshold=0.5, n_perm=20)["ratio"] >= 1.0


# --- the one activity rule ------------------------------------------------------------------


def test_the_rule_is_a_thousandth_of_the_largest_code_on_the_fixed_samples():
    assert REL_THRESHOLD == 1e-3 and ACTIVITY_SAMPLES == 2000
    assert activity_threshold(CODES) == pytest.approx(3e-3)  # 1e-3 × |3.0|
    assert activity_threshold(-CODES) == pytest.approx(3e-3)  # |z|: the sign does not matter
    assert activity_threshold(np.zeros((4, 3))) == 0.0  # nothing active, not everything
    assert active_count(np.zeros((4, 3))).tolist() == [0, 0, 0, 0]
    assert default_threshold is activity_threshold  # the old name is the same rule
    assert "10⁻³ × the largest |z|" in ACTIVITY_RULE and "first 2000" in ACTIVITY_RULE


def test_only_the_first_fixed_samples_set_the_threshold():
    """A run's threshold is its own: rows past the fixed samples (the report encodes 5000) do
    not move it, so 2000 codes and 5000 codes of the same run give the same threshold."""
    z = np.zeros((ACTIVITY_SAMPLES + 3, 2))
    z[0, 0] = 2.0
    z[ACTIVITY_SAMPLES - 1, 1] = -4.0  # the last fixed sample: counts
    z[ACTIVITY_SAMPLES:, :] = 1000.0  # past the fixed samples: does not
    assert activity_samples(z).shape == (ACTIVITY_SAMPLES, 2)
    assert activity_threshold(z) == pytest.approx(4e-3)
    assert activity_threshold(z) == activity_threshold(z[:ACTIVITY_SAMPLES])
    assert activity_threshold(torch.tensor(z)) == pytest.approx(4e-3)


def test_the_rule_means_the_same_at_any_scale():
    """Two runs whose codes differ only in scale count the same units as active."""
    big = CODES * 250.0
    assert activity_threshold(big) == pytest.approx(0.75)
    assert active_count(big).tolist() == active_count(CODES).tolist() == [2, 0, 1]
    assert sparsity_summary(big)["mean_l0"] == sparsity_summary(CODES)["mean_l0"]


def test_summary_with_the_rule_and_with_another_runs_threshold():
    s = sparsity_summary(CODES)
    assert s["threshold"] == pytest.approx(3e-3)
    assert s["mean_l0"] == pytest.approx(1.0)  # (2 + 0 + 1) / 3
    assert s["zero_code_fraction"] == pytest.approx(1 / 3)  # sample 1 is all zero
    assert s["mean_l0_nonzero"] == pytest.approx(1.5)  # (2 + 1) / 2
    # measured at another run's (larger) threshold, as a comparison with that run would not
    t = sparsity_summary(CODES, threshold=1.5)
    assert t["threshold"] == 1.5 and t["mean_l0"] == pytest.approx(2 / 3)  # 2.0 and 3.0
    assert t["zero_code_fraction"] == pytest.approx(1 / 3)
    nothing = sparsity_summary(np.zeros((2, 3)))
    assert nothing["zero_code_fraction"] == 1.0 and nothing["mean_l0_nonzero"] is None


def test_the_rule_reads_the_module_constants(monkeypatch):
    """The fixed samples and the fraction are one setting each, read where the rule is."""
    monkeypatch.setattr(sparsity, "ACTIVITY_SAMPLES", 1)
    monkeypatch.setattr(sparsity, "REL_THRESHOLD", 0.5)
    assert activity_threshold(CODES) == pytest.approx(1.0)  # 0.5 × |2.0| in row 0 only
    assert active_count(CODES).tolist() == [1, 0, 1]


def test_spread_first_puts_rows_from_every_input_first():
    n = 5 * sparsity.ACTIVITY_SAMPLES  # 5 rows per input on average
    z = np.arange(n, dtype=np.float64)[:, None] * np.ones((1, 3))
    out = sparsity.spread_first(z, rows_per_sample=7)
    first = out[:sparsity.ACTIVITY_SAMPLES, 0].astype(int)
    want = np.linspace(0, n - 1, sparsity.ACTIVITY_SAMPLES).round().astype(int)
    np.testing.assert_array_equal(first, want)
    assert first[0] == 0 and first[-1] == n - 1
    assert sorted(out[:, 0].astype(int).tolist()) == list(range(n))  # every row, once
    rest = out[sparsity.ACTIVITY_SAMPLES:, 0]
    assert np.all(np.diff(rest) > 0)  # the others keep their order
    t = sparsity.spread_first(torch.as_tensor(z), 7)
    assert isinstance(t, torch.Tensor) and np.array_equal(t.numpy(), out)
    assert sparsity.spread_first(z, 1) is z  # one row per input: the training order stands
    assert sparsity.spread_first(z[:100], 7) is not None
    np.testing.assert_array_equal(sparsity.spread_first(z[:100], 7), z[:100])
