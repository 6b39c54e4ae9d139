"""Datasets, registered by name like the models: natural-image patches, a user's image folder,
synthetic gratings with known answers, and labelled digits with a held-out split.

`load_dataset(config) -> Dataset` is the one entry point the trainer and the app use;
`batches(dataset, batch_size, ...)` turns it into an endless stream of shuffled batches.
A source is one file: its config dataclass, a `DataSource` subclass and `@register_source`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from .base import (
    DataError,
    Dataset,
    DataSource,
    PatchesConfig,
    available_sources,
    check_data,
    data_config,
    data_config_dict,
    get_source,
    load_dataset,
    register_source,
    source_defaults,
    source_of,
)
from .digits import DigitsConfig
from .mnist import MnistConfig
from .natural import DEFAULT_IMAGES, FolderConfig, NaturalConfig
from .synthetic import GratingsConfig
from .whole import ImagesConfig

__all__ = [
    "DEFAULT_IMAGES", "DataConfig", "DataError", "DataSource", "Dataset", "DigitsConfig",
    "FolderConfig", "GratingsConfig", "ImagesConfig", "MnistConfig", "NaturalConfig", "PatchesConfig", "available_sources", "check_data",
    "batches", "data_config", "data_config_dict", "get_source", "load_dataset",
    "register_source", "source_defaults", "source_of",
]


def DataConfig(source: str = "natural", **settings: Any) -> Any:  # noqa: N802 (reads as a type)
    """The config of data source `source` with `settings` (validated), e.g.
    `DataConfig("gratings", n_patches=256, patch_size=8)`."""
    return data_config({"source": source, **settings})


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
