"""The whole app in a real browser: `streamlit run app.py` on a loopback port, driven by
Playwright with Debian's headless Chromium.

Every page opens (by its URL) with the app's sidebar and no traceback or error box; a tiny training
started from the Train page shows its progress moving, finishes, and its run can then be chosen
on another page. A screenshot of each page goes to artifacts/screenshots/.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from app_ui.testing import (
    EXCEPTION,
    MAIN,
    PAGES,
    SIDEBAR,
    AppServer,
    browser_now,
    click_nav,
    nav_titles,
    open_page,
    set_train_steps,
    wait_rerun,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TRAIN_STEPS = 1500  # a few seconds: long enough for the 1 s progress refresh to show it moving
# (not the default 2000: typing the value already there would not rerun the page)
TRAIN_TIMEOUT_S = 75
APP_TITLES = [title for _, title in PAGES]  # the navigation, top to bottom
PROGRESS = re.compile(r"step\s+(\d+)\s*/\s*(\d+)")
_IMAGE_SHOWN_JS = """() => Array.from(document.querySelectorAll(
    '[data-testid="stMain"] [data-testid="stImage"] img'))
    .some(i => i.complete && i.naturalWidth > 0)"""


def _errors(page: Any) -> list[str]:
    """Tracebacks, and red error boxes (app.py turns a page's exception into one)."""
    boxes = page.locator(f'{EXCEPTION}, [data-testid="stAlertContentError"]')
    return [t.strip()[:600] for t in boxes.all_inner_texts()]


def _assert_clean(page: Any, server: AppServer, where: str) -> None:
    errors = _errors(page)
    assert not errors, f"{where}: the page shows an error:\n{errors}\n{server.log_tail()}"


def _assert_sidebar(page: Any, where: str) -> None:
    sidebar = page.locator(SIDEBAR)
    assert sidebar.get_by_role("combobox", name="Run").count() == 1, \
        f"{where}: no 'Run' picker in the sidebar; sidebar says: {sidebar.inner_text()!r}"
    assert sidebar.get_by_text(re.compile(r"Device: (CPU|CUDA)")).count() >= 1, \
        f"{where}: the sidebar does not say which device is in use"


def _shot(page: Any, folder: Path, name: str) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main area, so grow the window."""
    size = page.viewport_size
    height = page.evaluate("""() => Math.max(0, ...Array.from(document.querySelectorAll(
        '[data-testid="stMain"], [data-testid="stSidebarContent"]'), e => e.scrollHeight))""")
    if height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": min(height + 40, 5000)})
        page.wait_for_timeout(400)  # let charts re-lay themselves out
    page.screenshot(path=str(folder / f"{name}.png"))
    page.set_viewport_size(size)


def _run_options(page: Any, query: str) -> list[str]:
    """Type `query` into the sidebar 'Run' picker and return the options it then offers."""
    picker = page.locator(SIDEBAR).get_by_role("combobox", name="Run")
    picker.click()
    picker.fill(query)
    page.get_by_role("option").first.wait_for(state="visible", timeout=10_000)
    return [t.strip() for t in page.get_by_role("option").all_inner_texts()]


def _assert_app_nav(page: Any, where: str) -> None:
    """The sidebar lists the app's own pages, by their titles (not file names)."""
    shown = nav_titles(page)
    assert shown == APP_TITLES, (f"{where}: the navigation shows {shown}, not the app's pages "
                                 f"{APP_TITLES}")


def test_deep_link_is_a_fresh_servers_first_request(browser_page: Any,
                                                    tmp_path: Path) -> None:
    """A shared link to an inner page, opened first after a (re)start, shows the whole app.

    Streamlit decides once per server, from the first session's main script, whether the app is
    an old-style multipage app: one with a `pages/` folder beside its main script. Then a first
    visit to /orientation gets a bare page from that folder, with file names for navigation and
    without the app's sidebar. The main script is `app_ui/navigation.py`, away from `pages/`,
    so this does not happen; this test's own server makes sure the deep link is its first visit.
    """
    with AppServer(runs_dir=tmp_path / "runs", log_path=tmp_path / "streamlit.log") as server:
        where = "/orientation as a fresh server's first request"
        open_page(browser_page, server.url, "orientation", "Orientation map & pinwheels")
        _assert_app_nav(browser_page, where)
        _assert_sidebar(browser_page, where)
        _assert_clean(browser_page, server, where)


@pytest.mark.parametrize(("url_path", "title"), PAGES, ids=[p or "overview" for p, _ in PAGES])
def test_page_renders(browser_page: Any, lab_server: AppServer, screenshot_dir: Path,
                      url_path: str, title: str) -> None:
    page = browser_page
    open_page(page, lab_server.url, url_path, title)
    # Something is drawn in the main area, not just the frame.
    assert page.locator(MAIN).inner_text().strip(), f"/{url_path}: the main area is empty"
    _shot(page, screenshot_dir, url_path or "overview")
    _assert_clean(page, lab_server, f"/{url_path}")
    _assert_app_nav(page, f"/{url_path}")
    _assert_sidebar(page, f"/{url_path}")


def test_train_in_the_browser(browser_page: Any, lab_server: AppServer,
                              screenshot_dir: Path) -> None:
    """Start a tiny job, watch it move and finish, then pick the new run on another page."""
    page = browser_page
    runs_before = set(lab_server.runs_dir.iterdir())
    open_page(page, lab_server.url, "train", "Train")
    main = page.locator(MAIN)

    set_train_steps(page, TRAIN_STEPS)  # raises if the field does not show them
    assert f"steps={TRAIN_STEPS}" in page.url, f"the Train settings are not in the URL: {page.url}"

    main.get_by_role("button", name="Start training", exact=True).click()
    seen: dict[int, int] = {}  # step -> total, as the progress text showed them
    snapshot_seen = running_shot = False
    finished = main.get_by_text(re.compile(r"Finished"))
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while time.monotonic() < deadline and finished.count() == 0:
        _assert_clean(page, lab_server, "Train page while training")
        for text in main.locator('[data-testid="stProgress"]').all_inner_texts():
            for step, total in PROGRESS.findall(text):
                seen[int(step)] = int(total)
            if "ETA" in text:  # the job is running: is its filter picture on screen?
                snapshot_seen = snapshot_seen or page.evaluate(_IMAGE_SHOWN_JS)
        if len(seen) >= 2 and not running_shot:
            _shot(page, screenshot_dir, "train-running")
            running_shot = True
        page.wait_for_timeout(100)

    assert finished.count() > 0, (f"no 'Finished' message within {TRAIN_TIMEOUT_S} s; progress "
                                  f"seen: {sorted(seen)}\n{lab_server.log_tail()}")
    _shot(page, screenshot_dir, "train-finished")
    assert len(seen) >= 2 and any(0 < n < TRAIN_STEPS for n in seen), \
        f"the progress text never showed the job moving: steps seen {sorted(seen)}"
    assert set(seen.values()) == {TRAIN_STEPS}, f"progress totals {set(seen.values())}"
    assert snapshot_seen, "no live filter picture was shown while the job ran"

    new_runs = set(lab_server.runs_dir.iterdir()) - runs_before
    assert len(new_runs) == 1, f"expected one new run folder, found {sorted(new_runs)}"
    run_name = new_runs.pop().name
    message = " ".join(finished.all_inner_texts())
    assert run_name in message, f"the finished message {message!r} does not name {run_name}"

    # The new run is offered by the sidebar picker on another page, and can be chosen there.
    click_nav(page, "Filters")
    options = _run_options(page, run_name)
    assert any(run_name in o for o in options), f"{run_name} not among the 'Run' options {options}"
    since = browser_now(page)
    page.get_by_role("option").filter(has_text=run_name).first.click()
    wait_rerun(page, since)
    picker = page.locator(SIDEBAR).get_by_role("combobox", name="Run")
    assert run_name in picker.input_value()
    _assert_clean(page, lab_server, f"Filters page showing {run_name}")
    _shot(page, screenshot_dir, "filters-new-run")
