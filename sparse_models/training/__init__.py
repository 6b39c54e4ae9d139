"""Training: the loop (`trainer`), run folders on disk (`runs`), one run end to end
(`pipeline`), and background jobs for the app (`jobs`)."""

from .jobs import JobManager, JobStatus
from .pipeline import execute_run
from .runs import (
    SHIPPED_DIR,
    LoadedRun,
    RunConfig,
    RunError,
    RunInfo,
    create_run,
    default_runs_dir,
    list_runs,
    load_run,
    sanitize_run_name,
)
from .trainer import (
    StepInfo,
    TrainConfig,
    TrainingDiverged,
    TrainResult,
    make_optimizer,
    resolve_device,
    train,
)

__all__ = [
    "SHIPPED_DIR", "JobManager", "JobStatus", "LoadedRun", "RunConfig", "RunError", "RunInfo",
    "StepInfo", "TrainConfig", "TrainResult", "TrainingDiverged", "create_run",
    "default_runs_dir", "execute_run", "list_runs", "load_run", "make_optimizer",
    "resolve_device", "sanitize_run_name", "train",
]
