"""Real-browser fixtures: Debian's Chromium through Playwright, the live
server, a logged-in page and a real `run_worker` process on the test database.

Run with `python -m pytest -m browser`; every test here is
marked `browser` and uses a transactional database, so the live server, the
worker process and the test itself all see committed rows.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from playwright.sync_api import Page, expect

# Playwright's sync API keeps an asyncio event loop running in the test thread,
# and Django then refuses every ORM call made from that thread (factories,
# assertions, flushing the database at teardown) with SynchronousOnlyOperation.
# The test thread never shares a connection with async code, so the guard only
# gets in the way here. Tests only: the application never sets this. It holds
# for the rest of the pytest process, as the session's Playwright loop does.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
REPO_ROOT = Path(settings.BASE_DIR)
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
PASSWORD = "correct horse battery"
# Other test sessions share this 2-core machine: wait generously for what the user would see.
UI_TIMEOUT_MS = 30_000
WORKER_STOP_SECONDS = 10


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": VIEWPORT}


@pytest.fixture(autouse=True)
def _generous_expect_timeout():
    expect.set_options(timeout=UI_TIMEOUT_MS)


# ---- the worker process ---------------------------------------------------------------


def _worker_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PLAYGROUND_LEASE_SECONDS"] = "5"
    env["PYTHONUNBUFFERED"] = "1"
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        credentials = quote(db["USER"] or "", safe="")
        if db.get("PASSWORD"):
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "127.0.0.1"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        env["DATABASE_URL"] = f"postgres://{credentials}@{host}{port}/{db['NAME']}"
    else:
        env["SQLITE_PATH"] = str(db["NAME"])
    return env


class Worker:
    """`manage.py run_worker` as a child process, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self):
        self.log = tempfile.NamedTemporaryFile(prefix="browser-worker-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--skip-checks"],
            cwd=REPO_ROOT,
            env=_worker_env(),
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def assert_alive(self) -> None:
        assert self.process.poll() is None, f"the worker exited ({self.process.returncode}):\n{self.output()}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=WORKER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        os.unlink(self.log.name)


@pytest.fixture(scope="package")
def _worker_process(django_db_setup):
    """One worker for the browser tests (a Django start-up costs seconds on these
    machines); the database is flushed between tests and the worker just polls.
    Package scope stops it before the rest of the suite runs, whose tests drain
    the task queue in-process and must not have it stolen by this worker."""
    worker = Worker()
    yield worker
    worker.stop()


@pytest.fixture
def worker(_worker_process):
    _worker_process.assert_alive()
    return _worker_process


def wait_for_run(run, worker: Worker, timeout: float = 60.0):
    """Block until the worker has finished `run` (polling the database); return it fresh."""
    deadline = time.monotonic() + timeout
    while True:
        run.refresh_from_db()
        if run.is_terminal:
            return run
        worker.assert_alive()
        assert time.monotonic() < deadline, f"run {run.pk} still {run.status}:\n{worker.output()}"
        time.sleep(0.1)


# ---- the browser side -------------------------------------------------------------------


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user(username="alice", password=PASSWORD)


@pytest.fixture
def site(live_server):
    """The live server's base URL, without a trailing slash."""
    return live_server.url.rstrip("/")


@pytest.fixture
def logged_in(page: Page, site, user) -> Page:
    """A page logged in through the real login form."""
    page.goto(f"{site}/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Datasets", level=1)).to_be_visible()
    return page


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
