"""Browser-test fixtures: a real `uvicorn` server process on a free localhost port, over a SQLite
database in a temp directory that holds the 60 ingested record folders and the seeded
submissions (`browser_seed.py`), and Debian's Chromium driven by Playwright.

Configuration reaches the server only through GOLFCHECK_* environment variables, as in
production. The browser is launched from /usr/bin/chromium (never `playwright install`).
Every page a test opens records console errors and uncaught page errors; a test that leaves any
behind fails at teardown.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.support import browser_seed as seed_mod
from tests.support.browser import ConsoleWatch
from tests.support.paths import RECORDS, REPO
from api.core import migrate
from api.cli.service import ingest
from api.core.db import dispose_engines
from api.core.settings import Settings
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT = 60.0

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    env: dict[str, str]
    settings: Any
    seeded: seed_mod.Seeded
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("golfcheck-browser")
    env = {**os.environ,
           "GOLFCHECK_DATA_DIR": str(data),
           "GOLFCHECK_DATABASE_URL": f"sqlite:///{data / 'golfcheck.db'}",
           "GOLFCHECK_EMBEDDED_WORKER": "0",   # nothing evaluates: the seeded rows are the state
           "GOLFCHECK_LOG_JSON": "0",
           "GOLFCHECK_LOG_LEVEL": "WARNING"}
    settings = Settings.from_env(env)
    migrate.upgrade(settings)
    summary = ingest(settings, RECORDS)
    assert summary["folders"] == 60, summary
    seeded = seed_mod.seed(settings)
    dispose_engines()

    port = _free_port()
    log = data / "server.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:app_factory",
                                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                                cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)
    try:
        yield Server(url, env, settings, seeded, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (.ci/system-deps installs it)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


def _context(browser: Any, console: ConsoleWatch, **kw: Any) -> Any:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, **kw)
    ctx.on("page", console.attach)
    return ctx


@pytest.fixture
def context(browser: Any, console: ConsoleWatch) -> Iterator[Any]:
    ctx = _context(browser, console)
    try:
        yield ctx
    finally:
        ctx.close()
    assert not console.unexpected(), "console errors:\n" + "\n".join(console.unexpected())


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


@pytest.fixture
def nojs_page(browser: Any, console: ConsoleWatch) -> Iterator[Any]:
    ctx = _context(browser, console, java_script_enabled=False)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()
    assert not console.unexpected(), "console errors:\n" + "\n".join(console.unexpected())
