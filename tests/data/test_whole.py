"""The `images` source: large crops of whole whitened photographs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparse_models.config import ConfigError
from sparse_models.data import DataConfig, DataError, ImagesConfig, load_dataset
from sparse_models.data.whole import dihedral

SMALL = dict(images=("camera", "grass"), n_crops=200, crop=24)


def test_shape_normalisation_and_config_declarations():
    cfg = DataConfig("images", **SMALL)
    assert isinstance(cfg, ImagesConfig)
    assert cfg.input_shape == (1, 24, 24) and cfg.n_samples == 200
    ds = load_dataset(cfg)
    assert ds.x.shape == (200, 24 * 24) and ds.x.dtype == torch.float32
    assert ds.input_shape == (1, 24, 24) and not ds.has_test
    torch.testing.assert_close(ds.x.mean(1), torch.zeros(200), atol=1e-4, rtol=0)
    assert abs(float(ds.x.var(0).mean()) - 1.0) < 0.02


def test_held_out_split_is_apart_from_training():
    ds = load_dataset(DataConfig("images", **SMALL, n_test=50))
    assert ds.x.shape == (200, 576) and ds.x_test.shape == (50, 576) and ds.has_test
    train = {tuple(r) for r in ds.x.numpy().round(4)}
    assert not any(tuple(r) in train for r in ds.x_test.numpy().round(4))


def test_determinism_by_seed():
    a = load_dataset(DataConfig("images", **SMALL, seed=3))
    b = load_dataset(DataConfig("images", **SMALL, seed=3))
    c = load_dataset(DataConfig("images", **SMALL, seed=4))
    assert torch.equal(a.x, b.x)
    assert not torch.equal(a.x, c.x)


def test_augmentation_is_an_exact_symmetry_of_each_crop():
    rng = np.random.default_rng(0)
    crops = rng.standard_normal((64, 5, 5))
    out = dihedral(crops, np.random.default_rng(1))
    for a, b in zip(crops, out, strict=True):  # each output is one of the 8 turns of its input
        turns = [np.rot90(a, k) for k in range(4)]
        assert any(np.array_equal(b, t) or np.array_equal(b, t[:, ::-1]) for t in turns)
    # all 8 symmetries are used
    kinds = {min(k + 4 * f for k in range(4) for f in range(2)
                 if np.array_equal(b, (np.rot90(a, k)[:, ::-1] if f else np.rot90(a, k))))
             for a, b in zip(crops, out, strict=True)}
    assert len(kinds) == 8


def test_augmentation_turns_each_crop_as_drawn():
    """Known answer: crop i is turned by k_i quarter turns, then flipped left-right when f_i,
    with k then f drawn from the generator in that order."""
    crops = np.random.default_rng(2).standard_normal((40, 6, 6))
    out = dihedral(crops, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    k, f = rng.integers(0, 4, 40), rng.integers(0, 2, 40)
    for a, b, turns, flip in zip(crops, out, k, f, strict=True):
        want = np.rot90(a, turns)
        assert np.array_equal(b, want[:, ::-1] if flip else want)


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="crop"):
        DataConfig("images", crop=4)
    with pytest.raises(ConfigError, match="whitening"):
        DataConfig("images", whitening="zca")
    with pytest.raises(DataError, match="unknown image"):
        load_dataset(DataConfig("images", images=("nope",), n_crops=16))
    with pytest.raises(DataError, match="too small"):
        load_dataset(DataConfig("images", images=("coins",), crop=256, n_crops=16, downscale=4))


def test_rotated_copies_even_out_the_cardinal_excess():
    """Turned copies (0, 15, …, 75°) with the symmetries of the square: the crops' oriented
    energy is spread more evenly than with the symmetries alone (measured on the crops)."""
    from sparse_models.analysis.orientation import preferred_orientation

    def spread(rotations: int) -> float:
        ds = load_dataset(DataConfig("images", images=("camera", "brick", "coffee"), crop=20,
                                     n_crops=1500, rotations=rotations))
        th, sel = preferred_orientation(ds.x.numpy().reshape(-1, 20, 20))
        h, _ = np.histogram(np.degrees(th), bins=6, range=(0, 180), weights=sel)
        h = h / h.sum()
        return float(h.max() / h.min())

    plain, turned = spread(1), spread(6)
    assert turned < plain  # the busiest 30° band over the emptiest: closer to 1


def test_inner_square_keeps_only_real_pixels_and_names_the_copies():
    from sparse_models.data.whole import inner_square, source_images

    img = np.ones((60, 80))
    out = inner_square(img, 45.0)
    assert out.shape[0] == out.shape[1] <= int(60 / np.sqrt(2))
    np.testing.assert_allclose(out, 1.0, atol=1e-6)  # nothing from outside the picture
    images, names, _ = source_images(ImagesConfig(images=("camera",), crop=24, rotations=3))
    assert names == ["camera", "camera@30°", "camera@60°"] and len(images) == 3


def test_a_folder_of_images_is_used_or_refused_in_words(tmp_path):
    from skimage import data as skdata
    from skimage.io import imsave

    imsave(tmp_path / "a.png", skdata.camera())
    ds = load_dataset(DataConfig("images", folder=str(tmp_path), crop=24, n_crops=64))
    assert ds.x.shape == (64, 576) and ds.info["images"] == ["a.png"]
    assert ds.info["folder"] == str(tmp_path.resolve())
    from sparse_models.data import check_data

    with pytest.raises(DataError, match="no PNG|does not exist|not a folder|no images"):
        check_data(DataConfig("images", folder=str(tmp_path / "missing"), crop=24, n_crops=64))


def test_local_contrast_normalisation_removes_the_local_mean_and_evens_out_contrast():
    from sparse_models.data.whole import local_contrast_normalise

    rng = np.random.default_rng(0)
    img = rng.standard_normal((64, 64))
    img[:, 32:] *= 10.0  # a low- and a high-contrast half
    img += np.linspace(0, 50, 64)[None, :]  # and a ramp of brightness
    out = local_contrast_normalise(img, 2.0)
    assert abs(out[8:56, 8:24].mean()) < 0.1 and abs(out[8:56, 40:56].mean()) < 0.1
    left, right = out[8:56, 8:24].std(), out[8:56, 40:56].std()
    assert 0.8 < right < 1.2  # divided by its own local standard deviation
    # the quiet half is divided by the image's mean local s.d. instead (not blown up to 1)
    assert left < 0.5 * right
    ds = load_dataset(DataConfig("images", **SMALL, contrast="lcn", whitening="none"))
    assert ds.info["contrast"] == "lcn" and ds.x.shape == (200, 576)
    with pytest.raises(ConfigError, match="contrast"):
        DataConfig("images", **SMALL, contrast="global")
