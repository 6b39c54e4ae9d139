"""The report: JSON-ready, and right on a model whose filters follow a known orientation map."""

import json
import math

import numpy as np
import pytest
import torch

from sparse_models.analysis.pinwheels import column_spacing, find_pinwheels
from sparse_models.analysis.report import analyze_model, summarize
from sparse_models.data.synthetic import gabor, random_orientation_map
from sparse_models.groups import GroupSpec
from sparse_models.models import build_model
from sparse_models.models.base import Layout, SparseModel

REQUIRED = (
    "live_fraction", "mean_selectivity", "neighbour_orientation_diff_deg", "explained_variance",
    "pinwheel_count", "column_spacing", "pinwheel_density", "shuffled_pinwheel_density",
    "mean_l0", "dead_fraction", "within_pool_similarity", "between_pool_similarity",
)
MAP = (16, 16)
PATCH = 10


def _map_filters(seed=0):
    theta = random_orientation_map(MAP, 8.0, seed=seed)
    filters = np.stack([gabor(PATCH, t, freq=0.25) for t in theta.ravel()])
    return theta, filters / np.linalg.norm(filters.reshape(len(filters), -1), axis=1)[:, None, None]


class GaborMapModel(SparseModel):
    """A fixed linear model: decoder columns are Gabors laid out on a 16×16 torus."""

    name = "test_gabor_map"

    def __init__(self, layout: Layout | None = None):
        super().__init__(config=None)
        layout = layout or Layout("map", MAP, wrap=True)
        _, filters = _map_filters()
        self.D = torch.nn.Parameter(torch.tensor(filters.reshape(len(filters), -1).T).float())
        self._layout = layout

    def encode(self, x):
        return torch.relu(x @ self.D - 0.5)

    def decode(self, z):
        return z @ self.D.T

    @property
    def n_units(self):
        return self.D.shape[1]

    @property
    def input_shape(self):
        return (1, PATCH, PATCH)

    @property
    def layout(self):
        return self._layout

    def pools(self):
        return GroupSpec(kind="neighbourhood", map_shape=MAP, size=3, wrap=True).pool_tensor()

    def filters(self, kind="decoder"):
        return self.D.detach().T.reshape(-1, 1, PATCH, PATCH).clone()


WHY_KEYS = ("why_no_map", "why_no_orientation", "why_no_pools")


def _check_plain(report):
    json.dumps(report, allow_nan=False)  # raises on NaN
    for key in REQUIRED + WHY_KEYS:
        assert key in report
    for k, v in report.items():
        if k.startswith("why_"):  # the reasons are words, or None when the measures apply
            assert v is None or (type(v) is str and v), k
        else:
            assert v is None or type(v) in (int, float, bool), k


def test_summarize_recovers_the_map():
    theta, filters = _map_filters()
    rng = np.random.default_rng(0)
    codes = np.maximum(rng.standard_normal((64, 256)), 0)
    x = rng.standard_normal((64, PATCH * PATCH))
    out = summarize(filters, MAP, codes, x, x, periodic=True, smooth_sigma=0.0)
    _check_plain(out)
    assert out["explained_variance"] == pytest.approx(1.0)
    assert out["mean_selectivity"] > 0.7
    assert out["pinwheel_count"] == len(find_pinwheels(theta, periodic=True)) > 0
    assert out["pinwheel_count_positive"] == out["pinwheel_count_negative"]
    assert out["column_spacing"] == pytest.approx(column_spacing(theta, periodic=True), rel=0.02)
    assert out["shuffled_pinwheel_density"] > out["pinwheel_density"]
    assert out["within_pool_similarity"] is None  # no pool matrix given
    assert out["why_no_pools"] == "it has no pools (no group-sparsity penalty)"
    assert out["why_no_map"] is None and out["why_no_orientation"] is None
    assert out["live_fraction"] == pytest.approx(1.0)
    # (N, 1, h, w) filters are the same single-channel filters
    assert summarize(filters[:, None], MAP, codes, x, x, periodic=True, smooth_sigma=0.0) == out


