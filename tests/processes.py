"""Real processes for tests: a Celery worker, beat, or any manage.py command,
started against this run's test database and Redis prefix, killed at the end."""

from __future__ import annotations

import os
import sys
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from harness.processes import ROOT, free_port
from harness.processes import ManagedProcess as BaseManagedProcess

__all__ = ["ROOT", "ManagedProcess", "celery_worker", "free_port", "manage", "test_environment"]


def test_environment() -> dict[str, str]:
    """The environment a child process needs to see what this test sees."""
    database = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    env["CREDITFLOW_TEST_RUN"] = os.environ["CREDITFLOW_TEST_RUN"]
    host = database.get("HOST") or ""
    env["DATABASE_URL"] = (
        f"postgres://{database.get('USER') or 'postgres'}"
        f"{':' + quote(database['PASSWORD'], safe='') if database.get('PASSWORD') else ''}"
        f"@{quote(host, safe='')}{':' + str(database['PORT']) if database.get('PORT') else ''}"
        f"/{connection.settings_dict['NAME']}"
    )
    env["REDIS_URL"] = settings.REDIS_URL
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ManagedProcess(BaseManagedProcess):
    """`harness.processes.ManagedProcess`, in this run's test database and Redis prefix
    unless told otherwise."""

    def __init__(
        self, args: list[str], *, ready_text: str | None = None, env: dict[str, str] | None = None
    ) -> None:
        super().__init__(args, env=env or test_environment(), ready_text=ready_text)


def celery_worker(*extra: str, env: dict[str, str] | None = None) -> ManagedProcess:
    """A worker of this run; `env` adds to (or overrides) `test_environment()`."""
    return ManagedProcess(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config.celery_app",
            "worker",
            "--loglevel",
            "INFO",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            *extra,
        ],
        ready_text="ready.",
        env={**test_environment(), **(env or {})},
    )


def manage(*args: str, ready_text: str | None = None) -> ManagedProcess:
    return ManagedProcess([sys.executable, "manage.py", *args], ready_text=ready_text)
