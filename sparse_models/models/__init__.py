"""Models, each in its own file, registered by name."""

from .base import SparseModel, available_models, build_model, get_entry, register

__all__ = ["SparseModel", "available_models", "build_model", "get_entry", "register"]

# Importing a model file registers it; the registration order is the order the app lists them
# in (the showcase model first).
from . import topographic  # noqa: E402,F401,I001
from . import sparse_coding  # noqa: E402,F401
from . import sheet  # noqa: E402,F401
from . import lateral  # noqa: E402,F401
from . import drsae  # noqa: E402,F401
from . import lista  # noqa: E402,F401
from . import conv  # noqa: E402,F401
