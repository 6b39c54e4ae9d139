"""Large crops of whole whitened photographs, for image-level models (Gregor & LeCun 2010).

Where `natural` cuts small patches for patch models, this source cuts `n_crops` random square
crops of side `crop` (e.g. 32–64 px) from the same bundled photographs, whitened as whole
images first (`natural`'s cached pipeline: grey, downscale, Olshausen & Field 1/f whitening),
so a model with a sheet of local receptive fields sees whole scenes rather than patches.

With `folder`, the crops come from the PNG/JPEG files of a folder of the user's instead.

With `contrast="lcn"`, each whole image is then locally contrast-normalised (local mean
removed, divided by the local standard deviation; Jarrett et al. 2009), as Kavukcuoglu et al.
(NIPS 2010) train their convolutional models; usually with `whitening="none"`.

Per crop: an optional random symmetry of the square (below), mean removal; then the whole set
is scaled to unit average pixel variance. Rows are flattened crops `(n, crop²)`. With
`n_test`, the last `n_test` crops (drawn with the training ones) are held out.

Photographs lean to horizontal and vertical. Two remedies, both exact or nearly so for the
whitened signal: the symmetries of the square (`dihedral`, no interpolation at all), and
`rotations` turned copies of each photograph at multiples of 90°/rotations, made from the grey
image *before* whitening (cubic interpolation, then the largest axis-aligned square inside the
turned image). The slight low-pass of interpolation falls where the whitening filter's own
low-pass (Olshausen & Field) already removes the signal, so the whitened copies are not blurred
where the model looks. Together with the symmetries they spread the cardinal excess over every
multiple of 90°/rotations.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from ..config import check, check_ranges, setting
from .base import MAX_SAMPLES, Dataset, DataSource, register_source
from .images import image_files, load_grey_image, read_grey_file, whiten_image
from .natural import (
    BORDER,
    DEFAULT_IMAGES,
    _freeze,
    _image_kind,
    bundled_images,
    check_bundled_names,
    check_image_names,
    check_size,
    file_stamps,
    sample_patches,
)

MIN_CROP = 8  # px: smaller than this is a patch, not an image


@dataclass(frozen=True)
class ImagesConfig:
    source: ClassVar[str] = "images"
    crop: int = setting(32, label="Crop side (px)", min=MIN_CROP, max=256, shape=True,
                        help="Side of the square crops of whole images the model sees.")
    n_crops: int = setting(4000, label="Crops", min=16, max=MAX_SAMPLES,
                           help="Training crops, drawn once and then shuffled into batches.")
    n_test: int = setting(0, label="Held-out crops", min=0, max=MAX_SAMPLES,
                          help="Crops drawn with the training ones but kept out of training, "
                               "to evaluate on (0: none).")
    images: tuple[str, ...] = setting(DEFAULT_IMAGES, label="Images",
                                      help="Bundled photographs to cut crops from.")
    folder: str = setting("", label="Image folder (empty: the bundled images)",
                          help="A folder of your own PNG/JPEG images to cut the crops from "
                               "instead of the bundled photographs.")
    rotations: int = setting(1, label="Rotated copies per image", min=1, max=12,
                             help="Each image is also used turned by every multiple of "
                                  "90°/n (1: not turned): evens out the photographs' excess "
                                  "of horizontal and vertical edges.")
    whitening: Literal["olshausen", "none"] = setting(
        "olshausen", label="Whitening",
        help="olshausen: 1/f whitening of each whole image with a low-pass (Olshausen & Field); "
             "none: only mean removal and scaling.")
    contrast: Literal["none", "lcn"] = setting(
        "none", label="Local contrast normalisation",
        help="lcn: each whole image (after whitening, if any) has its local mean removed and is "
             "divided by its local standard deviation (Gaussian window of width lcn_sigma; "
             "Jarrett et al. 2009, as Kavukcuoglu et al. 2010 train on); none: off.")
    lcn_sigma: float = setting(2.0, label="LCN window σ (px)", min=0.5, max=32.0,
                               when={"contrast": "lcn"},
                               help="Width of the Gaussian window of local contrast "
                                    "normalisation, in pixels of the downscaled image.")
    downscale: int = setting(2, label="Downscale factor", min=1, max=8,
                             help="Integer factor the images are shrunk by before whitening.")
    augment: bool = setting(True, label="Random flips and 90° rotations",
                            help="Each crop is turned by a random symmetry of the square: "
                                 "balances horizontal against vertical and the two diagonals.")
    seed: int = setting(0, label="Data seed", min=0, max=2**31 - 1,
                        help="Which crops are drawn (and how they are turned).")

    def __post_init__(self) -> None:
        check(self.contrast in ("none", "lcn"),
              f"data.contrast must be none or lcn, got {self.contrast!r}")
        check(self.whitening in ("olshausen", "none"),
              f"data.whitening must be olshausen or none for whole images; got {self.whitening!r}")
        check_image_names(self.images)
        check_ranges(self, "data.")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (1, self.crop, self.crop)

    @property
    def n_samples(self) -> int:
        return self.n_crops


def dihedral(crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each `(size, size)` crop of `(n, size, size)` turned by one of the 8 symmetries of the
    square (k·90° rotation, then an optional left-right flip), drawn uniformly.

    Why: photographs lean strongly to horizontal and vertical structure (horizons, gravity,
    buildings), and a sheet trained on them comes out with mostly two orientations. A 90°
    rotation swaps horizontal and vertical, a flip swaps the two diagonals, so the augmented set
    holds each in equal measure. These are exact permutations of pixels: nothing is interpolated,
    so the whitened spectrum is not blurred (an arbitrary-angle rotation would low-pass it), and
    the isotropic whitening filter commutes with them. They do not remove the excess of
    cardinal (0°/90°) over oblique (45°/135°) energy: that would need other images or weights.
    """
    k = rng.integers(0, 4, crops.shape[0])
    flip = rng.integers(0, 2, crops.shape[0]).astype(bool)
    n, h, w = crops.shape
    flat = crops.reshape(n, h * w)
    where = np.arange(h * w).reshape(h, w)  # each symmetry as a permutation of the pixels
    out = np.empty_like(flat)
    for turns in range(4):  # 8 groups, each one gather: not a loop over crops
        for flipped in (False, True):
            sel = np.flatnonzero((k == turns) & (flip == flipped))
            perm = np.rot90(where, turns)
            out[sel] = flat[sel[:, None], (perm[:, ::-1] if flipped else perm).ravel()]
    return out.reshape(crops.shape)


