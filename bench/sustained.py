"""The redirect with its drainer running, as `make run` runs it: what the click costs.

While wrk drives the redirect, a `drain_clicks` process moves the spool into PostgreSQL
(the way the Procfile runs it). Measured over the same window: the drainer's CPU time, the
CPU time of the PostgreSQL server's processes (psutil; on a machine shared with other
databases this counts their work too, so run it on a quiet machine), the clicks stored, and
how long probe clicks took to become visible in the table.
"""

from __future__ import annotations

import http.client
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import psycopg

from harness.processes import ManagedProcess


def postgres_cpu_times() -> dict[int, float]:
    """User + system CPU of every PostgreSQL server process (backends and helpers), by pid."""
    times: dict[int, float] = {}
    for process in psutil.process_iter(["name"]):
        try:
            if (process.info["name"] or "").startswith("postgres"):
                cpu = process.cpu_times()
                times[process.pid] = cpu.user + cpu.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return times


def postgres_cpu_seconds(before: dict[int, float]) -> float:
    """PostgreSQL CPU since `before`, process by process: a backend that exited meanwhile
    (another client's) drops out instead of taking its whole lifetime's CPU off the sum, and
    one that started counts from zero."""
    return sum(
        seconds - before.get(pid, 0.0)
        for pid, seconds in postgres_cpu_times().items()
        if seconds >= before.get(pid, 0.0)
    )


class DatabaseBackendsCpu:
    """CPU time of the PostgreSQL backends connected to one database, sampled four times a
    second while running: on a server other databases share, the figure that is only ours.
    A backend that starts meanwhile counts from zero; one that exits keeps its last sample
    (a quarter of a second of its CPU may be missed). Background processes (WAL writer,
    checkpointer) are not in it."""

    def __init__(self, database_url: str, interval: float = 0.25) -> None:
        self.database_url = database_url
        self.interval = interval
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DatabaseBackendsCpu:
        self._connection = psycopg.connect(self.database_url, autocommit=True)
        self._sample(first=True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> float:
        """Seconds of CPU since `start`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._sample(first=False)
        self._connection.close()
        return sum(self._last[pid] - self._first.get(pid, 0.0) for pid in self._last)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(first=False)

    def _sample(self, *, first: bool) -> None:
        pids = [
            row[0]
            for row in self._connection.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        ]
        for pid in pids:
            try:
                cpu = psutil.Process(pid).cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            seconds = cpu.user + cpu.system
            if first:
                self._first[pid] = seconds
            elif pid not in self._first and pid not in self._last:
                self._first[pid] = 0.0
            self._last[pid] = max(seconds, self._last.get(pid, 0.0))


def process_cpu_seconds(pid: int) -> float:
    process = psutil.Process(pid)
    times = process.cpu_times()
    total = times.user + times.system
    for child in process.children(recursive=True):
        try:
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
        except psutil.NoSuchProcess:
            continue
    return total


class Drainer:
    """`manage.py drain_clicks` over one spool directory, until stopped."""

    def __init__(self, env: dict[str, str], spool: Path) -> None:
        self.managed = ManagedProcess(
            [sys.executable, "manage.py", "drain_clicks", "--spool-dir", str(spool)],
            env=env,
            name="bench-drainer",
        ).start()

    def cpu_seconds(self) -> float:
        process = self.managed.process
        return process_cpu_seconds(process.pid) if process is not None else 0.0

    def stop(self) -> None:
        self.managed.stop()


def stored_clicks(database_url: str, link_id: int) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT count(*) FROM tracking_click WHERE link_id = %s", [link_id]
        ).fetchone()
    return int(row[0]) if row else 0


def wait_until_drained(database_url: str, spool: Path, timeout: float) -> float:
    """Seconds until the drainer's committed offset reaches the end of every spool file
    (raises after `timeout`).

    Polls the drainer's offset table (a row per file), not a count of the stored clicks:
    counting a link's clicks ten times a second read the whole growing table each time, and
    that CPU went into PostgreSQL's figure per stored click measured over the same window.
    """
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as connection:
        while True:
            sizes = {}
            for path in spool.glob("clicks-*.log"):
                try:
                    sizes[path.name] = path.stat().st_size
                except FileNotFoundError:
                    continue  # drained to its end and removed meanwhile
            offsets: dict[str, int] = dict(
                connection.execute(
                    'SELECT file_name, "offset" FROM tracking_clickspooloffset'
                ).fetchall()
            )
            if all(offsets.get(name, 0) >= size for name, size in sizes.items()):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"spool not drained after {timeout} s")
            time.sleep(0.1)


@dataclass
class VisibilityProbe:
    """Every `interval` seconds one redirect of its own; how long until its click is stored."""

    host: str
    port: int
    code: str
    database_url: str
    interval: float = 0.5
    delays: list[float] = field(default_factory=list)
    requests: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> VisibilityProbe:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as database:
            while not self._stop.wait(self.interval):
                connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
                connection.request("GET", f"/{self.code}")
                response = connection.getresponse()
                location = response.getheader("Location") or ""
                response.read()
                connection.close()
                answered = time.monotonic()
                self.requests += 1
                click_id = parse_qs(urlsplit(location).query).get("cid", [""])[0]
                if not click_id:
                    continue
                while time.monotonic() - answered < 30:
                    found = database.execute(
                        "SELECT 1 FROM tracking_click WHERE click_id = %s", [click_id]
                    ).fetchone()
                    if found:
                        self.delays.append(time.monotonic() - answered)
                        break
                    time.sleep(0.02)
                else:
                    self.delays.append(float("inf"))
