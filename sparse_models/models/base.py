"""The interface every model shares, and the registry that maps names to (config, model).

A model is an `nn.Module` built from a frozen config dataclass. The trainer, the run folders,
the analysis and the app only use this interface:

- `encode(x) -> z`           x: (B, n_inputs) -> z: (B, n_units)
- `decode(z) -> x_hat`       z: (B, n_units) -> (B, n_inputs)
- `loss(x, y=None) -> dict`  named scalar terms; `"loss"` is the total that is minimised
- `train_step(x, y, opt)`    one optimisation step: `gradients` (default: backprop `loss`),
                             the optimiser's step, then `constrain`
- `constrain()`              projections after each step (e.g. unit-norm decoder columns)
- `filters(kind)`            (N, h, w) images to display: "decoder" or "encoder"
- `layout` / `map_shape`     how the N filters are laid out: a 2-D "map", a "tree", a "sheet"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..config import from_dict, to_dict


class SparseModel(nn.Module):
    """Base class. Subclasses set `name`, `Config`, and implement encode/decode/loss."""

    name: ClassVar[str] = ""
    Config: ClassVar[type]
    description: ClassVar[str] = ""
    supervised: ClassVar[bool] = False  # uses labels y in `loss`

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
        self, x: torch.Tensor, y: torch.Tensor | None, optimizer: torch.optim.Optimizer
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

    # --- what the UI shows ----------------------------------------------------------------
    @property
    def n_units(self) -> int:
        raise NotImplementedError

    @property
    def input_shape(self) -> tuple[int, int]:
        """(h, w) of one input patch or image."""
        raise NotImplementedError

    @property
    def layout(self) -> str:
        return "map"

    @property
    def map_shape(self) -> tuple[int, int]:
        """(rows, cols) that the units are laid out on."""
        from ..groups import square_map_shape

        return square_map_shape(self.n_units)

    @property
    def map_periodic(self) -> bool:
        """Whether the unit map wraps around (a torus), for map analysis."""
        return False

    def pools(self) -> torch.Tensor | None:
        """Pool matrix `(n_pools, n_units)` of the group-sparsity penalty, or None."""
        return None

    def filter_kinds(self) -> tuple[str, ...]:
        return ("decoder", "encoder")

    def default_filter_kind(self) -> str:
        """The filters the analysis and the pages show unless asked: the decoder's, where the
        model has them, else its first kind."""
        kinds = self.filter_kinds()
        return "decoder" if "decoder" in kinds else kinds[0]

    def filters(self, kind: str = "decoder") -> torch.Tensor:
        """Filters as images `(N, h, w)`, detached, on the CPU."""
        raise NotImplementedError

    def extra_state_for_ui(self) -> dict[str, Any]:
        """Model-specific arrays the UI may show (e.g. the inhibition matrix S)."""
        return {}


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


def available_models() -> dict[str, ModelEntry]:
    return dict(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    from ..config import ConfigError

    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def build_model(name: str, config: dict[str, Any] | Any | None = None) -> SparseModel:
    """Build a registered model from a config dict (validated) or a config instance."""
    entry = get_entry(name)
    cfg = config if isinstance(config, entry.config_cls) else from_dict(
        entry.config_cls, config, where="model.")
    return entry.model_cls(cfg)


def model_config_dict(model: SparseModel) -> dict[str, Any]:
    return to_dict(model.config)
