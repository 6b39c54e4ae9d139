"""Natural-image patches: normalisation, determinism, whitening properties, and bad inputs."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from sparse_models.config import ConfigError
from sparse_models.data import DataConfig, DataError, FolderConfig, NaturalConfig, load_dataset
from sparse_models.data.natural import (
    BORDER,
    available_images,
    folder_patches,
    load_grey_image,
    natural_patches,
    whiten_image,
)

SMALL = dict(images=("camera", "grass", "china"), n_patches=2000, patch_size=8, downscale=2)


def small(**kw) -> NaturalConfig:
    return NaturalConfig(**{**SMALL, **kw})


def pink_noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A random image with a 1/f amplitude spectrum, like a natural image: (h, w) in [0, 1]."""
    rng = np.random.default_rng(seed)
    f = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None] ** 2)
    spec = np.fft.fft2(rng.standard_normal((h, w))) / np.maximum(f, 1.0 / max(h, w))
    img = np.fft.ifft2(spec).real
    return (img - img.min()) / (img.max() - img.min())


def save(path, img: np.ndarray) -> None:
    Image.fromarray((img * 255).astype(np.uint8)).save(path)


def radial_ratio(img: np.ndarray) -> float:
    """Mean power at low (0.02–0.05 cycles/pixel) over mid (0.1–0.2) frequencies."""
    power = np.abs(np.fft.fft2(img - img.mean())) ** 2
    f = np.sqrt(np.fft.fftfreq(img.shape[0])[:, None] ** 2 + np.fft.fftfreq(img.shape[1])[None] ** 2)
    return float(power[(f > 0.02) & (f < 0.05)].mean() / power[(f > 0.1) & (f < 0.2)].mean())


@pytest.mark.parametrize("whitening", ["olshausen", "zca", "none"])
@pytest.mark.parametrize("contrast", [False, True])
def test_patches_shape_zero_mean_unit_variance(whitening: str, contrast: bool) -> None:
    ds = load_dataset(small(whitening=whitening, contrast_normalize=contrast))
    assert ds.x.shape == (2000, 64) and ds.x.dtype == torch.float32
    assert ds.input_shape == (1, 8, 8) and ds.y is None and ds.name == "natural"
    assert not ds.has_test and ds.x_test is None
    x = ds.x.double()
    assert x.mean(dim=1).abs().max() < 1e-5
    assert x.var(dim=0, unbiased=False).mean() == pytest.approx(1.0, abs=1e-4)
    assert ds.info["images"] == ["camera", "grass", "china"]
    assert ds.info["whitening"] == whitening and sum(ds.info["patches_per_image"]) == 2000


def test_same_seed_same_patches_other_seed_others() -> None:
    a, b = natural_patches(small(seed=3)), natural_patches(small(seed=3))
    c = natural_patches(small(seed=4))
    assert torch.equal(a.x, b.x)
    assert not torch.allclose(a.x, c.x)


def test_patches_distinct_and_spread_by_area() -> None:
    ds = natural_patches(small(whitening="none"))
    assert len(torch.unique(ds.x, dim=0)) == len(ds)
    shapes = ds.info["image_shapes"]  # camera 256², grass 256², china 213×320
    usable = np.array([(h - 8 - 2 * BORDER + 1) * (w - 8 - 2 * BORDER + 1) for h, w in shapes])
    expected = 2000 * usable / usable.sum()
    assert np.abs(np.array(ds.info["patches_per_image"]) - expected).max() <= 1


@pytest.mark.parametrize("name", ["camera", "china"])
def test_olshausen_whitening_flattens_the_spectrum(name: str) -> None:
    raw = load_grey_image(name, 2)
    white = whiten_image(raw, "olshausen")
    assert white.shape == raw.shape
    assert white.mean() == pytest.approx(0, abs=1e-9) and white.std() == pytest.approx(1)
    before, after = radial_ratio(raw), radial_ratio(white)
    assert before > 10  # natural images: power falls steeply with frequency
    assert after < before / 5 and 0.2 < after < 5


