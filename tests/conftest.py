"""Shared fixtures: every test starts from the same seeds, with a private runs folder on request."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    # The tests use tiny tensors: with several threads, the hand-off costs more than the work,
    # and on a busy 2-core machine a step can take 100x longer than single-threaded.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty runs folder, also made the default through $SPARSE_LAB_RUNS."""
    d = tmp_path / "runs"
    d.mkdir()
    monkeypatch.setenv("SPARSE_LAB_RUNS", str(d))
    return d
