"""Run folders: self-describing directories holding one training run (house style 8).

One module per job: `format` (the files, the config, names, atomic writes), `checkpoints`
(tensor files and the check that weights fit a model), `writer` (making and writing a run),
`loading` (opening one) and `listing` (finding them all).
"""

from .checkpoints import (
    Checkpoint,
    check_weights_fit,
    read_checkpoint,
    read_snapshots,
    restore_rng,
)
from .format import (
    ANALYSIS_FILE,
    CHECKPOINT_FILE,
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    METRICS_FILE,
    REPO_ROOT,
    RUNS_ENV,
    SHIPPED_DIR,
    SNAPSHOTS_FILE,
    STATUS_FILE,
    WEIGHTS_FILE,
    RunConfig,
    RunError,
    atomic_write_bytes,
    default_runs_dir,
    dumps_json,
    is_shipped,
    read_json,
    read_metrics,
    read_run_config,
    sanitize_run_name,
    upgrade_v1,
    write_json_atomic,
)
from .listing import RunInfo, effective_state, list_runs
from .loading import LoadedRun, check_resumable, load_run, parent_parameters
from .lock import RunLock, remove_orphaned_temporaries
from .manage import delete_run, rename_run
from .writer import RunWriter, check_run_name, create_run, reserved_names

__all__ = [
    "ANALYSIS_FILE", "CHECKPOINT_FILE", "CONFIG_FILE", "FORMAT", "FORMAT_VERSION", "METRICS_FILE",
    "REPO_ROOT", "RUNS_ENV", "SHIPPED_DIR", "SNAPSHOTS_FILE", "STATUS_FILE", "WEIGHTS_FILE",
    "Checkpoint", "LoadedRun", "RunConfig", "RunError", "RunInfo", "RunWriter",
    "RunLock", "atomic_write_bytes", "check_resumable", "check_run_name", "check_weights_fit", "create_run", "default_runs_dir", "delete_run", "dumps_json",
    "effective_state", "is_shipped", "list_runs", "load_run", "parent_parameters", "read_checkpoint", "read_json",
    "read_metrics", "read_run_config", "read_snapshots", "remove_orphaned_temporaries", "rename_run", "reserved_names", "restore_rng", "sanitize_run_name",
    "upgrade_v1", "write_json_atomic",
]
