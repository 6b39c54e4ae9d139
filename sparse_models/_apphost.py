"""Run the Streamlit app on a loopback port and drive it with headless Chromium.

Shared by the real-browser test (`tests/app/test_browser.py`) and the app benchmark
(`sparse_models/bench_app.py`). The server is `python -m streamlit run app.py` in its own process
group, so stopping it never leaves a process behind; its output goes to a log file whose tail is
quoted when something fails. Nothing here imports streamlit; playwright is imported only by the
browser helpers.

How the helpers know a page is done: Streamlit marks its root element
`[data-testid="stApp"]` with `data-test-script-state` = `running` while a script run is in flight
and `notRunning` when it has finished (fragment reruns included).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; Playwright cannot fetch its own here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LOOPBACK = "127.0.0.1"

APP_ROOT = '[data-testid="stApp"]'
EXCEPTION = '[data-testid="stException"]'
MAIN = '[data-testid="stMain"]'
SIDEBAR = '[data-testid="stSidebar"]'


class AppServerError(RuntimeError):
    """The server did not come up (the message ends with the tail of its log)."""


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
                "--server.fileWatcherType", "none",
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

    def stop(self, grace: float = 5.0) -> None:
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
        """Resident memory of the server and all its descendants, summed (Linux /proc)."""
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


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may contain spaces) start at the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def process_tree_rss(pid: int) -> int:
    """Sum of VmRSS (bytes) over `pid` and its descendants; processes gone meanwhile count 0."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        m = re.search(r"^VmRSS:\s+(\d+)\s+kB", status, re.MULTILINE)
        total += int(m.group(1)) * 1024 if m else 0
        todo.extend(_children(p))
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


def main_heading(page: Any, text: str) -> Any:
    """Locator of the heading in the main area (not the sidebar) whose text is `text`."""
    return page.locator(f'{MAIN} [data-testid="stHeading"]').filter(
        has_text=re.compile(rf"^\s*{re.escape(text)}\s*$"))


def open_page(page: Any, base_url: str, url_path: str, heading: str,
              timeout_ms: float = 60_000) -> None:
    """Load `base_url/url_path` and wait for its heading and for its script to finish."""
    page.goto(f"{base_url}/{url_path}", wait_until="domcontentloaded", timeout=timeout_ms)
    main_heading(page, heading).first.wait_for(state="visible", timeout=timeout_ms)
    wait_script_idle(page, timeout_ms)


# A MutationObserver that timestamps every change of the script-run state, so that a rerun which
# starts and ends between two polls is still seen (and timed with the browser's own clock).
_RECORDER_JS = """
() => {
  if (window.__stRuns) return;
  window.__stRuns = [];
  const attach = () => {
    const root = document.querySelector('[data-testid="stApp"]');
    if (!root) { requestAnimationFrame(attach); return; }
    new MutationObserver(() => {
      window.__stRuns.push([performance.now(), root.getAttribute('data-test-script-state')]);
    }).observe(root, {attributes: true, attributeFilter: ['data-test-script-state']});
  };
  attach();
}
"""

_RUN_DONE_JS = """
([since]) => {
  const root = document.querySelector('[data-testid="stApp"]');
  if (!root || root.getAttribute('data-test-script-state') !== 'notRunning') return null;
  const seen = (window.__stRuns || []).filter(([t]) => t >= since);
  const started = seen.findIndex(([, s]) => s === 'running');
  if (started < 0) return null;
  const done = seen.slice(started).find(([, s]) => s === 'notRunning');
  return done ? done[0] : null;
}
"""


def record_script_runs(page: Any) -> None:
    """Start timestamping script-run state changes in the page (idempotent per document)."""
    page.evaluate(_RECORDER_JS)


def browser_now(page: Any) -> float:
    """The page's `performance.now()` in ms (the clock `wait_rerun` answers in)."""
    return float(page.evaluate("performance.now()"))


def wait_rerun(page: Any, since_ms: float, timeout_ms: float = 30_000) -> float:
    """Wait for a script run that started after `since_ms` to finish; return its end (ms).

    Needs `record_script_runs(page)` first.
    """
    handle = page.wait_for_function(_RUN_DONE_JS, arg=[since_ms], timeout=timeout_ms)
    return float(handle.json_value())
