"""One writer per run folder, across threads, processes, the app and the CLI.

The lock is an exclusive `flock` on `<run>/.lock`, held while a run trains. The kernel drops it
when its process ends, however it ends, so a crash or kill -9 never leaves a run locked; the pid
written into the file only serves the message a second writer gets.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path

from .format import RunError

LOCK_FILE = ".lock"
_TMP = re.compile(r"^\..+\.(\d+)-\d+\.tmp$")  # atomic_write_bytes's temporary files


class RunLock:
    """`with RunLock(run_dir):` — RunError at once when another writer holds the run."""

    def __init__(self, run_dir: Path | str) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError, ValueError):
                holder = f" (process {int(os.pread(fd, 32, 0).decode().strip())})"
            os.close(fd)
            raise RunError(f"{self.path.parent.name} is being trained by another writer"
                           f"{holder}; wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def remove_orphaned_temporaries(run_dir: Path | str) -> list[str]:
    """Delete the temporary files an interrupted atomic write left in the run (their writer's
    process is gone). Call while holding the run's lock. Returns the names removed."""
    removed = []
    for p in Path(run_dir).iterdir():
        m = _TMP.match(p.name)
        if not m:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or _alive(pid):  # a write that may still be under way
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
