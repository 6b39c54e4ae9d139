"""The Sweep page in a real browser: pick two trials of the shipped sweep and Compare them;
launch a tiny sweep from the form and watch it finish, the server's memory flat meanwhile
(the trials run in Ray's workers, in the sweep's own process tree, not in the server)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from app_ui.testing import MAIN, wait_drawn
from sparse_models.sweep import read_sweep, trial_rows
from sparse_models.sweep.store import sweep_state

# With the suite on two workers, everything that starts Ray runs on one of them, in turn
# (the same group as tests/test_sweep.py): two Ray clusters at once on two cores would each
# wait on the other.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("ray")]

SERVER_RSS_LIMIT = 1.5 * 2**30
ROW_PX = 35  # Streamlit's data grid: header and rows are 35 px high


def _select_rows(page: Any, rows: list[int]) -> None:
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    for row in rows:  # the row-marker column at the grid's left edge
        page.mouse.click(box["x"] + 15, box["y"] + ROW_PX * (row + 1) + ROW_PX // 2)
        page.wait_for_timeout(1500)


def test_two_shipped_trials_go_to_compare(lab_server: Any, browser_page: Any,
                                          screenshot_dir: Path) -> None:
    page = browser_page
    page.goto(f"{lab_server.url}/sweep")
    page.locator(MAIN).get_by_text("Trials", exact=True).wait_for()
    wait_drawn(page)
    _select_rows(page, [0, 6])
    link = page.get_by_text("Compare pool-lam-t000 with pool-lam-t006")
    link.wait_for()
    page.screenshot(path=str(screenshot_dir / "sweep-compare-link.png"))
    link.click()
    page.wait_for_url("**/compare?**")
    assert "compare_a=pool-lam-t000" in page.url and "compare_b=pool-lam-t006" in page.url
    page.locator(MAIN).get_by_text("Compare", exact=True).first.wait_for()


def test_a_sweep_launched_in_the_browser_runs_outside_the_server(
        lab_server: Any, browser_page: Any, screenshot_dir: Path) -> None:
    page = browser_page
    page.goto(f"{lab_server.url}/sweep")
    page.locator(MAIN).get_by_text("Trials", exact=True).wait_for()
    page.get_by_text("Define a new sweep").click()
    page.get_by_label("Setting 2").click()
    page.get_by_role("option", name="(none)").click()
    page.get_by_label("Values of model.group.size, separated by commas").fill("3,5")
    page.get_by_role("spinbutton", name="Seeds per point").fill("1")
    page.get_by_role("spinbutton", name="Training steps per trial").fill("200")
    page.get_by_label("Other fixed settings").fill("data.n_patches=512\n"
                                                   "model.group.map_shape=[8,8]")
    page.get_by_label("Sweep name").fill("browser")
    page.get_by_label("Sweep name").press("Enter")
    page.wait_for_timeout(1000)
    page.get_by_role("button", name="Launch sweep").click()
    page.get_by_text("Sweep browser started in the background").wait_for()
    folder = lab_server.runs_dir / ".sweeps" / "browser"
    server = psutil.Process(lab_server.proc.pid)
    peak = 0
    deadline = time.monotonic() + 240
    while sweep_state(folder) in ("created", "running") and time.monotonic() < deadline:
        peak = max(peak, server.memory_info().rss)
        time.sleep(0.5)
    assert sweep_state(folder) == "finished", (folder / "sweep.log").read_text()[-2000:]
    assert peak <= SERVER_RSS_LIMIT, f"server RSS reached {peak / 2**20:.0f} MB"
    rows = trial_rows(read_sweep(folder))
    assert [r["state"] for r in rows] == ["completed", "completed"]
    assert server.pid not in {r["pid"] for r in rows}
    page.get_by_text("2 / 2 trials finished").wait_for(timeout=30_000)  # the page caught up
    page.screenshot(path=str(screenshot_dir / "sweep-browser-finished.png"))
