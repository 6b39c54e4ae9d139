"""Shared Streamlit helpers of the app: the job manager, the run picker, cached analysis.

Pages import from here; `sparse_models` itself never imports streamlit (house style 1).
"""

from . import analysis
from .jobs import device_label, fmt_seconds, job_manager, jobs_sidebar_ui, progress_text
from .runs import (
    RUN_KEY,
    RunRef,
    all_runs,
    describe_run,
    health_of,
    open_run,
    require_run,
    run_picker_ui,
    select_run,
    selected_run_info,
)

__all__ = [
    "RUN_KEY", "RunRef", "all_runs", "analysis", "describe_run", "health_of", "device_label", "fmt_seconds",
    "job_manager", "jobs_sidebar_ui", "open_run", "progress_text", "require_run",
    "run_picker_ui", "select_run", "selected_run_info",
]
