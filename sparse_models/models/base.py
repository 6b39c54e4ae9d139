"""The interface every model shares, and the registry that maps names to (config, model).

A model is an `nn.Module` built from a frozen config dataclass. The trainer, the run folders,
the analysis and the app only use this interface, never a model's name:

- `encode(x) -> z`           x: (B, n_inputs) -> z: (B, n_units)
- `decode(z) -> x_hat`       z: (B, n_units) -> (B, n_inputs)
- `loss(x, y=None) -> dict`  named scalar terms; `"loss"` is the total that is minimised
- `train_step(x, y, opt)`    one optimisation step: `gradients` (default: backprop `loss`),
                             the optimiser's step, then `constrain`
- `constrain()`              projections after each step (e.g. unit-norm decoder columns)
- `evaluate(x, y)`           metrics on held-out data (default: the loss terms)

and what it declares about itself, for the analysis and the pages to draw it without asking
which model it is:

- `input_shape`              (C, H, W) of one input; `adapt_config` fits a config to the data
- `layout`                   how its units are arranged: a 2-D map, a tree, a sheet, or nothing
- `filter_kinds()`, `filters(kind)` -> (N, C, h, w), `default_filter_kind()`
- `pools()`                  the group-sparsity pool matrix, or None
- `energy_latex`, `blurb`, `paper`, `description`: the Overview's words
- `preset`                   default data and training settings; `tiny` for tests
- the config's fields carry their label, help and range (`config.setting`)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from ..config import ConfigError, from_dict, to_dict
from ..groups import square_map_shape

if TYPE_CHECKING:  # the trainer's optimiser (models do not import the trainer)
    from ..training.optim import Optimizer

LayoutKind = Literal["map", "tree", "sheet", "none"]


@dataclass(frozen=True)
class Layout:
    """How a model's units are arranged, for the analysis and the pages.

    map:   a 2-D map of `shape` = (rows, cols) units, wrapping around (a torus) when `wrap`.
    sheet: a 2-D grid of `shape` = (rows, cols) positions with `per_position` = K units at
           each, drawn as a `block()` = (a, b) block (a·b = K, as square as K allows), so the
           units form one (rows·a, cols·b) map; unit i is cell i of that map, row-major, and
           sits at position (r // a, c // b) of its cell (r, c). A sheet over an image also
           says where its positions are: `stride_px` apart, fields of `field_px` pixels.
    tree:  `parents[i]` is unit i's parent, -1 for a root.
    none:  no spatial order (e.g. a classifier's hidden units).
    """

    kind: LayoutKind
    shape: tuple[int, int] = (0, 0)
    wrap: bool = False
    per_position: int = 1
    parents: tuple[int, ...] = ()
    stride_px: int = 0  # sheet: image pixels between neighbouring positions (0: not an image)
    field_px: int = 0  # sheet: side of each unit's square receptive field, in pixels

    def __post_init__(self) -> None:
        if self.kind not in ("map", "tree", "sheet", "none"):
            raise ConfigError(f"layout kind must be map, tree, sheet or none; got {self.kind!r}")
        if self.kind in ("map", "sheet") and min(self.shape) < 1:
            raise ConfigError(f"a {self.kind} layout needs a positive shape, got {self.shape}")
        if self.per_position < 1:
            raise ConfigError(f"per_position must be at least 1, got {self.per_position}")

    @property
    def n_units(self) -> int | None:
        if self.kind == "map":
            return self.shape[0] * self.shape[1]
        if self.kind == "sheet":
            return self.shape[0] * self.shape[1] * self.per_position
        if self.kind == "tree":
            return len(self.parents)
        return None

    def grid_shape(self, n_units: int) -> tuple[int, int]:
        """(rows, cols) to draw all units as one 2-D grid of pictures, unit i in cell i (row-major):
        the map itself; for a sheet, each position's units side by side in its row; else
        near-square."""
        if self.kind == "map":
            return tuple(self.shape)
        if self.kind == "sheet":
            a, b = self.block()
            return self.shape[0] * a, self.shape[1] * b
        return square_shape(n_units)

    def block(self) -> tuple[int, int]:
        """How a sheet draws the K units of one position: an (a, b) block, a·b = K, a ≤ b."""
        return square_shape(self.per_position)

    def position_blocks(self) -> tuple[int, int] | None:
        """A sheet's (a, b) block when it holds more than one unit a position, else None: the
        blocks whose centres its pinwheels may keep to (`pinwheels.block_centre_share`)."""
        return self.block() if self.kind == "sheet" and self.per_position > 1 else None

    @property
    def px_per_map_unit(self) -> float:
        """A sheet's image pixels per step on its unit map: stride / √K (stride / a for an a×a
        block)."""
        return self.stride_px / float(np.sqrt(self.per_position))

    def unit_positions(self) -> np.ndarray:
        """A sheet's (N, 2) position (row, col) of each unit, in positions."""
        rows, cols = self.grid_shape(self.n_units or 0)
        a, b = self.block()
        r, c = np.divmod(np.arange(rows * cols), cols)
        return np.stack([r // a, c // b], axis=1)

    def map_shape(self) -> tuple[tuple[int, int] | None, str]:
        """`((rows, cols), "")` when the units form a 2-D map whose orientation map means
        something (neighbours on it are neighbours in the model), else `(None, why not)`."""
        if self.kind in ("map", "sheet"):
            rows, cols = self.grid_shape(self.n_units or 0)
            if min(rows, cols) < 2:
                return None, (f"its {rows * cols} units lie on a {rows}×{cols} strip; an "
                              f"orientation map needs at least 2 rows and 2 columns")
            return (rows, cols), ""
        if self.kind == "tree":
            return None, "its units form a tree, not a 2-D map"
        return None, "its units have no spatial layout"


def square_shape(n: int) -> tuple[int, int]:
    """The most square (rows, cols) with rows·cols = n exactly (a prime gives a 1×n strip)."""
    return square_map_shape(n) if n > 0 else (0, 0)


class SparseModel(nn.Module):
    """Base class. Subclasses set `name`, `Config` and the class attributes below, and implement
    encode/decode/loss/filters."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    description: ClassVar[str] = ""  # one line: the model picker, `list --models`
    blurb: ClassVar[str] = ""  # a short paragraph (Markdown) for the Overview
    energy_latex: ClassVar[str] = ""  # its energy or loss, in LaTeX, for the Overview
    paper: ClassVar[str] = ""  # the paper it follows
    filter_notes: ClassVar[dict[str, str]] = {}  # per filter kind: what those filters are
    supervised: ClassVar[bool] = False  # uses labels y in `loss`
    # Default settings of a run of this model, by section ("data", "train"; "model" overrides
    # the config's own defaults); tuned so the default trains in seconds on a 2-core CPU.
    preset: ClassVar[dict[str, dict[str, Any]]] = {}
    # Overrides (section.key -> value) giving a tiny run that trains in a moment, for tests.
    tiny: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config

    # --- the core -------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def constrain(self) -> None:
        """Projection applied after every optimiser step. Default: nothing."""

    def train_step(
        self, x: torch.Tensor, y: torch.Tensor | None, optimizer: Optimizer
    ) -> dict[str, torch.Tensor]:
        """One step: `gradients`, optimiser step, then `constrain()`."""
        optimizer.zero_grad(set_to_none=True)
        terms = self.gradients(x, y)
        optimizer.step()
        with torch.no_grad():
            self.constrain()
        return {k: v.detach() for k, v in terms.items()}

    def gradients(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """The loss terms, with the gradient of `"loss"` left in each parameter's `.grad`.
        Default: backprop through `loss`; a model may compute them by hand where that is faster."""
        terms = self.loss(x, y)
        terms["loss"].backward()
        return terms

    def param_groups(self, lr: float) -> list[dict[str, Any]]:
        """Optimiser parameter groups; models override to scale per-matrix learning rates."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None = None,
                 batch_size: int = 1000) -> dict[str, float]:
        """Metrics on held-out data x: (n, n_inputs): each loss term averaged over the samples,
        and the explained variance of the reconstruction. Supervised models add their own."""
        sums: dict[str, float] = {}
        resid = total = 0.0
        n = x.shape[0]
        mean = x.mean(0, keepdim=True)
        for s in range(0, n, batch_size):
            xb = x[s:s + batch_size]
            yb = None if y is None else y[s:s + batch_size]
            with torch.enable_grad():  # some losses run an inner optimisation
                terms = self.loss(xb, yb)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) * xb.shape[0]
            r = xb - self.decode(self.encode(xb)).reshape(xb.shape)
            resid += float((r * r).sum())
            total += float(((xb - mean) ** 2).sum())
        out = {k: v / n for k, v in sums.items()}
        out["explained_variance"] = 1.0 - resid / total if total > 0 else float("nan")
        return out

    # --- what the model declares about itself ---------------------------------------------
    @property
    def n_units(self) -> int:
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input."""
        raise NotImplementedError

    @classmethod
    def adapt_config(cls, config: Any, input_shape: tuple[int, int, int]) -> Any:
        """This model's config fitted to data of `input_shape` (C, H, W); ConfigError in words
        when the model cannot take such data. Default: the config as it is."""
        return config

    @property
    def layout(self) -> Layout:
        return Layout("none")

    @classmethod
    def summarize_config(cls, config: Any) -> str:
        """A few words on a config for run lists (e.g. '16×16 map, 5×5 pools'); default none."""
        return ""

    @property
    def map_shape(self) -> tuple[int, int]:
        """(rows, cols) to draw the units as one grid of pictures (see `Layout.grid_shape`)."""
        return self.layout.grid_shape(self.n_units)

    @property
    def map_periodic(self) -> bool:
        """Whether the unit map wraps around (a torus), for map analysis."""
        return self.layout.kind == "map" and self.layout.wrap

    def pools(self) -> torch.Tensor | None:
        """Pool matrix `(n_pools, n_units)` of the group-sparsity penalty, or None."""
        return None

    @property
    def has_pools(self) -> bool:
        return self.pools() is not None

    @property
    def rows_per_sample(self) -> int:
        """Code rows `encode` gives per input: 1, or e.g. one per position of a convolutional
        model's code maps (its rows are then positions, not inputs)."""
        return 1

    @property
    def map_order(self) -> str | None:
        """In words, for the pages: what orders the units on their map when the model has no
        pools (e.g. lateral inhibition); None where pools do, or nothing does."""
        return None

    def filter_kinds(self) -> tuple[str, ...]:
        return ("decoder", "encoder")

    def default_filter_kind(self) -> str:
        """The filters the analysis and the pages show unless asked: the decoder's, where the
        model has them, else its first kind."""
        kinds = self.filter_kinds()
        return "decoder" if "decoder" in kinds else kinds[0]

    def filters(self, kind: str = "decoder") -> torch.Tensor:
        """Filters as images `(N, C, h, w)`, detached, on the CPU."""
        raise NotImplementedError

    def check_filter_kind(self, kind: str) -> None:
        if kind not in self.filter_kinds():
            raise ValueError(f"{self.name} has no {kind!r} filters; it has "
                             f"{', '.join(self.filter_kinds())}")

    def extra_state_for_ui(self) -> dict[str, Any]:
        """Model-specific arrays the UI may show (e.g. the inhibition matrix S)."""
        return {}


class PatchModel(SparseModel):
    """A model of flattened single-channel patches whose config has `input_shape: (h, w)`."""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        h, w = self.config.input_shape
        return (1, int(h), int(w))

    @classmethod
    def adapt_config(cls, config: Any, input_shape: tuple[int, int, int]) -> Any:
        c, h, w = input_shape
        if c != 1:
            raise ConfigError(f"{cls.name} learns from single-channel (grey) patches; this data "
                              f"has {c} channels")
        if tuple(config.input_shape) == (h, w):
            return config
        return replace(config, input_shape=(int(h), int(w)))

    def filters_of(self, weights: torch.Tensor) -> torch.Tensor:
        """(N, P) weight rows as (N, 1, h, w) images."""
        return weights.detach().cpu().reshape(self.n_units, *self.input_shape)


class RevivesSilentUnits:
    """Reviving units that stop firing, for a model whose config has `revive_every` and
    `revive_until` (place it before the model's base class). Every `revive_every` training
    steps, up to step `revive_until`, the units that fired on no sample since the last check are
    handed to the model's `revive_silent(x, dead, optimizer)`. The model's step reports each
    batch's firing with `note_firing(fired)` when `tracks_firing`. Training-time state, not
    saved: a resumed run starts counting its steps and silent units again."""

    def init_revival(self, units: tuple[int, ...]) -> None:
        """Start the counts for units of shape `units` (the shape of `note_firing`'s masks)."""
        self._steps = 0
        self._fired: torch.Tensor | None = None  # bool: fired on the last batch
        self._fired_since = torch.zeros(units, dtype=torch.bool)  # fired since the last check

    @property
    def tracks_firing(self) -> bool:
        return self.config.revive_every > 0

    def note_firing(self, fired: torch.Tensor) -> None:
        """Remember which units fired on this batch (a bool mask)."""
        self._fired = fired.detach()

    def revive_silent(self, x: torch.Tensor, dead: torch.Tensor, optimizer: Any) -> None:
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None,
                   optimizer: Optimizer) -> dict[str, torch.Tensor]:
        """The base step, then the revival schedule."""
        terms = super().train_step(x, y, optimizer)
        c = self.config
        if self.tracks_firing and self._fired is not None:
            self._steps += 1
            fired = self._fired_since.to(self._fired.device) | self._fired
            if self._steps % c.revive_every == 0:
                if self._steps <= c.revive_until:
                    self.revive_silent(x, ~fired, optimizer)
                fired = torch.zeros_like(fired)
            self._fired_since = fired
        return terms


