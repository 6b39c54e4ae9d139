"""Analysis of trained models: orientation maps, pinwheels, sparsity, quality, one report.

Each module is plain functions on arrays (numpy or torch); `report.analyze_model` ties them to
the `SparseModel` interface. Map measures follow Kaschube et al. (Science 2010) and
Wolf & Geisel (Nature 1998).
"""

from .invariance import conv_invariance, invariance_summary, phase_invariance
from .localisation import envelope_width, localisation_summary
from .orientation import orientation_map, preferred_orientation
from .pinwheels import (
    column_spacing,
    find_pinwheels,
    pinwheel_density,
    power_spectrum,
    shuffled_density,
)
from .quality import (
    explained_variance,
    live_fraction,
    mean_selectivity,
    neighbour_orientation_diff_deg,
    within_vs_between_pool_similarity,
)
from .report import analyze_model, summarize
from .sparsity import (
    activation_histogram,
    active_count,
    dead_units,
    firing_frequency,
    group_norms,
    sparsity_summary,
)

__all__ = [
    "activation_histogram", "conv_invariance", "envelope_width", "invariance_summary",
    "phase_invariance", "localisation_summary", "active_count", "analyze_model", "column_spacing", "dead_units",
    "explained_variance", "find_pinwheels", "firing_frequency", "group_norms", "live_fraction",
    "mean_selectivity", "neighbour_orientation_diff_deg", "orientation_map", "pinwheel_density",
    "power_spectrum", "preferred_orientation", "shuffled_density", "sparsity_summary",
    "summarize", "within_vs_between_pool_similarity",
]
