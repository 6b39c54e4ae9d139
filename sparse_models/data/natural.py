"""Natural-image patches, the classic training set for sparse coding (Olshausen & Field 1996, 1997).

Pipeline (`natural_patches` for the bundled photographs, `folder_patches` for a user's folder):

1. load each image, convert to grey, shrink by `cfg.downscale` (block average);
2. whitening 'olshausen': filter each whole image with R(f) = f·exp(−(f/f0)⁴), f0 = 0.4 × Nyquist,
   and scale it to unit variance (see `images.py`); 'zca' and 'none' only standardise the image;
3. cut `cfg.n_patches` distinct patch_size × patch_size patches at random positions (seeded by
   `cfg.seed`), at least `BORDER` pixels from the image edge, spread over the images in
   proportion to their usable area;
4. subtract each patch's mean; with `cfg.contrast_normalize` divide each patch by its std plus
   `CONTRAST_EPS` × the RMS patch std (so near-flat patches are not inflated into noise);
5. whitening 'zca': x ← (x − μ) W with W = U (Λ + ε)^(−1/2) Uᵀ from the patch covariance
   C = U Λ Uᵀ, ε = `ZCA_EPS` × mean(Λ) (regularises the near-null directions, including the
   constant patch removed in step 4);
6. scale the whole set so that the average pixel variance is 1.

Loaded and whitened images are cached in-process, so rebuilding a dataset only re-cuts patches.
`python -m sparse_models.data.natural` times the default config.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from ..config import check, setting
from .base import DataError, Dataset, PatchesConfig, PatchSource, register_source
from .images import (
    F0_FRACTION,
    available_images,
    image_files,
    load_grey_image,
    read_grey_file,
    whiten_image,
)

BORDER = 4  # pixels (after downscaling) kept clear of patches: edges of photos are unreliable
CONTRAST_EPS = 0.1  # contrast normalisation divides by std + CONTRAST_EPS × RMS patch std
ZCA_EPS = 1e-2  # ZCA regulariser, as a fraction of the mean covariance eigenvalue

__all__ = [
    "FolderConfig", "NaturalConfig", "available_images", "folder_patches", "load_grey_image",
    "natural_patches", "whiten_image", "sample_patches", "zca_fit",
]

Whitening = Literal["olshausen", "zca", "none"]

# Natural photographs shipped by scikit-image / scikit-learn (no download needed).
DEFAULT_IMAGES: tuple[str, ...] = (
    "camera", "astronaut", "coffee", "chelsea", "rocket", "grass", "china", "flower",
)


@dataclass(frozen=True)
class ImagePatchesConfig(PatchesConfig):
    """Patches cut from photographs (the module docstring's pipeline)."""

    whitening: Whitening = setting(
        "olshausen", label="Whitening",
        help="olshausen: 1/f whitening with a low-pass (Olshausen & Field); zca: ZCA on the "
             "patches; none: only mean removal and scaling.")
    downscale: int = setting(2, label="Downscale factor", min=1, max=8,
                             help="Integer factor the images are shrunk by before whitening.")
    contrast_normalize: bool = setting(False, label="Contrast normalisation",
                                       help="Divide each patch by its own std (after mean "
                                            "removal).")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.whitening in ("olshausen", "zca", "none"),
              f"whitening must be olshausen, zca or none; got {self.whitening!r}")


