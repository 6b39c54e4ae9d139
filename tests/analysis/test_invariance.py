"""Known answers of the invariance measures: a simple cell (one Gabor, rectified) is modulated
by phase and shifts, an energy model (a quadrature pair) is not; and a conv model's sweeps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_models.analysis.invariance import (
    conv_invariance,
    grating,
    invariance_ratio,
    invariance_summary,
    modulation,
    phase_invariance,
    rotation_invariance,
    translation_invariance,
)
from sparse_models.models import build_model

SIZE = 25
THETA, FREQ = np.deg2rad(30.0), 0.14


def _gabor(phase: float) -> torch.Tensor:
    c = (SIZE - 1) / 2
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    x, y = xx - c, c - yy
    env = np.exp(-(x * x + y * y) / (2 * 4.0 ** 2))
    carrier = np.cos(2 * np.pi * FREQ * (x * np.cos(THETA) + y * np.sin(THETA)) + phase)
    return torch.as_tensor(env * carrier, dtype=torch.float32)


EVEN, ODD = _gabor(0.0), _gabor(np.pi / 2)


def simple(images: torch.Tensor) -> torch.Tensor:
    """One rectified Gabor: a simple cell. (N, 1, S, S) -> (N, 1)"""
    return torch.relu((images[:, 0] * EVEN).sum((1, 2))).unsqueeze(1)


def energy(images: torch.Tensor) -> torch.Tensor:
    """An energy model of a quadrature pair: a complex cell. (N, 1, S, S) -> (N, 1)"""
    a = (images[:, 0] * EVEN).sum((1, 2))
    b = (images[:, 0] * ODD).sum((1, 2))
    return torch.sqrt(a * a + b * b).unsqueeze(1)


def test_modulation_of_known_curves():
    assert modulation(np.array([2.0, 2.0, 2.0])) == pytest.approx(0.0)
    assert modulation(np.array([0.0, 1.0, 3.0])) == pytest.approx(1.0)
    assert modulation(np.array([1.0, 3.0])) == pytest.approx(0.5)
    assert modulation(np.zeros(4)) == 0.0


def test_a_grating_has_its_frequency_and_orientation():
    g = grating(33, 0.0, 0.125, 0.0)  # vertical stripes, 8 px period, a crest in the middle
    assert g[16, 16] == pytest.approx(1.0) and g[16, 20] == pytest.approx(-1.0)
    np.testing.assert_allclose(g[:, 16], 1.0)  # constant along the stripes


def test_the_energy_model_keeps_its_response_over_phase_the_simple_cell_does_not():
    cx = phase_invariance(energy, SIZE)
    sx = phase_invariance(simple, SIZE)
    # both find the grating they were built for
    for sweep in (cx, sx):
        assert np.rad2deg(sweep.best_theta[0]) == pytest.approx(30.0)
        assert sweep.best_freq[0] == pytest.approx(FREQ)
        assert sweep.live.all()
    assert cx.modulation[0] < 0.05  # near constant
    assert sx.modulation[0] > 0.95  # half-wave rectified: falls to zero
    assert invariance_ratio(cx, sx) < 0.05


def test_translation_of_gratings_and_rotation_known_answers():
    # images: gratings at the cells' own orientation and frequency, in many phases; a shift of
    # the window is a phase shift for them
    imgs = np.stack([grating(SIZE + 6, THETA, FREQ, p) for p in np.linspace(0, 2 * np.pi, 8)])
    cx = translation_invariance(energy, imgs, SIZE, max_shift=3)
    sx = translation_invariance(simple, imgs, SIZE, max_shift=3)
    assert cx.curves.shape == (1, 49) and cx.modulation[0] < 0.1
    assert sx.modulation[0] > 0.5
    with pytest.raises(ValueError, match="too small"):
        translation_invariance(energy, imgs, SIZE, max_shift=4)
    # turning the grating away from the preferred orientation lowers both: neither is invariant
    rot = rotation_invariance(energy, SIZE, angles=(-30.0, 0.0, 30.0))
    assert rot.curves[0, 1] > rot.curves[0, 0] and rot.curves[0, 1] > rot.curves[0, 2]
    assert rot.modulation[0] > 0.1


def test_a_conv_models_sweeps_and_summary():
    m = build_model("conv", {"input_shape": [40, 40], "maps": 4, "kernel": 5, "pool_size": 3})
    rng = np.random.default_rng(0)
    imgs = rng.standard_normal((12, 40, 40))
    sweeps = conv_invariance(m, imgs)
    assert set(sweeps) == {f"{k}_{u}" for k in ("phase", "rotation", "translation")
                           for u in ("unpooled", "pooled")}
    assert sweeps["phase_unpooled"].curves.shape == (4, 16)
    assert sweeps["translation_pooled"].curves.shape == (4, 25)
    s = invariance_summary(sweeps)
    assert s["phase_invariance_ratio"] == pytest.approx(
        s["phase_modulation_pooled"] / s["phase_modulation_unpooled"])
    # a ReLU map at one position is a simple cell: its response falls to zero over phase
    assert s["phase_modulation_unpooled"] > 0.9
    assert invariance_summary({})["translation_invariance_ratio"] is None


def test_sweeping_both_kinds_of_unit_together_gives_each_its_own_sweep():
    # conv_invariance pushes each stimulus through the model once for the unpooled and the
    # pooled units; each kind must come out as the sweeps of its own responder alone.
    from sparse_models.analysis.invariance import conv_responders

    m = build_model("conv", {"input_shape": [40, 40], "maps": 6, "kernel": 5, "pool_size": 3,
                             "pool_maps": 2})
    with torch.no_grad():
        m.W[2].zero_()  # a dead map: liveness is judged within each kind
    imgs = np.random.default_rng(1).standard_normal((10, 40, 40))
    together = conv_invariance(m, imgs)
    unpooled, pooled, size = conv_responders(m)
    for name, respond in (("unpooled", unpooled), ("pooled", pooled)):
        apart = {"phase": phase_invariance(respond, size),
                 "rotation": rotation_invariance(respond, size),
                 "translation": translation_invariance(respond, imgs, size, 2)}
        for kind, want in apart.items():
            got = together[f"{kind}_{name}"]
            assert got.curves.shape == want.curves.shape
            np.testing.assert_allclose(got.curves, want.curves, rtol=1e-5, atol=1e-9)
            np.testing.assert_array_equal(got.live, want.live)
            np.testing.assert_allclose(got.modulation, want.modulation, rtol=1e-5, atol=1e-9)
            if kind != "translation":
                np.testing.assert_array_equal(got.best_theta, want.best_theta)
                np.testing.assert_array_equal(got.best_freq, want.best_freq)
    assert together["phase_unpooled"].curves.shape[0] == 6
    assert together["phase_pooled"].curves.shape[0] == 3
    assert not together["phase_unpooled"].live[2]


def test_top_patches_find_a_planted_copy_of_a_filter():
    from sparse_models.analysis.conv_features import top_patches, unit_field

    m = build_model("conv", {"input_shape": [20, 20], "maps": 1, "kernel": 5, "pool_size": 3})
    rng = np.random.default_rng(1)
    pattern = rng.standard_normal((5, 5)).astype(np.float32)
    with torch.no_grad():
        m.W.copy_(torch.from_numpy(pattern).view(1, 1, 5, 5))
    imgs = 0.1 * rng.standard_normal((6, 20, 20)).astype(np.float32)
    imgs[4, 7:12, 3:8] += 3 * pattern  # the best match: image 4, rows 7–11, columns 3–7
    patches, values = top_patches(m, imgs, n=3)
    assert unit_field(m) == (5, 1, 4)
    assert patches.shape == (1, 3, 5, 5) and values.shape == (1, 3) and values[0, 0] >= values[0, 1]
    np.testing.assert_allclose(patches[0, 0], imgs[4, 7:12, 3:8], atol=1e-6)
