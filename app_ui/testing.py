"""Run the Streamlit app on a loopback port and drive it with headless Chromium.

Shared by the real-browser test (`tests/app/test_browser.py`) and the app benchmark
(`app_ui/bench.py`). The server is `python -m streamlit run app.py` in its own process group, so
stopping it never leaves a process behind; its output goes to a log file whose tail is quoted
when something fails. This module itself imports neither streamlit nor playwright (the browser
helpers are handed Playwright's objects); importing it still runs `app_ui/__init__.py`.

How the helpers know a page is done: after a page load, Streamlit's root element
`[data-testid="stApp"]` says `data-test-script-state="notRunning"` once the first run is drawn;
after a click, `wait_rerun` watches the WebSocket for the server's `script_finished` message.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; Playwright cannot fetch its own here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOOPBACK = "127.0.0.1"

APP_ROOT = '[data-testid="stApp"]'
EXCEPTION = '[data-testid="stException"]'
MAIN = '[data-testid="stMain"]'
SIDEBAR = '[data-testid="stSidebar"]'
NAV_LINK = 'a[data-testid="stSidebarNavLink"]'

# The app's pages: (url path, navigation title), as app_ui/navigation.py declares them.
PAGES = [
    ("", "Overview"),
    ("train", "Train"),
    ("filters", "Filters"),
    ("orientation", "Orientation map & pinwheels"),
    ("sparsity", "Sparsity"),
    ("compare", "Compare"),
    ("tree", "Tree"),
    ("drsae", "DrSAE"),
    ("conv", "Convolutional"),
    ("sweep", "Sweep"),
]


class AppServerError(RuntimeError):
    """The server did not come up (the message ends with the tail of its log)."""


class AppPageError(AssertionError):
    """A page did not open as the page it should be (says what the browser shows instead)."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class AppServer:
    """`python -m streamlit run SCRIPT` on 127.0.0.1, stopped (whole process group) on exit.

    Use as a context manager: `with AppServer(runs_dir=d) as server: page.goto(server.url)`.
    The runs folder is passed as $SPARSE_LAB_RUNS so the user's runs are never touched.
    """

    def __init__(self, runs_dir: str | Path, script: str = "app.py", cwd: str | Path = REPO_ROOT,
                 log_path: str | Path | None = None, env: dict[str, str] | None = None,
                 ready_timeout: float = 60.0) -> None:
        self.runs_dir = Path(runs_dir)
        self.script = script
        self.cwd = Path(cwd)
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.ready_timeout = ready_timeout
        self._extra_env = dict(env or {})
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="streamlit-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at: float | None = None  # time.perf_counter() just before Popen

    def command(self) -> list[str]:
        return [sys.executable, "-m", "streamlit", "run", self.script,
                "--server.headless", "true",
                "--server.port", str(self.port),
                "--server.address", LOOPBACK,
                "--browser.gatherUsageStats", "false"]

    def start(self) -> AppServer:
        env = dict(os.environ)
        env.update(self._extra_env)
        env["SPARSE_LAB_RUNS"] = str(self.runs_dir)
        env["PYTHONUNBUFFERED"] = "1"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child, closed below
        try:
            self.started_at = time.perf_counter()
            self.proc = subprocess.Popen(self.command(), cwd=self.cwd, env=env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        finally:
            log.close()
        return self

    def wait_ready(self, timeout: float | None = None) -> float:
        """Poll /_stcore/health until it answers `ok`; return seconds since `start()`."""
        assert self.proc is not None and self.started_at is not None, "start() first"
        deadline = time.perf_counter() + (self.ready_timeout if timeout is None else timeout)
        health = f"{self.url}/_stcore/health"
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise AppServerError(f"streamlit exited with code {self.proc.returncode} "
                                     f"before it was ready\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(health, timeout=1.0) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        return time.perf_counter() - self.started_at
            except OSError:
                pass
            time.sleep(0.05)
        raise AppServerError(f"streamlit did not answer {health} within the timeout\n"
                             f"{self.log_tail()}")

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; idempotent."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the child leads its own group
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # The leader is gone; make sure nothing it started outlives it.
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        self.proc = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"
        return "--- streamlit log (tail) ---\n" + text[-chars:]

    def rss_bytes(self) -> int:
        """Resident memory of the server and all its descendants, summed."""
        return process_tree_rss(self.proc.pid) if self.proc is not None else 0

    def __enter__(self) -> AppServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def process_tree_rss(pid: int) -> int:
    """Resident memory (bytes) of `pid` and its descendants, summed; processes gone meanwhile
    count 0."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


# --- browser side -------------------------------------------------------------------------------

def launch_chromium(playwright: Any) -> Any:
    """Debian's headless Chromium through Playwright (`playwright.sync_api.sync_playwright()`)."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} not found (apt-get install chromium)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                      headless=True)


def wait_script_idle(page: Any, timeout_ms: float = 30_000) -> None:
    """Wait until the app is connected and no script run (or fragment run) is in flight."""
    page.wait_for_selector(f'{APP_ROOT}[data-test-script-state="notRunning"]'
                           f'[data-test-connection-state="CONNECTED"]',
                           state="attached", timeout=timeout_ms)


def nav_link(page: Any, title: str, current: bool = False) -> Any:
    """The sidebar navigation link titled `title` (only while it is the current page)."""
    # The link's text also holds its icon's name ("home"), so match its label attribute.
    css = NAV_LINK + ('[aria-current="page"]' if current else "")
    label = title.replace("\\", "\\\\").replace('"', '\\"')
    return page.locator(css).filter(has=page.locator(f'span[label="{label}"]'))


def nav_titles(page: Any) -> list[str]:
    """The titles of the sidebar's navigation links, top to bottom."""
    return page.locator(f"{NAV_LINK} span[label]").evaluate_all(
        "els => els.map(e => e.getAttribute('label'))")


# Drawn: no element still waiting for its lazily loaded component (Suspense skeleton), none left
# over from the previous run, and every image loaded.
_DRAWN_JS = """() => {
  const root = document.querySelector('[data-testid="stApp"]');
  return !!root && !root.querySelector('[data-testid="stSkeleton"], [data-stale="true"]')
    && Array.from(root.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0);
}"""


def wait_drawn(page: Any, timeout_ms: float = 30_000) -> None:
    """Wait until what the last script run sent is on screen (components loaded, images too)."""
    page.wait_for_function(_DRAWN_JS, timeout=timeout_ms)


# A fresh server's first page imports torch, loads a run and analyses it: 10-15 s on an idle
# 2-core machine, and three to four times that while the suite's other worker trains or runs
# Ray beside it. A wait for the page, not a speed target (those are the benchmarks').
PAGE_LOAD_MS = 150_000


def open_page(page: Any, base_url: str, url_path: str, title: str,
              timeout_ms: float = PAGE_LOAD_MS) -> None:
    """Load `base_url/url_path`; wait until it is drawn and check it is the page `title`."""
    page.goto(f"{base_url}/{url_path}", wait_until="domcontentloaded", timeout=timeout_ms)
    wait_script_idle(page, timeout_ms)
    wait_drawn(page, timeout_ms)
    current = nav_link(page, title, current=True)
    try:
        current.wait_for(state="attached", timeout=5_000)
    except Exception as exc:  # playwright's TimeoutError; say what the user sees instead
        raise AppPageError(f"/{url_path} did not open the page {title!r}; "
                           f"the navigation shows {nav_titles(page)}") from exc


# Streamlit's frontend may draw a fast script run in one go, so its run-state attribute can skip
# `running` altogether. The exact signal is the server's `script_finished` message: this init
# script wraps the page's WebSocket and timestamps the top-level fields of each incoming
# ForwardMsg (protobuf), keeping `new_session` (field 4: a run starts) and `script_finished`
# (field 6, with its status: 0 done, 1 compile error, 2 stopped for a rerun, 3 fragment done).
_RUN_WATCHER_JS = """
(() => {
  if (window.__stRuns) return;
  window.__stRuns = [];
  const fields = (buf) => {
    const b = new Uint8Array(buf), out = [];
    let i = 0;
    const varint = () => {
      let x = 0, s = 0, c;
      do { c = b[i++]; x += (c & 0x7f) * 2 ** s; s += 7; } while ((c & 0x80) && i < b.length);
      return x;
    };
    while (i < b.length) {
      const tag = varint(), num = Math.floor(tag / 8), wire = tag & 7;
      if (wire === 0) out.push([num, varint()]);
      else if (wire === 2) { const n = varint(); out.push([num, null]); i += n; }
      else if (wire === 1) { i += 8; out.push([num, null]); }
      else if (wire === 5) { i += 4; out.push([num, null]); }
      else break;
    }
    return out;
  };
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (ev) => {
        const t = performance.now();
        const note = (buf) => {
          for (const [num, value] of fields(buf)) {
            if (num === 4) window.__stRuns.push([t, 'start', null]);
            if (num === 6) window.__stRuns.push([t, 'finished', value || 0]);
          }
        };
        if (ev.data instanceof ArrayBuffer) note(ev.data);
        else if (ev.data instanceof Blob) ev.data.arrayBuffer().then(note);
      });
    }
  };
})();
"""

_RUN_DONE_JS = """
([since, statuses]) => {
  if (!window.__stRuns) throw new Error('watch_script_runs(page) was not called before goto');
  const done = window.__stRuns.find(([t, kind, st]) => t >= since && kind === 'finished'
                                                       && statuses.includes(st));
  const root = document.querySelector('[data-testid="stApp"]');
  if (!done || !root || root.getAttribute('data-test-script-state') === 'running') return null;
  return (DRAWN)() ? done[0] : null;
}
""".replace("DRAWN", _DRAWN_JS)


def watch_script_runs(page: Any) -> None:
    """Make `wait_rerun` work in `page`: call once, before the page's first `goto`."""
    page.add_init_script(_RUN_WATCHER_JS)


def browser_now(page: Any) -> float:
    """The page's `performance.now()` in ms (the clock `wait_rerun` answers in)."""
    return float(page.evaluate("performance.now()"))


def wait_rerun(page: Any, since_ms: float, timeout_ms: float = 30_000,
               fragments: bool = True) -> float:
    """Wait until a script run finished after `since_ms` and the page has drawn it (`wait_drawn`).

    Counts full runs, and fragment runs too unless `fragments=False`. Returns when the server's
    `script_finished` arrived (browser clock, ms). Needs `watch_script_runs(page)`.
    """
    statuses = [0, 1, 3] if fragments else [0, 1]
    handle = page.wait_for_function(_RUN_DONE_JS, arg=[since_ms, statuses], timeout=timeout_ms)
    return float(handle.json_value())


def set_train_steps(page: Any, steps: int) -> None:
    """On the Train page: type `steps` into "Steps" and wait for the page to take it."""
    field = page.locator(MAIN).get_by_label("Steps", exact=True)
    since = browser_now(page)
    field.fill(str(steps))
    field.press("Enter")
    wait_rerun(page, since)
    if field.input_value() != str(steps):
        raise AppPageError(f"Steps shows {field.input_value()!r} after typing {steps}")


def click_nav(page: Any, title: str, timeout_ms: float = 30_000) -> None:
    """Click the sidebar link `title` and wait until that page's script run has been drawn."""
    since = browser_now(page)
    nav_link(page, title).click()
    wait_rerun(page, since, timeout_ms, fragments=False)
    nav_link(page, title, current=True).wait_for(state="attached", timeout=5_000)


# --- helpers for the AppTest page tests -------------------------------------------------------

APP = str(REPO_ROOT / "app_ui" / "navigation.py")  # the main script AppTest runs


@contextmanager
def private_runs(runs: Path) -> Iterator[Path]:
    """Make `runs` the app's runs folder ($SPARSE_LAB_RUNS) while the block runs; afterwards
    stop that folder's job manager and put the old setting back."""
    from sparse_models.training.runs import RUNS_ENV

    old = os.environ.get(RUNS_ENV)
    os.environ[RUNS_ENV] = str(runs)
    try:
        yield runs
    finally:
        from app_ui.jobs import _manager_for

        _manager_for(str(runs)).shutdown(wait=True)
        if old is None:
            os.environ.pop(RUNS_ENV, None)
        else:
            os.environ[RUNS_ENV] = old


def cli_train(runs: Path, model: str, name: str, settings: Iterable[str],
              init_from: Path | None = None) -> Path:
    """Train a run with the CLI, as a user would; returns its folder."""
    from sparse_models.cli import main

    args = ["train", model, "--out", str(runs), "--name", name, "--quiet"]
    if init_from is not None:
        args += ["--init-from", str(init_from)]
    for s in settings:
        args += ["--set", s]
    assert main(args) == 0
    return runs / name


def open_app(page: str | None = None, timeout: float = 60, **query: str) -> Any:
    """An AppTest of the whole app with `query` in its URL, switched to `page` (relative to the
    main script, e.g. "../pages/filters.py")."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=timeout)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at


def finish_jobs(runs: Path, timeout: float = 120) -> list:
    """Wait for every background job of the runs folder `runs`; their final records."""
    from app_ui.jobs import _manager_for

    manager = _manager_for(str(runs))
    return [manager.wait(j.id, timeout=timeout) for j in manager.jobs()]


def assert_no_error(at: Any) -> None:
    """The AppTest run shows neither an exception nor an error box."""
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def plotly_charts(at: Any) -> list[dict]:
    """Every Plotly chart of the AppTest run, as its JSON figure."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def plotly_array(v: Any) -> Any:
    """A Plotly JSON array as numpy: a list, or {"bdata": base64, "dtype", "shape"?} (plotly
    ≥ 6)."""
    import numpy as np

    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
        shape = v.get("shape")
        return a.reshape([int(n) for n in str(shape).split(",")]) if shape else a
    return np.asarray(v, dtype=float)


def chart_title(fig: dict) -> str:
    t = fig.get("layout", {}).get("title", {})
    return t.get("text", "") if isinstance(t, dict) else str(t or "")


def chart_titled(at: Any, starts: str) -> dict:
    """The first Plotly chart whose title starts with `starts` (fails naming the titles)."""
    found = [f for f in plotly_charts(at) if chart_title(f).startswith(starts)]
    assert found, f"no chart titled {starts!r}; have {[chart_title(f) for f in plotly_charts(at)]}"
    return found[0]


def png_bytes(a: Any) -> bytes:
    """An array of 0–255 values (grey, RGB or RGBA) as the bytes of a PNG file, as a user's
    upload would arrive."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(a).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
