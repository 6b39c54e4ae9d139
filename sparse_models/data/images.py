"""Whole grey images: the bundled photographs, a user's folder, downscaling and 1/f whitening.

Natural images have a power spectrum falling roughly as 1/f²; sparse coding on raw pixels then
spends its effort on the low frequencies. Olshausen & Field (Nature 1996; Vision Research 1997)
flatten the spectrum with the zero-phase filter

    R(f) = f · exp(−(f / f0)⁴),   f0 = 0.4 × Nyquist,

whose ramp whitens the 1/f amplitude spectrum and whose quartic roll-off removes the corner
frequencies (where the square sampling lattice is anisotropic) and the noise near Nyquist.
Frequencies are in cycles per pixel on each axis, so the filter is isotropic for non-square
images too (0.4 × Nyquist = 0.2 cycles/pixel; 200 cycles/picture for their 512×512 images).
Before the FFT the image is mirror-padded, so the periodic wrap-around of the FFT meets no
step edge at the border; the padding is cropped off afterwards.

Every image here is `(H, W)` float64; `load_grey_image` gives values in [0, 1], `whiten_image`
gives zero mean and unit variance.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.fft

from . import DataError

# ITU-R BT.709 luma weights, the same as skimage.color.rgb2gray.
_LUMA = np.array([0.2125, 0.7154, 0.0721])
F0_FRACTION = 0.4  # f0 as a fraction of the Nyquist frequency (Olshausen & Field 1997)
WHITEN_PAD = 16  # pixels of mirror padding before the FFT; the filter's kernel is a few pixels wide
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

# Photographs of scenes and textures that ship with scikit-image (no download needed).
_SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "moon",
    "rocket",
)
# Photographs that ship with scikit-learn: `load_sample_image(name + '.jpg')`.
_SKLEARN_PHOTOS = ("china", "flower")


def available_images() -> list[str]:
    """Names accepted in `DataConfig.images`, sorted."""
    return sorted(_SKIMAGE_PHOTOS + _SKLEARN_PHOTOS)


def to_grey(arr: np.ndarray) -> np.ndarray:
    """Grey float64 image in [0, 1] from an `(H, W)`, `(H, W, 2|3|4)` integer/float/bool array.

    Colour uses BT.709 luma; an alpha channel is dropped.
    """
    a = np.asarray(arr)
    if a.dtype == bool:
        a = a.astype(np.float64)
    elif np.issubdtype(a.dtype, np.integer):
        top = 255.0 if a.max(initial=0) <= 255 else 65535.0
        a = a.astype(np.float64) / top
    else:
        a = a.astype(np.float64)
    if a.ndim == 3:
        if a.shape[2] in (1, 2):  # grey (+ alpha)
            a = a[:, :, 0]
        else:
            a = a[:, :, :3] @ _LUMA
    if a.ndim != 2:
        raise DataError(f"expected a 2-D grey or colour image, got an array of shape {arr.shape}")
    return a


def downscale(img: np.ndarray, factor: int) -> np.ndarray:
    """Shrink `(H, W)` to `(H // factor, W // factor)` by averaging factor×factor blocks.

    Averaging (not subsampling) avoids aliasing; rows/columns that don't fill a block are dropped.
    """
    if factor == 1:
        return img
    h, w = img.shape[0] // factor, img.shape[1] // factor
    return img[: h * factor, : w * factor].reshape(h, factor, w, factor).mean(axis=(1, 3))


def olshausen_filter(shape: tuple[int, int]) -> np.ndarray:
    """R(f) = f·exp(−(f/f0)⁴) on the `rfft2` grid of an image of `shape`: `(H, W // 2 + 1)`."""
    fy = np.fft.fftfreq(shape[0])[:, None]  # cycles/pixel
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f0 = F0_FRACTION * 0.5
    return f * np.exp(-((f / f0) ** 4))


def whiten_image(img: np.ndarray, kind: str = "olshausen") -> np.ndarray:
    """Whiten one whole `(H, W)` image; returns `(H, W)` float64 with zero mean and unit variance.

    `kind`: 'olshausen' applies the Olshausen & Field filter (see module docstring); 'none' and
    'zca' only standardise the image, since ZCA is fitted on patches, not on whole images.
    """
    if kind not in ("olshausen", "zca", "none"):
        raise DataError(f"whitening must be olshausen, zca or none; got {kind!r}")
    x = np.asarray(img, dtype=np.float64)
    x = x - x.mean()
    if kind == "olshausen":
        p = WHITEN_PAD
        padded = np.pad(x, p, mode="symmetric")
        # FFT lengths with small prime factors are much faster; the extra pad is mirrored too.
        h, w = (scipy.fft.next_fast_len(n, real=True) for n in padded.shape)
        padded = np.pad(padded, ((0, h - padded.shape[0]), (0, w - padded.shape[1])),
                        mode="symmetric")
        spec = scipy.fft.rfft2(padded) * olshausen_filter((h, w))
        x = scipy.fft.irfft2(spec, s=(h, w))[p : p + img.shape[0], p : p + img.shape[1]]
        x = x - x.mean()
    sd = x.std()
    return x / sd if sd > 0 else x


def _sklearn_photo(name: str) -> np.ndarray:
    # Reading the JPEG directly skips `import sklearn.datasets` (~1 s); same pixels either way.
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "datasets" / "images" / f"{name}.jpg"
        if path.is_file():
            from PIL import Image

            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
    from sklearn.datasets import load_sample_image

    return load_sample_image(f"{name}.jpg")


def _bundled_loader(name: str) -> Callable[[], np.ndarray]:
    if name in _SKLEARN_PHOTOS:
        return lambda: _sklearn_photo(name)
    if name in _SKIMAGE_PHOTOS:
        import skimage.data

        return getattr(skimage.data, name)
    raise DataError(f"unknown image {name!r}; available: {', '.join(available_images())}")


def load_grey_image(name: str, downscale_by: int = 1) -> np.ndarray:
    """A bundled photograph as grey `(H // downscale_by, W // downscale_by)` float64 in [0, 1]."""
    loader = _bundled_loader(name)
    try:
        arr = loader()
    except Exception as exc:  # a missing optional file, a broken install
        raise DataError(f"could not load bundled image {name!r}: {exc}") from exc
    return downscale(to_grey(arr), downscale_by)


def image_files(folder: str | Path) -> list[Path]:
    """The PNG/JPEG files directly inside `folder` (suffix case-insensitive), sorted by name."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise DataError(f"image folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise DataError(f"{str(root)!r} is not a folder")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(
            f"no image files in {str(root)!r}; expected files ending in "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    return files


def read_grey_file(path: str | Path, downscale_by: int = 1) -> np.ndarray:
    """Decode one PNG/JPEG file (read-only) to grey `(H', W')` float64 in [0, 1], downscaled.

    EXIF orientation is honoured, so phone photos come out upright.
    """
    from PIL import Image, ImageOps

    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode not in ("L", "LA", "RGB", "RGBA", "I", "I;16", "F"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except Exception as exc:  # PIL raises many types for bad files: OSError, SyntaxError, ...
        raise DataError(f"could not read {path.name!r} as an image: {exc}") from exc
    if arr.size == 0:
        raise DataError(f"{path.name!r} contains an empty image")
    return downscale(to_grey(arr), downscale_by)