@register_source
class WholeImages(DataSource):
    name = "images"
    Config = ImagesConfig
    description = "large whitened crops of the bundled photographs (for image-level models)"

    @classmethod
    def load(cls, cfg: ImagesConfig) -> Dataset:
        return whole_image_crops(cfg)

    @classmethod
    def check(cls, cfg: ImagesConfig) -> None:
        if cfg.folder:
            image_files(cfg.folder)  # DataError when the folder is missing or holds no images


def inner_square(img: np.ndarray, degrees: float) -> np.ndarray:
    """`img` turned by `degrees` (counter-clockwise, cubic interpolation), cut to the largest
    centred axis-aligned square that lies inside the turned picture."""
    from skimage.transform import rotate

    side = min(img.shape)
    t = np.deg2rad(degrees % 90.0)
    inner = int(np.floor(side / (abs(np.cos(t)) + abs(np.sin(t))))) - 2  # −2: interpolation edge
    turned = rotate(img, degrees, resize=False, order=3, mode="reflect", preserve_range=True)
    r0 = (img.shape[0] - inner) // 2
    c0 = (img.shape[1] - inner) // 2
    return turned[r0:r0 + inner, c0:c0 + inner]


@functools.lru_cache(maxsize=4)
def _turned_images(sources: tuple[Any, ...], downscale: int, kind: str,
                   rotations: int) -> tuple[np.ndarray, ...]:
    """Whitened copies of each grey image at 0, 90/n, …, 90(n−1)/n degrees (cached)."""
    out = []
    for src in sources:
        grey = load_grey_image(src, downscale) if isinstance(src, str) else \
            read_grey_file(src[0], downscale)
        for k in range(rotations):
            img = grey if k == 0 else inner_square(grey, 90.0 * k / rotations)
            out.append(whiten_image(img, kind))
    return _freeze(out)


