"""Datasets: natural-image patches, a user's image folder, synthetic patterns with known answers.

`load_dataset(DataConfig) -> Dataset` is the one entry point the trainer and the app use;
`batches(dataset, batch_size, ...)` turns it into an endless stream of shuffled batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch

from ..config import check

DataSource = Literal["natural", "folder", "gratings"]
Whitening = Literal["olshausen", "zca", "none"]

# Natural photographs shipped by scikit-image / scikit-learn (no download needed).
DEFAULT_IMAGES: tuple[str, ...] = (
    "camera", "astronaut", "coffee", "chelsea", "rocket", "grass", "china", "flower",
)


@dataclass(frozen=True)
class DataConfig:
    source: DataSource = "natural"  # natural | folder | gratings (synthetic Gabor-like patches)
    images: tuple[str, ...] = DEFAULT_IMAGES  # bundled image names (source 'natural')
    folder: str | None = None  # a folder of PNG/JPEG images (source 'folder')
    patch_size: int = 12  # side of the square patches, pixels
    n_patches: int = 20000  # patches drawn once, then shuffled into batches
    whitening: Whitening = "olshausen"  # 1/f whitening with low-pass (Olshausen & Field), ZCA, none
    downscale: int = 2  # integer factor images are shrunk by before whitening
    contrast_normalize: bool = False  # divide each patch by its own std (after mean removal)
    seed: int = 0  # which patches are drawn

    def __post_init__(self) -> None:
        check(self.source in ("natural", "folder", "gratings"),
              f"data source must be natural, folder or gratings; got {self.source!r}")
        check(isinstance(self.patch_size, int) and 4 <= self.patch_size <= 64,
              f"patch_size must be an integer from 4 to 64, got {self.patch_size!r}")
        check(isinstance(self.n_patches, int) and self.n_patches >= 16,
              f"n_patches must be at least 16, got {self.n_patches!r}")
        check(self.whitening in ("olshausen", "zca", "none"),
              f"whitening must be olshausen, zca or none; got {self.whitening!r}")
        check(isinstance(self.downscale, int) and 1 <= self.downscale <= 8,
              f"downscale must be an integer from 1 to 8, got {self.downscale!r}")
        if self.source == "folder":
            check(bool(self.folder), "data source 'folder' needs data.folder=PATH")
        check(isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= 0,
              f"data seed must be a non-negative integer, got {self.seed!r}")
        if self.source == "natural":
            check(len(self.images) > 0, "data.images must name at least one image")
            check(not isinstance(self.images, str)
                  and all(isinstance(n, str) and n for n in self.images),
                  f"data.images must be a list of image names, got {self.images!r}")


@dataclass
class Dataset:
    x: torch.Tensor  # (n, h*w) float32, rows are flattened patches
    input_shape: tuple[int, int]  # (h, w) of one patch
    y: torch.Tensor | None = None  # (n,) int64 labels, or None
    name: str = ""
    info: dict = field(default_factory=dict)  # e.g. whitening details, image names

    def __len__(self) -> int:
        return int(self.x.shape[0])


def load_dataset(cfg: DataConfig) -> Dataset:
    """Build the dataset a config describes. Raises DataError with a user-facing message."""
    if cfg.source == "natural":
        from .natural import natural_patches

        return natural_patches(cfg)
    if cfg.source == "folder":
        from .natural import folder_patches

        return folder_patches(cfg)
    from .synthetic import grating_patches

    return grating_patches(cfg)


class DataError(ValueError):
    """Data could not be loaded; the message names the file or setting at fault."""


def batches(
    ds: Dataset,
    batch_size: int,
    seed: int = 0,
    device: torch.device | str = "cpu",
    start_step: int = 0,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Endless shuffled batches `(x: (B, n_inputs), y: (B,) | None)` on `device`.

    The order depends only on `seed`, so a run resumed at `start_step` sees the same batches
    it would have seen had it not stopped.
    """
    n = len(ds)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    if start_step < 0:
        raise DataError(f"start_step must be >= 0, got {start_step}")
    if batch_size > n:
        raise DataError(f"batch_size {batch_size} is larger than the dataset ({n} samples)")
    x = ds.x.to(device)
    y = ds.y.to(device) if ds.y is not None else None
    per_epoch = n // batch_size
    g = torch.Generator().manual_seed(seed)
    epoch, skip = divmod(start_step, per_epoch)
    for _ in range(epoch):
        torch.randperm(n, generator=g)
    while True:
        perm = torch.randperm(n, generator=g).to(device)
        for i in range(skip, per_epoch):
            idx = perm[i * batch_size:(i + 1) * batch_size]
            yield x[idx], (y[idx] if y is not None else None)
        skip = 0
