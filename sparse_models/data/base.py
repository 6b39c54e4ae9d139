"""What every data source shares: the `Dataset` it returns, its errors, and the registry.

A data source is registered like a model: a class with a `name`, a frozen `Config` dataclass
(its own settings, each a `config.setting` with label, help and range) and `load(config)`.
A run's `data` section is `{"source": NAME, **that source's settings}`; `data_config` turns it
into the source's config instance, validated once, and `data_config_dict` back.

A dataset may carry labels `y` and a held-out split (`x_test`, `y_test`), which training
evaluates on every `train.eval_every` steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..config import ConfigError, check, check_ranges, from_dict, setting, to_dict

MAX_SAMPLES = 1_000_000  # samples one dataset may hold (memory: 144 floats each for 12×12 patches)


class DataError(ValueError):
    """Data could not be loaded; the message names the file or setting at fault."""


@dataclass
class Dataset:
    x: torch.Tensor  # (n, C*H*W) float32, rows are flattened samples
    input_shape: tuple[int, int, int]  # (C, H, W) of one sample
    y: torch.Tensor | None = None  # (n,) int64 labels, or None
    name: str = ""
    info: dict = field(default_factory=dict)  # e.g. whitening details, image names
    x_test: torch.Tensor | None = None  # (n_test, C*H*W): the held-out split, or None
    y_test: torch.Tensor | None = None  # (n_test,) labels of the held-out split

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def has_test(self) -> bool:
        return self.x_test is not None and self.x_test.shape[0] > 0

    def split_off_test(self, n_test: int) -> Dataset:
        """The last `n_test` rows become the held-out split (rows are already shuffled)."""
        if n_test <= 0:
            return self
        n = len(self) - n_test
        y = self.y
        return dataclasses.replace(
            self, x=self.x[:n], y=None if y is None else y[:n], x_test=self.x[n:],
            y_test=None if y is None else y[n:], info={**self.info, "n_test": n_test})


@dataclass(frozen=True)
class PatchesConfig:
    """Settings every patch source shares (not a source itself)."""

    source: ClassVar[str] = ""
    patch_size: int = setting(12, label="Patch size (px)", min=4, max=64, shape=True,
                              help="Side of the square patches, in pixels.")
    n_patches: int = setting(20000, label="Patches", min=16, max=MAX_SAMPLES,
                             help="Training patches, drawn once and then shuffled into batches.")
    n_test: int = setting(0, label="Held-out patches", min=0, max=MAX_SAMPLES,
                          help="Patches drawn with the training ones but kept out of training, "
                               "to evaluate on (0: none).")
    seed: int = setting(0, label="Data seed", min=0, max=2**31 - 1,
                        help="Which patches are drawn.")

    def __post_init__(self) -> None:
        check_ranges(self, "data.")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (1, self.patch_size, self.patch_size)

    @property
    def n_samples(self) -> int:
        """Training samples (what a batch is drawn from)."""
        return self.n_patches


class DataSource:
    """Base of a registered data source."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    description: ClassVar[str] = ""
    labelled: ClassVar[bool] = False  # its datasets carry labels y

    @classmethod
    def load(cls, cfg: Any) -> Dataset:
        raise NotImplementedError

    @classmethod
    def check(cls, cfg: Any) -> None:
        """A cheap look at what loading will need (e.g. that a folder exists and holds images),
        so a bad setting is refused before a run is made; DataError in words. Default: none."""


class PatchSource(DataSource):
    """A source of patches: `draw(cfg)` cuts `cfg.n_patches` of them. The held-out patches are
    drawn together with the training ones (the same preprocessing statistics), then the last
    `n_test` are kept apart."""

    @classmethod
    def draw(cls, cfg: Any) -> Dataset:
        raise NotImplementedError

    @classmethod
    def load(cls, cfg: Any) -> Dataset:
        whole = cfg if cfg.n_test == 0 else dataclasses.replace(
            cfg, n_patches=cfg.n_patches + cfg.n_test)
        return cls.draw(whole).split_off_test(cfg.n_test)


_SOURCES: dict[str, type[DataSource]] = {}


def register_source(cls: type[DataSource]) -> type[DataSource]:
    """Class decorator: make a data source loadable by name (runs, CLI, the app)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if getattr(cls.Config, "source", None) != cls.name:
        raise ValueError(f"{cls.Config.__name__}.source must be {cls.name!r}")
    _SOURCES[cls.name] = cls
    return cls


def available_sources() -> dict[str, type[DataSource]]:
    return dict(_SOURCES)


def get_source(name: str) -> type[DataSource]:
    if name not in _SOURCES:
        raise ConfigError(f"unknown data source {name!r}; available: "
                          f"{', '.join(sorted(_SOURCES))}")
    return _SOURCES[name]


def source_of(cfg: Any) -> type[DataSource]:
    return get_source(getattr(cfg, "source", ""))


def data_config(data: dict[str, Any] | Any | None = None, where: str = "data.") -> Any:
    """A source's validated config from `{"source": NAME, ...}` (default source: natural), or
    a config instance as it is."""
    if data is not None and not isinstance(data, dict):
        source_of(data)  # an instance of a registered source's config
        return data
    data = dict(data or {})
    name = data.pop("source", "natural")
    check(isinstance(name, str), f"{where}source must be a source name, got {name!r}")
    return from_dict(get_source(name).Config, data, where=where)


def data_config_dict(cfg: Any) -> dict[str, Any]:
    return {"source": cfg.source, **to_dict(cfg)}


def source_defaults(name: str) -> dict[str, Any]:
    """A source's default settings as a plain dict (not validated: some sources, like an image
    folder, have no valid default until the user names one)."""
    cls = get_source(name).Config
    out: dict[str, Any] = {"source": name}
    for f in dataclasses.fields(cls):
        value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def check_data(cfg: Any) -> None:
    """`DataSource.check` of the config's source: DataError when loading would fail early."""
    source_of(cfg).check(cfg)


def load_dataset(cfg: Any) -> Dataset:
    """Build the dataset a config describes. Raises DataError with a user-facing message."""
    ds = source_of(cfg).load(cfg)
    expected = tuple(cfg.input_shape)
    if tuple(ds.input_shape) != expected:  # a source's promise, checked: the model was built for it
        raise DataError(f"the {cfg.source} data came out {ds.input_shape}, not {expected}")
    return ds
