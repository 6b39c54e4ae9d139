"""Handwritten digits with labels: scikit-learn's 8×8 digits (UCI optical recognition set).

1,797 greyscale 8×8 images of the digits 0–9, shipped with scikit-learn (no download). A fixed
held-out split (`n_test` images, chosen by `seed`) is kept out of training and evaluated on.
Pixels (0–16) are scaled to 0–1 and, by default, each image has its mean removed and is scaled
to unit L2 norm, as DrSAE does with its inputs (Rolfe & LeCun, ICLR 2013).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from ..config import check, check_ranges, setting
from .base import DataError, Dataset, DataSource, register_source

N_DIGITS = 1797


@dataclass(frozen=True)
class DigitsConfig:
    source: ClassVar[str] = "digits"
    n_test: int = setting(297, label="Held-out digits", min=1, max=N_DIGITS - 100,
                          help="Images kept out of training and evaluated on.")
    normalize: Literal["unit_norm", "none"] = setting(
        "unit_norm", label="Normalisation",
        help="unit_norm: remove each image's mean and scale it to unit length; none: pixels "
             "in 0–1.")
    seed: int = setting(0, label="Data seed", min=0, max=2**31 - 1,
                        help="Which images are held out.")

    def __post_init__(self) -> None:
        check(self.normalize in ("unit_norm", "none"),
              f"normalize must be unit_norm or none; got {self.normalize!r}")
        check_ranges(self, "data.")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (1, 8, 8)

    @property
    def n_samples(self) -> int:
        return N_DIGITS - self.n_test


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is in requirements.txt
        raise DataError("the digits need scikit-learn (pip install scikit-learn)") from exc
    d = load_digits()
    return d.data.astype(np.float64) / 16.0, d.target.astype(np.int64)


@register_source
class Digits(DataSource):
    name = "digits"
    Config = DigitsConfig
    description = "scikit-learn's 8×8 handwritten digits, with labels and a held-out split"
    labelled = True

    @classmethod
    def load(cls, cfg: DigitsConfig) -> Dataset:
        x, y = _digits()
        order = np.random.default_rng(cfg.seed).permutation(len(x))
        x, y = x[order], y[order]
        if cfg.normalize == "unit_norm":
            x = x - x.mean(axis=1, keepdims=True)
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        ds = Dataset(x=torch.from_numpy(x.astype(np.float32)), input_shape=(1, 8, 8),
                     y=torch.from_numpy(y), name="digits",
                     info={"classes": 10, "normalize": cfg.normalize, "seed": cfg.seed})
        return ds.split_off_test(cfg.n_test)