def source_images(cfg: ImagesConfig) -> tuple[tuple[np.ndarray, ...], list[str], dict[str, Any]]:
    """The whitened images the crops come from (with their turned copies), their names, and
    where they came from. DataError naming an unknown image, a folder without images, or an
    image too small for the crop."""
    c, kind = cfg.crop, _image_kind(cfg.whitening)
    if cfg.folder:
        files = image_files(cfg.folder)
        sources: tuple[Any, ...] = file_stamps(files)
        names = [f.name for f in files]
        where = {"folder": str(Path(cfg.folder).expanduser().resolve())}
    elif cfg.rotations == 1:
        names = list(cfg.images)
        return bundled_images(tuple(names), cfg.downscale, cfg.whitening, c), names, {}
    else:
        check_bundled_names(tuple(cfg.images))
        sources, names, where = tuple(cfg.images), list(cfg.images), {}
    images = _turned_images(sources, cfg.downscale, kind, cfg.rotations)
    labels = [f"{n}@{90.0 * k / cfg.rotations:g}°" if k else n
              for n in names for k in range(cfg.rotations)]
    for label, im in zip(labels, images, strict=True):
        check_size(im, label, cfg.downscale, c + 2 * BORDER, c)
    return images, labels, where


def local_contrast_normalise(img: np.ndarray, sigma: float) -> np.ndarray:
    """Local contrast normalisation of one image (H, W) (Jarrett et al., ICCV 2009):
    v = x − G_σ∗x, then v / max(c, s) with s = sqrt(G_σ∗v²) the local standard deviation and
    c its mean over the image (so flat regions are not blown up). float64."""
    from scipy.ndimage import gaussian_filter

    x = np.asarray(img, dtype=np.float64)
    v = x - gaussian_filter(x, sigma, mode="reflect")
    s = np.sqrt(gaussian_filter(v * v, sigma, mode="reflect"))
    return v / np.maximum(s, max(float(s.mean()), 1e-12))


def whole_image_crops(cfg: ImagesConfig) -> Dataset:
    """`cfg.n_crops` (+ `cfg.n_test` held out) crops: x `(n, crop²)` float32, mean-free per crop,
    unit average pixel variance over the set. DataError for an unknown image, an image too small
    for the crop, or too few distinct crop positions."""
    c = cfg.crop
    images, names, where = source_images(cfg)
    if cfg.contrast == "lcn":
        images = tuple(local_contrast_normalise(im, cfg.lcn_sigma) for im in images)
    rng = np.random.default_rng(cfg.seed)
    total = cfg.n_crops + cfg.n_test
    crops, counts = sample_patches(images, total, c, rng)
    if cfg.augment:
        crops = dihedral(crops, rng)
    x = crops.reshape(total, c * c)
    x -= x.mean(axis=1, keepdims=True)
    scale = 1.0 / float(np.sqrt(x.var(axis=0).mean()))
    x *= scale
    info = {**where, "images": list(names), "image_shapes": [list(im.shape) for im in images],
            "rotations": cfg.rotations,
            "crops_per_image": counts, "whitening": cfg.whitening, "downscale": cfg.downscale,
            "contrast": cfg.contrast, "crop": c, "border": BORDER, "augment": cfg.augment, "seed": cfg.seed,
            "scale": scale}
    ds = Dataset(x=torch.from_numpy(x.astype(np.float32)), input_shape=(1, c, c), name="images",
                 info=info)
    return ds.split_off_test(cfg.n_test)


__all__ = ["ImagesConfig", "WholeImages", "dihedral", "inner_square", "local_contrast_normalise",
           "source_images", "whole_image_crops"]
