"""The redirect served by a real granian server (two worker processes), as in production."""

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import transaction

from attribution.models import Offer
from config.priority import AUTOGROUP_ENABLED
from harness.processes import free_port
from tests import processes
from tests.factories import LinkFactory
from tests.processes import ManagedProcess
from tracking.models import Click, Link
from tracking.services.link_cache import link_cache_invalidate

CHECK_SECONDS = 0.5


def make_link(**fields: Any) -> Link:
    return cast(Link, LinkFactory(**fields))


class Server:
    def __init__(self, *, check_seconds: float = CHECK_SECONDS) -> None:
        self.check_seconds = check_seconds
        self.port = free_port()
        self.spool_dir = Path(str(settings.CLICK_SPOOL_DIR))
        self.process: ManagedProcess | None = None

    def start(self, *, wait_until_serving: bool = True) -> None:
        granian = str(Path(sys.executable).parent / "granian")
        self.process = ManagedProcess(
            [
                granian,
                "--interface",
                "wsgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "2",
                "config.wsgi:application",
            ],
            env={
                **processes.test_environment(),
                "LINK_CACHE_CHECK_SECONDS": str(self.check_seconds),
            },
        )
        self.process.start()
        if not wait_until_serving:
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(self.process.output()[-3000:])

    def get(self, path: str, **headers: str) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", headers.pop("Host", f"127.0.0.1:{self.port}"))
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    def stop(self) -> None:
        """SIGTERM: the workers exit, so their spool files are finished."""
        if self.process is None:
            return
        child = self.process.process
        if child is not None and child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
            child.wait(timeout=30)
        self.process.stop()
        self.process = None


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker) -> Iterator[Server]:
    running = Server()
    running.start()
    yield running
    running.stop()


def drain(spool_dir: Path) -> None:
    call_command("drain_clicks", "--once", "--spool-dir", str(spool_dir))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_paused_offer_reaches_every_worker_within_the_check_interval(server):
    # given: both workers have the link cached
    link = make_link()
    for _ in range(6):
        assert server.get(f"/{link.code}").status == 302

    # when
    with transaction.atomic():
        offer = Offer.objects.get(pk=link.message.offer_id)
        offer.status = Offer.Status.PAUSED
        offer.save()
        link_cache_invalidate()
    paused_at = time.monotonic()
    while server.get(f"/{link.code}").status != 410 and time.monotonic() - paused_at < 3:
        time.sleep(0.02)
    first_410 = time.monotonic() - paused_at
    time.sleep(CHECK_SECONDS)

    # then
    assert first_410 < CHECK_SECONDS + 1.0
    assert {server.get(f"/{link.code}").status for _ in range(6)} == {410}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path",
    ["//evil.example", "/%2F%2Fevil.example", "/..%2F..%2Fetc%2Fpasswd", "/" + "x" * 3000],
)
def test_paths_that_try_to_escape_are_404_on_the_wire(server, path):
    # when
    response = server.get(path)

    # then
    assert response.status == 404
    assert response.getheader("Location") is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_foreign_host_header_is_refused(server):
    # given
    link = make_link()

    # when
    response = server.get(f"/{link.code}", Host="evil.example")

    # then
    assert response.status == 400
    assert response.getheader("Location") is None


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_hundred_people_clicking_at_once_make_a_hundred_clicks(server):
    # given
    link = make_link()
    start = threading.Barrier(100)

    def one_click(_: int) -> tuple[int, str]:
        start.wait(timeout=30)
        response = server.get(f"/{link.code}")
        return response.status, response.getheader("Location") or ""

    # when
    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(pool.map(one_click, range(100)))
    server.stop()  # the workers exit: their spool files are complete
    drain(server.spool_dir)
    server.start()

    # then
    assert [status for status, _ in answers] == [302] * 100
    handed_out = {parse_qs(urlsplit(location).query)["cid"][0] for _, location in answers}
    stored = list(Click.objects.filter(link=link).values_list("click_id", flat=True))
    assert len(handed_out) == 100
    assert sorted(stored) == sorted(handed_out)


