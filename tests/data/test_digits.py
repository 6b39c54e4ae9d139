"""The 8×8 digits: labels, normalisation, and a held-out split that is disjoint and seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_models.config import ConfigError
from sparse_models.data import DigitsConfig, load_dataset
from sparse_models.data.digits import N_DIGITS


def _rows_with_labels(x: torch.Tensor, y: torch.Tensor) -> list[tuple]:
    return sorted(zip(map(tuple, np.round(x.double().numpy(), 6).tolist()), y.tolist(),
                      strict=True))


def test_digits_have_labels_and_a_disjoint_held_out_split():
    from sklearn.datasets import load_digits

    cfg = DigitsConfig(n_test=300, normalize="none")
    assert cfg.input_shape == (1, 8, 8) and cfg.n_samples == N_DIGITS - 300
    ds = load_dataset(cfg)
    assert ds.input_shape == (1, 8, 8) and ds.name == "digits" and ds.has_test
    assert ds.x.shape == (N_DIGITS - 300, 64) and ds.x_test.shape == (300, 64)
    assert ds.y.shape == (N_DIGITS - 300,) and ds.y_test.shape == (300,)
    assert ds.y.dtype == ds.y_test.dtype == torch.int64
    assert set(ds.y.tolist()) == set(range(10)) and set(ds.y_test.tolist()) <= set(range(10))
    # Together the two splits are exactly the 1,797 (image, label) pairs, each once: no image
    # is both trained on and held out.
    d = load_digits()
    every = _rows_with_labels(torch.from_numpy(d.data / 16.0), torch.from_numpy(d.target))
    assert _rows_with_labels(torch.cat([ds.x, ds.x_test]), torch.cat([ds.y, ds.y_test])) == every
    assert 0.0 <= float(ds.x.min()) and float(ds.x.max()) <= 1.0


def test_the_seed_chooses_the_held_out_images():
    a = load_dataset(DigitsConfig(seed=0))
    b = load_dataset(DigitsConfig(seed=0))
    c = load_dataset(DigitsConfig(seed=1))
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_test, c.x_test)
    assert a.x_test.shape == (DigitsConfig().n_test, 64)


def test_unit_norm_images_have_zero_mean_and_length_one():
    ds = load_dataset(DigitsConfig())
    for x in (ds.x, ds.x_test):
        x = x.double()
        assert x.mean(dim=1).abs().max() < 1e-6
        assert torch.allclose(x.norm(dim=1), torch.ones(len(x), dtype=torch.float64), atol=1e-5)


@pytest.mark.parametrize("settings, message", [
    ({"n_test": 0}, r"Held-out digits \(data\.n_test\) must be at least 1"),
    ({"n_test": N_DIGITS}, r"must be at most"),
    ({"normalize": "zscore"}, "normalize must be unit_norm or none"),
])
def test_bad_digit_settings_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        DigitsConfig(**settings)
