"""A real HTTP receiver on 127.0.0.1, and workers allowed to deliver to it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.processes import ManagedProcess, celery_worker


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    """Records every POST; answers `status` (or 500 while `failures_left` > 0)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    failures_left: int = 0
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/creditflow"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    if receiver.failures_left > 0:
                        receiver.failures_left -= 1
                        status, answer = 500, b"temporarily broken"
                    else:
                        status, answer = receiver.status, b'{"ok":true}'
                    receiver.received.append(Received(dict(self.headers.items()), body, self.path))
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until `start()` again."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def successes(self) -> list[Received]:
        with self.lock:
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def private_hosts_allowed(settings, monkeypatch) -> None:
    """The receiver is on loopback: allowed here, and in the workers this test starts."""
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_HOSTS", "true")


@pytest.fixture
def short_retries(settings, monkeypatch) -> None:
    """A retry schedule of seconds instead of days, here and in the workers."""
    schedule = [1, 1, 2, 2, 2, 2, 2, 2, 2, 2]
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = schedule
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE_SECONDS", ",".join(map(str, schedule)))


@pytest.fixture
def webhook_worker(
    transactional_db, private_hosts_allowed, short_retries
) -> Iterator[ManagedProcess]:
    """A real worker (both queues) that may deliver to the loopback receiver."""
    process = celery_worker().start()
    yield process
    process.stop()


def wait_until(condition: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")