@pytest.mark.parametrize("name", ["camera", "china", "coffee"])
def test_olshausen_whitening_has_no_edge_artefacts(name: str) -> None:
    # Filtering without padding wraps each image edge onto the opposite one: the outermost
    # 3 pixels then have about twice the RMS of the interior. Mirror padding removes that.
    white = whiten_image(load_grey_image(name, 2), "olshausen")
    interior = np.sqrt(np.mean(white[10:-10, 10:-10] ** 2))
    for d in range(3):
        ring = np.concatenate([white[:, d], white[:, -1 - d], white[d], white[-1 - d]])
        assert np.sqrt(np.mean(ring**2)) < 1.2 * interior


def test_zca_covariance_is_identity_off_the_patch_mean() -> None:
    ds = natural_patches(small(whitening="zca", n_patches=4000))
    lam, vec = np.linalg.eigh(np.cov(ds.x.double().numpy().T))
    # The constant patch was removed (per-patch mean), so one direction stays empty.
    assert lam[0] < 1e-6
    assert abs(abs(vec[:, 0].sum()) - 8.0) < 1e-3  # that direction is the constant vector
    assert lam[1:].min() > 0.85 and lam[1:].max() < 1.15
    raw = natural_patches(small(whitening="none", n_patches=4000)).x.double().numpy()
    lam_raw = np.linalg.eigvalsh(np.cov(raw.T))
    assert lam_raw[-1] / lam_raw[1] > 50  # raw pixels are far from white


def test_zca_transform_in_info_reproduces_the_dataset() -> None:
    plain = natural_patches(small(whitening="none"))  # same patches, before ZCA
    zca = natural_patches(small(whitening="zca"))
    x = plain.x.double() / plain.info["scale"]
    mean, m = zca.info["zca_mean"].double(), zca.info["zca_matrix"].double()
    assert m.shape == (64, 64) and torch.allclose(m, m.T, atol=1e-4)
    assert torch.allclose((x - mean) @ m, zca.x.double(), atol=1e-3)


def test_unknown_image_name_lists_the_available_ones() -> None:
    with pytest.raises(DataError, match="unknown image 'lena'.*camera.*china"):
        natural_patches(small(images=("camera", "lena")))


def test_every_available_image_loads() -> None:
    for name in available_images():
        img = load_grey_image(name, 4)
        assert img.ndim == 2 and min(img.shape) >= 64, name
        assert 0 <= img.min() and img.max() <= 1 and img.std() > 0.02, name


def test_images_too_small_after_downscaling_are_named() -> None:
    with pytest.raises(DataError, match=r"'coins' is 48×37 pixels after downscale 8"):
        natural_patches(small(images=("coins",), patch_size=32, downscale=8))


def test_config_rejects_a_bare_string_of_images() -> None:
    with pytest.raises(ConfigError, match="list of image names"):
        NaturalConfig(images="camera")  # type: ignore[arg-type]
    # through a dict (a run's data section), the key is named
    with pytest.raises(ConfigError, match=r"data\.images must be a list"):
        DataConfig(images="camera")


def test_held_out_patches_come_from_the_same_draw() -> None:
    ds = load_dataset(small(n_patches=1500, n_test=500))
    whole = natural_patches(small(n_patches=2000))  # one draw of 2000, same statistics
    assert ds.x.shape == (1500, 64) and ds.x_test.shape == (500, 64) and ds.has_test
    assert torch.equal(ds.x, whole.x[:1500]) and torch.equal(ds.x_test, whole.x[1500:])
    assert ds.y is None and ds.y_test is None and ds.info["n_test"] == 500
    assert small(n_patches=1500, n_test=500).n_samples == 1500  # what batches are drawn from


# ---- a user's folder ---------------------------------------------------------------------------

