"""The API served by a real granian process, as `make run` serves it, on this run's database."""

from __future__ import annotations

import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from tests import processes


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def staff_token(username: str = "api-staff") -> str:
    """A committed staff user's API token (the server process reads it from the database)."""
    user = get_user_model().objects.create_user(
        username=username, password="x" * 16, is_staff=True, is_superuser=True
    )
    return Token.objects.create(user=user).key


class ApiServer:
    """`debug=True` serves as `make run` does (config/settings/local.py: DEBUG on, where Django
    answers its own HTML pages instead of the handlers in config/exceptions.py)."""

    def __init__(
        self, *, workers: int = 1, debug: bool = False, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.workers = workers
        self.debug = debug
        self.env = env or {}
        self.process: processes.ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        granian = str(Path(sys.executable).parent / "granian")
        self.process = processes.ManagedProcess(
            [
                granian,
                "--interface",
                "wsgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--blocking-threads",
                "4",
                "config.wsgi:application",
            ],
            env={
                **processes.test_environment(),
                "DJANGO_DEBUG": "true" if self.debug else "false",
                **self.env,
            },
        ).start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2)  # noqa: S310
                return self
            except urllib.error.HTTPError:  # answered: up, whatever its health
                return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(self.process.output()[-3000:])

    def output(self) -> str:
        return self.process.output() if self.process is not None else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