def clear_optimizer_state(optimizer: Any, where: list[tuple[torch.Tensor, Any]]) -> None:
    """Zero the optimiser's per-element state (e.g. Adam's moments) of each parameter at its
    index, for units that start again: [(param, index), ...]. Scalar state is left alone."""
    if optimizer is None:
        return
    for p, index in where:
        for value in optimizer.state.get(p, {}).values():
            if torch.is_tensor(value) and value.shape == p.shape:
                value[index] = 0


@dataclass(frozen=True)
class ModelEntry:
    name: str
    config_cls: type
    model_cls: type[SparseModel]
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register(cls: type[SparseModel]) -> type[SparseModel]:
    """Class decorator: make a model buildable by name (CLI, runs on disk, the app)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    _REGISTRY[cls.name] = ModelEntry(cls.name, cls.Config, cls, cls.description)
    return cls


def unregister(name: str) -> None:
    """Forget a registered model (tests that register toy models clean up with this)."""
    _REGISTRY.pop(name, None)


def available_models() -> dict[str, ModelEntry]:
    return dict(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def model_config(name: str, config: dict[str, Any] | Any | None = None) -> Any:
    """The validated config instance of model `name` from a dict (or an instance, as is)."""
    entry = get_entry(name)
    if isinstance(config, entry.config_cls):
        return config
    return from_dict(entry.config_cls, config, where="model.")


def build_model(name: str, config: dict[str, Any] | Any | None = None) -> SparseModel:
    """Build a registered model from a config dict (validated) or a config instance."""
    return get_entry(name).model_cls(model_config(name, config))


def model_config_dict(model: SparseModel) -> dict[str, Any]:
    return to_dict(model.config)