def test_constant_map_gives_none_not_nan():
    filters = np.stack([gabor(8, 0.4)] * 16)
    codes = np.zeros((5, 16))
    x = np.ones((5, 64))
    out = summarize(filters, (4, 4), codes, x, x, periodic=True)
    _check_plain(out)
    assert out["column_spacing"] is None and out["pinwheel_density"] is None
    assert out["explained_variance"] is None and out["pinwheel_count"] == 0
    assert out["live_fraction"] == 0.0 and out["dead_fraction"] == 1.0


def test_analyze_model_through_the_interface():
    model = GaborMapModel()
    x = torch.randn(300, PATCH * PATCH, generator=torch.Generator().manual_seed(0))
    out = analyze_model(model, x, max_samples=200, batch_size=64)
    _check_plain(out)
    assert out["n_samples"] == 200 and out["n_units"] == 256 and out["map_periodic"] is True
    assert out["map_rows"] == 16 and out["pinwheel_count"] > 0
    assert out["n_pools"] == 256 and out["why_no_pools"] is None and out["why_no_map"] is None
    assert out["why_no_test"] == "the data has no held-out split"
    assert not any(k.startswith("test_") for k in out)
    # Neighbouring Gabors share orientation, so pool members are more alike than strangers.
    assert out["within_pool_similarity"] > out["between_pool_similarity"]
    with torch.no_grad():
        xs = x[:200]
        resid = ((xs - model.decode(model.encode(xs))) ** 2).sum()
        expected = 1 - resid / ((xs - xs.mean(0)) ** 2).sum()
    assert out["explained_variance"] == pytest.approx(expected.item(), rel=1e-4)
    assert model.D.grad is None


def test_analyze_model_skips_map_measures_for_trees():
    tree = Layout("tree", parents=(-1,) + tuple(range(255)))
    out = analyze_model(GaborMapModel(layout=tree), torch.randn(20, PATCH * PATCH))
    _check_plain(out)
    assert out["pinwheel_count"] is None and out["column_spacing"] is None
    assert out["map_rows"] is None and out["map_periodic"] is None
    assert out["why_no_map"] == "its units form a tree, not a 2-D map"
    assert out["mean_selectivity"] is not None and not math.isnan(out["mean_selectivity"])
    assert out["why_no_orientation"] is None


def test_a_model_without_a_map_says_why_it_has_no_map_measures():
    model = build_model("sparse_coding", {"input_shape": [6, 6], "n_units": 16, "n_iter": 5})
    out = analyze_model(model, torch.randn(40, 36))
    _check_plain(out)
    assert out["why_no_map"] == "its units have no spatial layout"
    assert all(out[k] is None for k in ("map_rows", "pinwheel_count", "column_spacing",
                                        "neighbour_orientation_diff_deg"))
    assert out["why_no_pools"] == "it has no pools (no group-sparsity penalty)"
    assert out["within_pool_similarity"] is None


def test_a_strip_or_a_map_that_does_not_fit_the_filters_is_no_map():
    _, filters = _map_filters()
    codes = np.ones((4, 256))
    x = np.random.default_rng(0).standard_normal((4, PATCH * PATCH))
    strip = summarize(filters, (1, 256), codes, x, x)
    _check_plain(strip)
    assert strip["pinwheel_count"] is None and "1×256 strip" in strip["why_no_map"]
    wrong = summarize(filters, (8, 8), codes, x, x)
    _check_plain(wrong)
    assert wrong["map_rows"] is None and wrong["pinwheel_count"] is None
    assert wrong["why_no_map"] == "its 256 filters do not fill the 8×8 map"
    told = summarize(filters, None, codes, x, x, why_no_map="its units are in a ring")
    assert told["why_no_map"] == "its units are in a ring" and told["pinwheel_count"] is None


