"""The app's test and benchmark harness (`app_ui/testing.py`, `app_ui/bench.py`) without a
browser: the memory figure the benchmark reports, and the CLI's way to the app benchmark."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app_ui.testing import process_tree_rss
from sparse_models.cli import main as cli_main

HELD = 64 << 20  # bytes the child process below keeps resident


def test_process_tree_rss_sums_a_process_and_its_children() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", f"b = bytearray({HELD}); print('ready', flush=True); input()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        alone = process_tree_rss(child.pid)
        assert alone >= HELD
        assert process_tree_rss(os.getpid()) >= alone + (10 << 20)  # this process counts too
    finally:
        child.communicate("\n", timeout=10)
    assert process_tree_rss(child.pid) == 0  # gone: counts nothing, raises nothing


def test_cli_bench_app_runs_the_apps_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    import app_ui.bench

    calls = []
    monkeypatch.setattr(app_ui.bench, "run_app_bench", lambda quick: calls.append(quick))
    assert cli_main(["bench", "app", "--quick"]) == 0
    assert calls == [True]
