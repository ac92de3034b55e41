"""Real processes for tests: a Celery worker, beat, or any manage.py command,
started against this run's test database and Redis prefix, killed at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def test_environment() -> dict[str, str]:
    """The environment a child process needs to see what this test sees."""
    database = settings.DATABASES["default"]
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    env["CREDITFLOW_TEST_RUN"] = os.environ["CREDITFLOW_TEST_RUN"]
    host = database.get("HOST") or ""
    from urllib.parse import quote

    env["DATABASE_URL"] = (
        f"postgres://{database.get('USER') or 'postgres'}"
        f"{':' + quote(database['PASSWORD'], safe='') if database.get('PASSWORD') else ''}"
        f"@{quote(host, safe='')}{':' + str(database['PORT']) if database.get('PORT') else ''}"
        f"/{connection.settings_dict['NAME']}"
    )
    env["REDIS_URL"] = settings.REDIS_URL
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ManagedProcess:
    """A child process whose output goes to a file we can wait on and show on failure."""

    def __init__(
        self, args: list[str], *, ready_text: str | None = None, env: dict[str, str] | None = None
    ):
        self.args = args
        self.ready_text = ready_text
        self.env = env or test_environment()
        self.log: IO[str] = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w+", prefix="creditflow-proc-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> ManagedProcess:
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.ready_text:
            self.wait_for(self.ready_text, timeout=timeout)
        return self

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.args} exited early:\n{self.output()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.args} never printed {text!r}:\n{self.output()[-4000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a prefork worker has children)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


def celery_worker(*extra: str) -> ManagedProcess:
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
    )


def manage(*args: str, ready_text: str | None = None) -> ManagedProcess:
    return ManagedProcess([sys.executable, "manage.py", *args], ready_text=ready_text)