def test_folder_patches_read_png_and_jpeg_and_leave_files_alone(tmp_path) -> None:
    save(tmp_path / "a.png", pink_noise(120, 160, seed=1))
    save(tmp_path / "b.JPG", pink_noise(100, 100, seed=2))
    (tmp_path / "notes.txt").write_text("not an image")
    before = {p.name: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in tmp_path.iterdir()}
    cfg = DataConfig(source="folder", folder=str(tmp_path), n_patches=500, patch_size=8,
                     downscale=1)
    assert isinstance(cfg, FolderConfig) and cfg.input_shape == (1, 8, 8)
    ds = load_dataset(cfg)
    assert ds.x.shape == (500, 64) and ds.name == "folder" and ds.input_shape == (1, 8, 8)
    assert ds.info["images"] == ["a.png", "b.JPG"]
    assert ds.x.double().var(dim=0, unbiased=False).mean() == pytest.approx(1.0, abs=1e-4)
    after = {p.name: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in tmp_path.iterdir()}
    assert after == before


def test_folder_cache_notices_a_changed_file(tmp_path) -> None:
    cfg = DataConfig(source="folder", folder=str(tmp_path), n_patches=200, patch_size=8,
                     downscale=1)
    save(tmp_path / "a.png", pink_noise(64, 64, seed=1))
    first = folder_patches(cfg).x
    save(tmp_path / "a.png", pink_noise(64, 80, seed=2))
    os.utime(tmp_path / "a.png", ns=(1, 10**18))  # a distinct mtime even on coarse clocks
    assert not torch.allclose(first, folder_patches(cfg).x)


def folder_cfg(path, **kw) -> FolderConfig:
    return FolderConfig(**{"folder": str(path), "n_patches": 100, "patch_size": 8,
                           "downscale": 1, **kw})


@pytest.mark.parametrize("folder", ["", "   "])
def test_folder_config_needs_a_folder(folder) -> None:
    with pytest.raises(ConfigError, match="needs an image folder"):
        FolderConfig(folder=folder)
    with pytest.raises(ConfigError, match="needs an image folder"):
        DataConfig("folder", folder=folder)
    with pytest.raises(ConfigError, match="needs an image folder"):
        DataConfig("folder")  # its default is no folder


def test_missing_folder(tmp_path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        folder_patches(folder_cfg(tmp_path / "nope"))


def test_folder_that_is_a_file(tmp_path) -> None:
    save(tmp_path / "a.png", pink_noise(64, 64))
    with pytest.raises(DataError, match="is not a folder"):
        folder_patches(folder_cfg(tmp_path / "a.png"))


def test_folder_without_images(tmp_path) -> None:
    with pytest.raises(DataError, match="no image files"):
        folder_patches(folder_cfg(tmp_path))
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match=r"no image files.*\.png"):
        folder_patches(folder_cfg(tmp_path))


def test_corrupt_image_is_named(tmp_path) -> None:
    save(tmp_path / "good.png", pink_noise(64, 64))
    (tmp_path / "broken.png").write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(DataError, match="could not read 'broken.png'"):
        folder_patches(folder_cfg(tmp_path))


def test_too_small_image_is_named_with_sizes(tmp_path) -> None:
    save(tmp_path / "big.png", pink_noise(64, 64))
    save(tmp_path / "tiny.png", pink_noise(30, 40))
    with pytest.raises(DataError, match=r"'tiny.png' is 20×15 pixels after downscale 2.*24×24"):
        folder_patches(folder_cfg(tmp_path, downscale=2, patch_size=16))


def test_too_few_pixels_for_the_patch_count(tmp_path) -> None:
    save(tmp_path / "a.png", pink_noise(40, 40))  # (40 − 8 − 8 + 1)² = 625 positions
    with pytest.raises(DataError, match="only 625 distinct 8×8 patch positions.*n_patches=1000"):
        folder_patches(folder_cfg(tmp_path, n_patches=1000))
