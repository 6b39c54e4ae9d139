"""What you set is what you train, in a real browser: out-of-range numbers and shipped names keep
Start disabled with their message, a double click on Start makes one job, and the replay at
step 0 shows step-0 numbers in the unit panel.

Debian's headless Chromium drives `streamlit run app.py` on a loopback port (tests/app/conftest.py).
"""

from __future__ import annotations

import math
import re
import time
from typing import Any

import numpy as np
import pytest

from app_ui.testing import MAIN, AppServer, browser_now, open_page, wait_rerun
from sparse_models.analysis import preferred_orientation
from sparse_models.training.runs import SHIPPED_DIR, load_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _type(page: Any, label: str, text: str) -> None:
    """Type `text` into the main area's field `label` and wait for the page to take it."""
    field = page.locator(MAIN).get_by_label(label, exact=True)
    since = browser_now(page)
    field.fill(text)
    field.press("Enter")
    wait_rerun(page, since)


def _start(page: Any) -> Any:
    return page.locator(MAIN).get_by_role("button", name="Start training", exact=True)


def _alerts(page: Any) -> str:
    return " ".join(page.locator('[data-testid="stAlertContentError"]').all_inner_texts())


@pytest.mark.parametrize(("label", "value", "words"), [
    ("Map rows", "100", "Map rows must be at most 48, got 100"),
    ("Learning rate", "50", "Learning rate must be at most 10, got 50"),
    ("Steps", "-5", "Steps must be at least 1, got -5"),
])
def test_an_out_of_range_value_keeps_start_disabled(browser_page: Any, lab_server: AppServer,
                                                    label: str, value: str, words: str) -> None:
    page = browser_page
    open_page(page, lab_server.url, "train", "Train")
    assert _start(page).is_enabled()
    _type(page, label, value)
    assert words in _alerts(page), f"no message {words!r}; the page says {_alerts(page)!r}"
    assert _start(page).is_disabled()
    assert page.locator(MAIN).get_by_label(label, exact=True).input_value() == value


def test_a_shipped_run_name_is_refused(browser_page: Any, lab_server: AppServer) -> None:
    page = browser_page
    open_page(page, lab_server.url, "train", "Train")
    _type(page, "Run name (optional)", "topographic-5x5")
    assert "shipped example run" in _alerts(page)
    assert _start(page).is_disabled()


def test_a_double_click_on_start_starts_one_job(browser_page: Any,
                                                lab_server: AppServer) -> None:
    page = browser_page
    before = set(lab_server.runs_dir.iterdir()) if lab_server.runs_dir.exists() else set()
    open_page(page, lab_server.url, "train", "Train")
    _type(page, "Steps", "3000")
    since = browser_now(page)
    _start(page).click()  # two clicks 0.15 s apart, as a quick double click by hand sends them
    page.wait_for_timeout(150)
    _start(page).click(force=True)
    wait_rerun(page, since)
    time.sleep(1.0)  # a second job, if any, would have made its folder by now
    made = set(lab_server.runs_dir.iterdir()) - before
    stop = page.locator(MAIN).get_by_role("button", name="Stop", exact=True)
    if stop.is_enabled():
        stop.click()
    assert len(made) == 1, f"a double click made {len(made)} runs: {sorted(p.name for p in made)}"


def test_the_replay_at_step_0_shows_step_0_numbers(browser_page: Any,
                                                   lab_server: AppServer) -> None:
    run = load_run(SHIPPED_DIR / "topographic-5x5")
    _, snaps, _ = run.snapshots()
    theta0, _ = preferred_orientation(snaps[0][:, 0])
    theta_end, _ = preferred_orientation(run.filters()[:, 0])
    differ = np.abs(np.degrees(theta0) - np.degrees(theta_end)) % 180 > 20
    unit = int(np.argmax(differ))
    page = browser_page
    open_page(page, lab_server.url,
              f"filters?run=topographic-5x5&filters_time=step+0&filters_unit={unit}", "Filters")
    metric = page.locator(MAIN).locator('[data-testid="stMetric"]').filter(has_text="Orientation")
    shown = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    assert shown == f"{np.degrees(theta0[unit]):.0f}°", (shown, np.degrees(theta0[unit]))
    rate = page.locator(MAIN).locator('[data-testid="stMetric"]').filter(has_text="Firing rate")
    assert rate.locator('[data-testid="stMetricValue"]').inner_text().strip() == "—"
    assert math.isfinite(theta_end[unit]) and re.search(r"step 0", page.locator(MAIN).inner_text())


def test_requests_for_another_host_name_are_refused(lab_server: AppServer) -> None:
    """DNS rebinding: a page elsewhere cannot reach the app under its own host name."""
    import http.client
    from urllib.parse import urlsplit

    port = urlsplit(lab_server.url).port
    for host, expected in ((f"127.0.0.1:{port}", 200), (f"localhost:{port}", 200),
                           (f"evil.example:{port}", 400)):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/_stcore/health", headers={"Host": host})
        assert conn.getresponse().status == expected, host
        conn.close()
