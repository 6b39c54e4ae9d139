"""Models, each in its own file, registered by name."""

from .base import SparseModel, available_models, build_model, get_entry, register

__all__ = ["SparseModel", "available_models", "build_model", "get_entry", "register"]

# Importing a model file registers it.
from . import sparse_coding, topographic  # noqa: E402,F401
