"""`python -m sparse_models`: the CLI, with a Ctrl-C during start-up answered in one line."""

import os
import signal
import sys


def _import_torch_uninterrupted() -> bool:
    """Import torch with Ctrl-C held back; True when one came meanwhile. (Ctrl-C inside torch's
    C++ initialisation aborts the interpreter, "terminate called …", instead of raising
    KeyboardInterrupt; every command needs torch, so it is loaded first.)"""
    caught: list[bool] = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        import torch  # noqa: F401
    finally:
        signal.signal(signal.SIGINT, previous)
    return bool(caught)


def _interrupted() -> None:
    print("interrupted", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # not sys.exit: the interpreter's shutdown may touch a module that Ctrl-C cut off half-loaded
    os._exit(130)


if len(sys.argv) > 1 and not sys.argv[1].startswith("-") and _import_torch_uninterrupted():
    _interrupted()
try:
    from .cli import main

    code = main()
except KeyboardInterrupt:  # Ctrl-C before a command handles it itself
    _interrupted()
if code == 130:  # a command that stopped on Ctrl-C or a Stop, and has said so
    # Exit 130 here, not through the interpreter's shutdown: an interrupt that landed while an
    # extension module ran Python code during an import (a Stop as `sweep` imports Ray) can leave
    # CPython set to end the process by SIGINT instead (exit -2), though it was handled.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
sys.exit(code)