@dataclass(frozen=True)
class NaturalConfig(ImagePatchesConfig):
    source: ClassVar[str] = "natural"
    images: tuple[str, ...] = setting(DEFAULT_IMAGES, label="Images",
                                      help="Bundled photographs to cut patches from.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_image_names(self.images)


@dataclass(frozen=True)
class FolderConfig(ImagePatchesConfig):
    source: ClassVar[str] = "folder"
    folder: str = setting("", label="Image folder", url=False,
                          help="A folder of PNG/JPEG images on the machine running the app. "
                               "Not taken from shared links: a link cannot point the app at "
                               "a folder on its disk.")

    def __post_init__(self) -> None:
        super().__post_init__()
        check(isinstance(self.folder, str) and bool(self.folder.strip()),
              "the data source 'folder' needs an image folder (data.folder=PATH)")


@register_source
class NaturalPatches(PatchSource):
    name = "natural"
    Config = NaturalConfig
    description = "whitened patches of the photographs bundled with scikit-image/scikit-learn"

    @classmethod
    def draw(cls, cfg: NaturalConfig) -> Dataset:
        return natural_patches(cfg)


@register_source
class FolderPatches(PatchSource):
    name = "folder"
    Config = FolderConfig
    description = "whitened patches of your own images (a folder of PNG/JPEG files)"

    @classmethod
    def draw(cls, cfg: FolderConfig) -> Dataset:
        return folder_patches(cfg)

    @classmethod
    def check(cls, cfg: FolderConfig) -> None:
        image_files(cfg.folder)  # DataError when the folder is missing or holds no images


def _freeze(images: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    out = []
    for im in images:
        im = im.astype(np.float32)
        im.flags.writeable = False  # shared through the cache
        out.append(im)
    return tuple(out)


def _image_kind(whitening: str) -> str:
    return "olshausen" if whitening == "olshausen" else "none"


@functools.lru_cache(maxsize=8)
def _bundled_images(names: tuple[str, ...], downscale: int, kind: str) -> tuple[np.ndarray, ...]:
    return _freeze([whiten_image(load_grey_image(n, downscale), kind) for n in names])


@functools.lru_cache(maxsize=4)
def _folder_images(
    files: tuple[tuple[str, int, int], ...], downscale: int, kind: str, min_side: int, patch: int
) -> tuple[np.ndarray, ...]:
    # `files` holds (path, size, mtime_ns), so editing a file in the folder invalidates the cache.
    images = []
    for path, _, _ in files:
        img = read_grey_file(path, downscale)
        check_size(img, Path(path).name, downscale, min_side, patch)
        images.append(whiten_image(img, kind))
    return _freeze(images)


def check_size(img: np.ndarray, name: str, downscale: int, min_side: int, patch: int) -> None:
    if min(img.shape) < min_side:
        raise DataError(
            f"image {name!r} is {img.shape[1]}×{img.shape[0]} pixels after downscale {downscale}, "
            f"too small for {patch}×{patch} patches with a {BORDER}-pixel border "
            f"(needs at least {min_side}×{min_side}); use a smaller downscale or patch size"
        )


def sample_patches(
    images: tuple[np.ndarray, ...] | list[np.ndarray], n: int, size: int, rng: np.random.Generator,
    border: int = BORDER,
) -> tuple[np.ndarray, list[int]]:
    """`n` distinct random `(size, size)` patches from `images`, shuffled: `(n, size, size)` float64.

    Each image gets a share of `n` proportional to its number of patch positions (largest-
    remainder rounding), drawn without replacement; also returns the per-image counts.
    """
    shapes = [(im.shape[0] - size - 2 * border + 1, im.shape[1] - size - 2 * border + 1)
              for im in images]
    positions = np.array([max(a, 0) * max(b, 0) for a, b in shapes], dtype=np.int64)
    total = int(positions.sum())
    if total < n:
        raise DataError(
            f"the images give only {total} distinct {size}×{size} patch positions (with a "
            f"{border}-pixel border), fewer than n_patches={n}; add images, lower the downscale "
            f"factor or n_patches"
        )
    exact = n * positions / total
    counts = np.floor(exact).astype(np.int64)
    short = n - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    out = np.empty((n, size, size), dtype=np.float64)
    row = 0
    for im, (_, nx), pos, k in zip(images, shapes, positions, counts, strict=True):
        if k == 0:
            continue
        idx = rng.choice(int(pos), size=int(k), replace=False)
        ys, xs = idx // nx + border, idx % nx + border
        windows = np.lib.stride_tricks.sliding_window_view(im, (size, size))
        out[row : row + k] = windows[ys, xs]
        row += int(k)
    return out[rng.permutation(n)], counts.tolist()


def zca_fit(x: np.ndarray, eps_fraction: float = ZCA_EPS) -> tuple[np.ndarray, np.ndarray, float]:
    """ZCA whitening of rows `x: (n, d)`: returns `(mean: (d,), W: (d, d), eps)`.

    `(x − mean) @ W` has covariance U Λ/(Λ + eps) Uᵀ ≈ I on every direction with variance ≫ eps;
    W is symmetric, so whitened patches stay as close as possible to the originals.
    """
    # torch's BLAS: numpy's OpenBLAS threads contend with torch's on small CPUs (10× slower).
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    mean = xt.mean(dim=0)
    xc = xt - mean
    lam, u = torch.linalg.eigh(xc.T @ xc / xt.shape[0])
    lam = lam.clamp(min=0.0)
    eps = float(eps_fraction * lam.mean())
    w = (u / torch.sqrt(lam + eps)) @ u.T
    return mean.numpy(), w.numpy(), eps


def _patch_dataset(
    images: tuple[np.ndarray, ...], names: list[str], cfg: ImagePatchesConfig, name: str, extra: dict
) -> Dataset:
    p = cfg.patch_size
    rng = np.random.default_rng(cfg.seed)
    patches, counts = sample_patches(images, cfg.n_patches, p, rng)
    x = patches.reshape(cfg.n_patches, p * p)
    x -= x.mean(axis=1, keepdims=True)
    info: dict = {
        "images": list(names),
        "image_shapes": [list(im.shape) for im in images],
        "patches_per_image": counts,
        "whitening": cfg.whitening,
        "downscale": cfg.downscale,
        "patch_size": p,
        "border": BORDER,
        "contrast_normalize": cfg.contrast_normalize,
        "seed": cfg.seed,
        **extra,
    }
    if cfg.contrast_normalize:
        sd = x.std(axis=1, keepdims=True)
        eps = CONTRAST_EPS * float(np.sqrt(np.mean(sd**2)))
        x /= sd + eps
        info["contrast_eps"] = eps
    if cfg.whitening == "olshausen":
        info["f0_cycles_per_pixel"] = F0_FRACTION * 0.5
    if cfg.whitening == "zca":
        mean, w, eps = zca_fit(x)
        x = (torch.from_numpy(x - mean) @ torch.from_numpy(w)).numpy()
        info.update(zca_eps=eps, zca_mean=torch.from_numpy(mean.astype(np.float32)))
    scale = 1.0 / float(np.sqrt(x.var(axis=0).mean()))
    x *= scale
    info["scale"] = scale
    if cfg.whitening == "zca":
        # New patches: (p − p.mean(), contrast-normalised if it was on, − zca_mean) @ zca_matrix
        info["zca_matrix"] = torch.from_numpy((w * scale).astype(np.float32))
    return Dataset(x=torch.from_numpy(x.astype(np.float32)), input_shape=(1, p, p), y=None,
                   name=name, info=info)


def natural_patches(cfg: ImagePatchesConfig) -> Dataset:
    """Patches of the bundled photographs `cfg.images`: x `(n_patches, patch_size²)` float32.

    `info` records the images, their shapes and patch counts, the whitening and `scale` (the
    final variance normalisation); with ZCA also `zca_mean: (d,)` and the symmetric
    `zca_matrix: (d, d)` (scale included), so new mean-removed patches p whiten as
    `(p − zca_mean) @ zca_matrix`. Raises DataError for an unknown image name (listing the
    available ones) or an image too small for the patch size after downscaling.
    """
    names = tuple(cfg.images)
    images = bundled_images(names, cfg.downscale, cfg.whitening, cfg.patch_size)
    return _patch_dataset(images, list(names), cfg, "natural", {})


def bundled_images(names: tuple[str, ...], downscale: int, whitening: str,
                   side: int) -> tuple[np.ndarray, ...]:
    """The bundled photographs `names`, grey, shrunk and whitened (cached), each checked to hold
    `side`-pixel squares clear of the border. DataError naming an unknown image (listing the
    available ones) or one too small."""
    check_bundled_names(names)
    images = _bundled_images(names, downscale, _image_kind(whitening))
    for n, im in zip(names, images, strict=True):
        check_size(im, n, downscale, side + 2 * BORDER, side)
    return images


def check_bundled_names(names: tuple[str, ...]) -> None:
    """DataError naming the first image that is not bundled, with the ones that are."""
    known = set(available_images())
    for n in names:
        if n not in known:
            raise DataError(f"unknown image {n!r}; available: {', '.join(available_images())}")


def file_stamps(files: list[Path]) -> tuple[tuple[str, int, int], ...]:
    """(path, size, mtime_ns) per file: a cache key that changes when a file is edited."""
    return tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)


def check_image_names(images: object) -> None:
    """ConfigError unless `images` is a non-empty list of image names (a config's check)."""
    check(not isinstance(images, str) and all(isinstance(n, str) and n for n in images),
          f"data.images must be a list of image names, got {images!r}")
    check(len(images) > 0, "data.images must name at least one image")


def folder_patches(cfg: ImagePatchesConfig) -> Dataset:
    """Patches of the PNG/JPEG images in `cfg.folder` (same pipeline as `natural_patches`).

    The files are only read. Raises DataError naming the folder or file when the folder is
    missing or has no images, a file can't be decoded, an image is too small, or the images
    hold too few patch positions for `cfg.n_patches`.
    """
    if not cfg.folder:
        raise DataError("the data source 'folder' needs an image folder (data.folder=PATH)")
    files = image_files(cfg.folder)
    images = _folder_images(file_stamps(files), cfg.downscale, _image_kind(cfg.whitening),
                            cfg.patch_size + 2 * BORDER, cfg.patch_size)
    folder = str(Path(cfg.folder).expanduser().resolve())
    return _patch_dataset(images, [f.name for f in files], cfg, "folder", {"folder": folder})


if __name__ == "__main__":
    import time

    for attempt in ("first load", "cached"):
        t0 = time.perf_counter()
        ds = natural_patches(NaturalConfig())
        dt = time.perf_counter() - t0
        print(f"{attempt}: {tuple(ds.x.shape)} patches from {len(ds.info['images'])} images "
              f"in {dt:.3f} s")