def test_multi_channel_filters_have_no_orientation_and_say_so():
    _, filters = _map_filters()
    colour = np.repeat(filters[:, None], 3, axis=1)  # (N, 3, h, w)
    codes = np.ones((4, 256))
    x = np.random.default_rng(0).standard_normal((4, 3 * PATCH * PATCH))
    out = summarize(colour, MAP, codes, x, x, periodic=True)
    _check_plain(out)
    assert out["why_no_orientation"] == ("its filters have 3 channels; orientation is measured "
                                         "on single-channel filters")
    assert out["mean_selectivity"] is None and out["pinwheel_count"] is None
    assert out["why_no_map"] == out["why_no_orientation"]
    assert out["n_filters"] == 256 and out["explained_variance"] == pytest.approx(1.0)


def test_held_out_data_adds_the_models_evaluation():
    model = build_model("topographic", {"input_shape": [6, 6],
                                        "group": {"map_shape": [4, 4], "size": 3}})
    g = torch.Generator().manual_seed(2)
    x, x_test = torch.randn(60, 36, generator=g), torch.randn(30, 36, generator=g)
    out = analyze_model(model, x, x_test=x_test)
    _check_plain(out)
    expected = model.evaluate(x_test)
    assert out["why_no_test"] is None and out["test_samples"] == 30
    assert {f"test_{k}" for k in expected} <= set(out)
    for k, v in expected.items():
        assert out[f"test_{k}"] == pytest.approx(v, rel=1e-5), k
    empty = analyze_model(model, x, x_test=x_test[:0])  # an empty split is no split
    assert empty["why_no_test"] == "the data has no held-out split" and "test_loss" not in empty


def test_sparsity_measures_follow_the_one_activity_rule(monkeypatch):
    """The report counts active units as the Sparsity page does: on the first ACTIVITY_SAMPLES
    codes, at the run's threshold; more encoded samples do not change those numbers."""
    from sparse_models.analysis import sparsity

    monkeypatch.setattr(sparsity, "ACTIVITY_SAMPLES", 4)
    _, filters = _map_filters()
    z = np.zeros((6, 256))
    z[0, :3] = 1.0  # 3 active units
    z[1, 0] = 2.0  # 1 active unit; sets the threshold 2e-3
    z[2, 5] = 1e-3  # below the threshold: an all-zero code
    # z[3] all zero; rows 4 and 5 are past the fixed samples: every unit, and a larger |z|
    z[4:] = 50.0
    x = np.ones((6, PATCH * PATCH))
    out = summarize(filters, MAP, z, x, x, periodic=True)
    _check_plain(out)
    assert out["n_samples"] == 6 and out["sparsity_samples"] == 4
    assert out["threshold"] == pytest.approx(2e-3)
    assert out["mean_l0"] == pytest.approx(1.0)  # (3 + 1 + 0 + 0) / 4
    assert out["mean_l0_fraction"] == pytest.approx(1.0 / 256)
    assert out["zero_code_fraction"] == pytest.approx(0.5)
    assert out["mean_l0_nonzero"] == pytest.approx(2.0)
    assert out["dead_fraction"] == pytest.approx(253 / 256)
    assert out["live_fraction"] == pytest.approx(3 / 256)  # 1 − dead, on the same samples
    same = sparsity.sparsity_summary(z[:4])
    assert all(out[k] == pytest.approx(same[k]) for k in ("mean_l0", "threshold", "hoyer"))


def test_a_conv_models_activity_samples_come_from_many_images():
    # Each 48×48 image gives 52² = 2704 code rows, more than the activity samples: under a
    # first-rows rule every sample would be a position of the first image, here blank, and
    # every map would look dead. The samples are spread over all the images instead.
    m = build_model("conv", {"input_shape": [48, 48], "maps": 4, "kernel": 5, "pool_size": 2})
    x = torch.randn(12, 48 * 48, generator=torch.Generator().manual_seed(0))
    x[0] = 0.0
    report = analyze_model(m, x)
    assert m.rows_per_sample == 2704
    assert report["sparsity_samples"] == 2000
    assert report["live_fraction"] == 1.0 and report["dead_fraction"] == 0.0
    assert report["threshold"] > 0
    assert 0 < report["mean_firing_frequency"] < 1
