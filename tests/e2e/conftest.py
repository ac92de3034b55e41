"""A real app server and a real headless Chromium for browser tests.

Chromium is Debian's `chromium` package (`make browser` installs it), driven by
the `playwright` pip package through its executable path: `playwright install`
is never run, so the tests need no download at run time.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from playwright.sync_api import Browser, Page, sync_playwright

from harness.processes import free_port
from tests.processes import ManagedProcess

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
OPERATOR_USERNAME = "browser-operator"
OPERATOR_PASSWORD = "browser-operator-password"


@dataclass
class AppServer:
    url: str
    process: ManagedProcess

    def wait_ready(self, timeout: float = 60) -> str:
        self.process.wait_for("Quit the server with", timeout=timeout)
        return self.url


@pytest.fixture
def app_server(transactional_db) -> Iterator[AppServer]:
    """The project served over HTTP by a child process on this run's database.

    Started, not waited for: Chromium starts meanwhile; `wait_ready()` before use.
    `runserver --insecure` serves the admin's and the reports' static files from the
    apps themselves, as the project promises to work without a CDN.
    """
    port = free_port()
    process = ManagedProcess(
        [sys.executable, "manage.py", "runserver", "--noreload", "--insecure", f"127.0.0.1:{port}"]
    ).start()
    try:
        yield AppServer(url=f"http://127.0.0.1:{port}", process=process)
    finally:
        process.stop()
        _wait_for_other_sessions_to_end(timeout=10)


def _wait_for_other_sessions_to_end(*, timeout: float) -> None:
    """PostgreSQL ends a killed client's session a moment after the client is gone;
    the test database cannot be flushed or dropped before that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            (others,) = cursor.fetchone() or (0,)
        if not others:
            return
        time.sleep(0.1)


@pytest.fixture
def operator(transactional_db):
    return get_user_model().objects.create_user(
        username=OPERATOR_USERNAME,
        password=OPERATOR_PASSWORD,
        is_staff=True,
        is_superuser=True,
    )


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    # Playwright's sync API keeps an asyncio loop in this thread (in another greenlet);
    # Django sees it and would refuse ORM calls, though none of them runs on that loop.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not CHROMIUM.exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: run `make browser` (installs Debian's `chromium` "
            "with apt-get) or set CHROMIUM_PATH. The browser test cannot run without it."
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            # ORM calls made while Playwright's loop runs get connections of their own
            # (Django keeps them per async context): close them, or they outlive the test.
            connections.close_all()
            chromium.close()


@pytest.fixture
def logged_in_page(
    app_server: AppServer, operator, browser: Browser
) -> Iterator[Callable[[str], Page]]:
    """`open(path)`: a page of a logged-in operator, at `path` of the app server."""
    base_url = app_server.wait_ready()
    context = browser.new_context(
        accept_downloads=True, viewport={"width": 1400, "height": 1000}, base_url=base_url
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/admin/login/")
    page.fill("#id_username", OPERATOR_USERNAME)
    page.fill("#id_password", OPERATOR_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")

    def open_path(path: str) -> Page:
        page.goto(path)
        return page

    try:
        yield open_path
    finally:
        context.close()


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
