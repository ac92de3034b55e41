"""Child processes in their own session, their output in a file to wait on and show on failure."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from signal import SIGKILL, SIGTERM
from typing import IO, Self

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ManagedProcess:
    def __init__(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        name: str = "proc",
        ready_text: str | None = None,
    ) -> None:
        self.args = args
        self.env = env
        self.name = name
        self.ready_text = ready_text
        self.log: IO[str] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Self:
        """Start it, and when it has a `ready_text`, wait until it prints that."""
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w+", prefix=f"creditflow-{self.name}-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            # Its own process group: a prefork worker's children go down with it.
            start_new_session=True,
        )
        if self.ready_text:
            self.wait_for(self.ready_text, timeout=timeout)
        return self

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace") if self.log else ""

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.exited():
                raise RuntimeError(f"{self.args} exited early:\n{self.output()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{self.args} never printed {text!r}:\n{self.output()[-4000:]}")

    def signal(self, number: int) -> None:
        """Signal the whole process group, without waiting."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, number)

    def kill(self, sig: int = SIGKILL) -> None:
        """Signal the whole process group and wait until its leader is gone."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (SIGKILL if it lingers, or at once with `kill`), then drop the log."""
        if self.process is not None and self.process.poll() is None:
            self.signal(SIGKILL if kill else SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.log is not None:
            self.log.close()
            Path(self.log.name).unlink(missing_ok=True)
            self.log = None