def _workers(server: Server) -> list[psutil.Process]:
    assert server.process is not None and server.process.process is not None
    main = psutil.Process(server.process.process.pid)
    deadline = time.monotonic() + 30
    while len(workers := main.children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    return workers


def _server_with_workers_loading() -> tuple[
    ManagedProcess, list[psutil.Process], subprocess.Popen[Any]
]:
    """A started server's process, its two forked workers and its main process; the workers
    past the first milliseconds after the fork (granian's own set-up) and into the app's
    load, which takes a second or more."""
    server = Server()
    server.start(wait_until_serving=False)
    workers = _workers(server)
    assert len(workers) == 2
    assert server.process is not None and server.process.process is not None
    time.sleep(0.3)
    return server.process, workers, server.process.process


def _autogroup(pid: int) -> str:
    # "/autogroup-123 nice 0": the scheduling group the kernel put the process in
    return Path(f"/proc/{pid}/autogroup").read_text().split()[0]


def _autogroup_enabled() -> bool:
    return AUTOGROUP_ENABLED.read_text().strip() == "1"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_each_web_worker_is_scheduled_apart_from_the_others():
    # given: the server started in a session of its own, as honcho starts it
    link = make_link()
    server = Server()
    server.start()
    try:
        # when
        assert server.get(f"/{link.code}").status == 302
        workers = _workers(server)
        assert server.process is not None and server.process.process is not None
        main = server.process.process.pid
        # One worker answered; the other may still be loading the app (and leaves the
        # server's session only then).
        deadline = time.monotonic() + 30
        while (
            _autogroup_enabled()
            and any(os.getsid(worker.pid) != worker.pid for worker in workers)
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
        sessions = {worker.pid: os.getsid(worker.pid) for worker in workers}
        groups = {_autogroup(worker.pid) for worker in workers} | {_autogroup(main)}
    finally:
        server.stop()

    # then: where Linux shares the CPU out by session first, each worker leads a session
    # of its own (one busy PostgreSQL backend weighs as much as one worker, not as the whole
    # web), and each is a scheduling group of its own; elsewhere they stay in the server's
    assert len(workers) == 2
    if _autogroup_enabled():
        assert sessions == {worker.pid: worker.pid for worker in workers}
        assert len(groups) == 3
    else:
        assert set(sessions.values()) == {main}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_server_asked_to_stop_while_its_workers_load_the_app_stops():
    # given: a server whose two workers are forked and still loading Django, not serving yet
    managed, workers, main = _server_with_workers_loading()

    # when: it is asked to stop, as by Ctrl-C in `make run`'s first seconds
    main.send_signal(signal.SIGTERM)

    # then: its workers stop, and with them the server
    with contextlib.suppress(subprocess.TimeoutExpired):
        main.wait(timeout=20)
    stopped = main.poll() is not None
    managed.stop()
    _gone, alive = psutil.wait_procs(workers, timeout=20)
    assert stopped
    assert alive == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_web_workers_do_not_outlive_a_killed_server():
    # given: a running server whose workers left its session (its process group's signals
    # no longer reach them)
    server = Server()
    server.start()
    workers = _workers(server)
    assert len(workers) == 2
    assert server.process is not None and server.process.process is not None

    # when: its main process is killed outright, with no chance to stop them
    os.kill(server.process.process.pid, signal.SIGKILL)
    server.process.process.wait(timeout=30)

    # then: each worker sees its parent gone and stops, freeing the port
    gone, alive = psutil.wait_procs(workers, timeout=20)
    server.process.stop()
    assert alive == []
    assert len(gone) == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_web_workers_still_loading_the_app_do_not_outlive_a_killed_server():
    # given: a server whose two workers are forked and still loading Django, not serving yet
    managed, workers, main = _server_with_workers_loading()

    # when: its main process is killed outright before they finish loading (they look for
    # their parent, and leave its session, only at the end of the load)
    os.kill(main.pid, signal.SIGKILL)
    main.wait(timeout=30)

    # then: each worker finds its parent gone once loaded, and stops
    gone, alive = psutil.wait_procs(workers, timeout=30)
    for stray in alive:
        stray.kill()
    managed.stop()
    assert alive == []
    assert len(gone) == 2
