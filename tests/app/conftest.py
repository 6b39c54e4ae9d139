"""Fixtures for the real-browser tests: Debian's headless Chromium and a Streamlit server.

The server runs `python -m streamlit run app.py` on a free loopback port with a private runs
folder ($SPARSE_LAB_RUNS), and is stopped with its whole process group when the module is done.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app_ui.testing import (
    CHROMIUM,
    REPO_ROOT,
    AppServer,
    launch_chromium,
    watch_script_runs,
)

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"  # git-ignored; looked at by people


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: the real-browser tests need Debian's chromium "
                    "(apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """`streamlit run app.py` on 127.0.0.1, shared by the tests of one module."""
    d = tmp_path_factory.mktemp("lab_server")
    with AppServer(runs_dir=d / "runs", log_path=d / "streamlit.log") as server:
        yield server


@pytest.fixture
def browser_page(chromium: Any) -> Iterator[Any]:
    """A fresh tab (own cookies and session) in a desktop-sized window."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    watch_script_runs(page)
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
