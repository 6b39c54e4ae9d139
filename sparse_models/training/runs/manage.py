"""Managing the user's runs: delete and rename. Shipped runs and runs being trained are refused.

Both act on the whole folder at once (one `rename`; `rmtree` after moving the folder aside), so
a crash never leaves half a run under its old name.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from .format import STATUS_FILE, RunError, is_shipped, read_json
from .listing import effective_state
from .writer import check_run_name


def _check_changeable(path: Path, what: str) -> None:
    if not path.is_dir():
        raise RunError(f"there is no run folder at {path}")
    if is_shipped(path):
        raise RunError(f"{path.name} is a shipped example run; it cannot be {what}")
    try:
        status = read_json(path / STATUS_FILE)
    except RunError:
        status = {}
    state = effective_state(status if isinstance(status, dict) else {})
    if state in ("running", "queued"):
        raise RunError(f"{path.name} is being trained ({state}); stop it first")


def delete_run(path: Path | str) -> None:
    """Delete a user's run folder and everything in it."""
    path = Path(path)
    _check_changeable(path, "deleted")
    aside = path.with_name(f".deleting-{path.name}-{uuid.uuid4().hex[:8]}")
    os.rename(path, aside)  # gone from every listing at once; the files go next
    shutil.rmtree(aside, ignore_errors=True)


def rename_run(path: Path | str, new_name: str) -> Path:
    """Give a user's run a new name (in the same runs folder); returns its new path."""
    path = Path(path)
    _check_changeable(path, "renamed")
    new = path.with_name(check_run_name(new_name))
    if new == path:
        return path
    if new.exists():
        raise RunError(f"a run called {new.name!r} already exists; pick another name")
    os.rename(path, new)
    return new
