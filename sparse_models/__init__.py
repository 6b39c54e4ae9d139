"""Sparse Feature Lab: sparse and structured-sparse models, their training and analysis."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .training.runs import load_run


def __getattr__(name: str) -> Any:
    # Lazy, so `import sparse_models` stays cheap (no torch) until a run is actually loaded.
    if name == "load_run":
        from .training.runs import load_run

        return load_run
    raise AttributeError(f"module 'sparse_models' has no attribute {name!r}")


__all__ = ["__version__", "load_run"]
