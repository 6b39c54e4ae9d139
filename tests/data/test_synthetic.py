"""Synthetic data: the Gabor orientation convention, grating patches, random orientation maps."""

import math

import numpy as np
import pytest
import torch

from sparse_models.data import DataConfig, DataError, GratingsConfig, load_dataset
from sparse_models.data.synthetic import (
    gabor,
    gabor_bank,
    grating_patches,
    random_orientation_map,
    ring_period,
)


def test_gabor_stripe_orientation_convention():
    # theta = 0: horizontal stripes, each row constant; pi/2: vertical stripes, columns constant.
    g0 = gabor(16, 0.0, sigma=math.inf)
    assert np.allclose(g0, g0[:, :1])
    assert g0[:, 0].std() > 0.3
    g90 = gabor(16, math.pi / 2, sigma=math.inf)
    assert np.allclose(g90, g90[:1, :])
    # pi/4: stripes run bottom-left to top-right (y up), i.e. constant along (row - 1, col + 1).
    g45 = gabor(16, math.pi / 4, sigma=math.inf)
    assert np.allclose(g45[1:, :-1], g45[:-1, 1:])
    assert not np.allclose(g45[:-1, :-1], g45[1:, 1:])
    g135 = gabor(16, 3 * math.pi / 4, sigma=math.inf)
    assert np.allclose(g135[:-1, :-1], g135[1:, 1:])


def test_gabor_envelope_and_centre():
    g = gabor(15, 0.7, freq=0.2, phase=0.0)
    assert g.shape == (15, 15)
    assert g[7, 7] == pytest.approx(1.0)
    assert np.abs(g).max() == pytest.approx(1.0)
    moved = gabor(15, 0.7, freq=0.2, sigma=1.5, center=(3.0, 10.0))
    r, c = np.unravel_index(np.argmax(np.abs(moved)), moved.shape)
    assert (r, c) == (3, 10)


def test_gabor_bank_is_seeded():
    f1, t1 = gabor_bank(20, 12, seed=3)
    f2, t2 = gabor_bank(20, 12, seed=3)
    f3, _ = gabor_bank(20, 12, seed=4)
    assert f1.shape == (20, 12, 12) and t1.shape == (20,)
    assert np.all((t1 >= 0) & (t1 < math.pi))
    assert np.array_equal(f1, f2) and np.array_equal(t1, t2)
    assert not np.allclose(f1, f3)


def test_grating_patches_through_load_dataset():
    cfg = DataConfig(source="gratings", patch_size=8, n_patches=256, seed=1)
    ds = load_dataset(cfg)
    assert ds.x.shape == (256, 64) and ds.x.dtype == torch.float32
    assert isinstance(cfg, GratingsConfig) and cfg.input_shape == (1, 8, 8)
    assert ds.input_shape == (1, 8, 8) and ds.y is None and ds.name == "gratings"
    assert not ds.has_test and ds.x_test is None
    x = ds.x.double()
    assert torch.allclose(x.mean(dim=1), torch.zeros(256, dtype=torch.float64), atol=1e-5)
    assert (x**2).mean().item() == pytest.approx(1.0, rel=1e-4)
    again = grating_patches(cfg)
    other = grating_patches(DataConfig(source="gratings", patch_size=8, n_patches=256, seed=2))
    assert torch.equal(ds.x, again.x)
    assert not torch.allclose(ds.x, other.x)


def test_grating_patches_contrast_normalize():
    cfg = DataConfig(source="gratings", patch_size=6, n_patches=64, contrast_normalize=True)
    std = grating_patches(cfg).x.double().std(dim=1, unbiased=False)
    assert torch.allclose(std, std[0].expand_as(std), rtol=1e-4)


def test_held_out_gratings_are_the_tail_of_one_draw():
    cfg = GratingsConfig(patch_size=6, n_patches=100, n_test=20, seed=1)
    assert cfg.n_samples == 100
    ds = load_dataset(cfg)
    assert ds.x.shape == (100, 36) and ds.x_test.shape == (20, 36) and ds.has_test
    assert ds.y is None and ds.y_test is None and ds.info["n_test"] == 20
    # training and held-out rows are one draw of n_patches + n_test patches, normalised together
    whole = grating_patches(GratingsConfig(patch_size=6, n_patches=120, seed=1))
    assert torch.equal(ds.x, whole.x[:100]) and torch.equal(ds.x_test, whole.x[100:])
    assert (torch.cat([ds.x, ds.x_test]).double() ** 2).mean().item() == pytest.approx(1, rel=1e-4)
    # ...so holding rows out changes the training rows of the same seed: the random parameters
    # are drawn per parameter for all patches at once, and the scale is set over the whole draw.
    plain = load_dataset(GratingsConfig(patch_size=6, n_patches=100, seed=1))
    assert not torch.allclose(plain.x, ds.x)


def test_load_dataset_dispatches_by_source_and_checks_its_promise(monkeypatch):
    from sparse_models.data import base

    class Liar(base.DataSource):  # claims 1×6×6 patches, delivers 1×5×5
        name = "gratings"
        Config = GratingsConfig

        @classmethod
        def load(cls, cfg):
            return base.Dataset(x=torch.zeros(16, 25), input_shape=(1, 5, 5))

    monkeypatch.setitem(base._SOURCES, "gratings", Liar)
    with pytest.raises(DataError, match=r"came out \(1, 5, 5\), not \(1, 6, 6\)"):
        load_dataset(GratingsConfig(patch_size=6, n_patches=16))


@pytest.mark.parametrize("shape, period", [((128, 128), 16.0), ((64, 96), 10.0)])
def test_random_orientation_map(shape, period):
    theta, realised = random_orientation_map(shape, period, seed=5, return_period=True)
    assert theta.shape == shape
    assert theta.min() >= 0 and theta.max() < math.pi
    assert realised == pytest.approx(period, rel=0.05)
    assert ring_period(shape, period) == pytest.approx(period, rel=0.02)
    assert np.array_equal(theta, random_orientation_map(shape, period, seed=5))
    assert not np.array_equal(theta, random_orientation_map(shape, period, seed=6))


def test_random_orientation_map_is_periodic():
    # Wrapped neighbours across the seam are as close as interior ones: the field lives on a torus.
    theta = random_orientation_map((64, 64), 16.0, seed=0)

    def diff(a, b):
        d = np.mod(a - b, math.pi)
        return np.minimum(d, math.pi - d).mean()

    inner = diff(theta[:, 1:], theta[:, :-1])
    seam = diff(theta[:, 0], theta[:, -1])
    assert seam < 2 * inner


def test_random_orientation_map_needs_modes():
    with pytest.raises(ValueError, match="too few wave vectors"):
        random_orientation_map((8, 8), period=2.3, ring_width=0.01)
