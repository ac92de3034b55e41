"""Helpers for load runs: a bench database, a granian server, and wrk.

Any suite can use them:

    with bench_database() as database_url:
        env = bench_environment(database_url=database_url)
        django_manage(env, "migrate", "--noinput")
        with GranianServer(env=env) as server:
            result = run_wrk(server.url("/healthz"))

The server runs the production settings module (through `bench.apps.settings`,
which only adds the bench URLs), with a random secret key and no HTTPS redirect.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.processes import ROOT as HARNESS_ROOT
from harness.processes import ManagedProcess, free_port

logger = logging.getLogger("bench")

ROOT = HARNESS_ROOT
BENCH_DATABASE = "creditflow_bench"
SETTINGS_MODULE = "bench.apps.settings"


# --- environment -------------------------------------------------------------------


def _services() -> dict[str, str]:
    """DATABASE_URL / REDIS_URL as `make` found them (.run/services.env), env wins."""
    found: dict[str, str] = {}
    services_file = ROOT / ".run" / "services.env"
    if services_file.exists():
        for line in services_file.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, value = line.split("=", 1)
                found[key.strip()] = value.strip()
    for key in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(key):
            found[key] = os.environ[key]
    return found


def _database_url_with_name(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


def bench_database_name(name: str) -> str:
    """`name` with `BENCH_DB_SUFFIX` appended, so two bench runs can share a server."""
    return name + os.environ.get("BENCH_DB_SUFFIX", "")


def kept_state(database_url: str, table: str) -> dict[str, Any] | None:
    """The figures a kept bench database was left with (in `table`, by `kept_state_save`),
    or None when there is none to reuse: no database, no table, no row."""
    import psycopg

    try:
        with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as db:
            row = db.execute(f"SELECT state FROM {table}").fetchone()  # noqa: S608
    except psycopg.Error:
        return None
    return json.loads(row[0]) if row else None


def kept_state_save(database_url: str, table: str, state: dict[str, Any]) -> None:
    """Keep `state` in `table` of the bench database, replacing what was there."""
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as db:
        db.execute(f"CREATE TABLE IF NOT EXISTS {table} (state text)")
        db.execute(f"DELETE FROM {table}")  # noqa: S608
        db.execute(f"INSERT INTO {table} VALUES (%s)", [json.dumps(state)])  # noqa: S608


def server_admin_url() -> str:
    """The `postgres` database of the server the dev database is on (psycopg's spelling)."""
    server_url = _services().get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creditflow")
    return _database_url_with_name(server_url, "postgres").replace(
        "postgres://", "postgresql://", 1
    )


@contextmanager
def bench_database(name: str = BENCH_DATABASE) -> Iterator[str]:
    """A fresh database on the same server as the dev one; dropped again afterwards."""
    import psycopg

    name = bench_database_name(name)
    server_url = _services().get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creditflow")
    admin_url = server_admin_url()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url_with_name(server_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_redis_prefix() -> str:
    """A fresh Redis key prefix under this bench run's own (`BENCH_RUN_PREFIX`, set by
    `bench.run`), so a run's cleanup never deletes another run's queues on a shared Redis."""
    run_prefix = os.environ.get("BENCH_RUN_PREFIX", "creditflow-bench:")
    return f"{run_prefix}{secrets.token_hex(4)}:"


def bench_environment(*, database_url: str, **extra: str) -> dict[str, str]:
    services = _services()
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url,
            "REDIS_URL": services.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            # Our own key space on the shared Redis; nothing of anybody else is touched.
            "REDIS_KEY_PREFIX": bench_redis_prefix(),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def django_manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    completed = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{completed.stderr[-4000:]}")
    return completed.stdout


def python_module(env: dict[str, str], module: str, *args: str, timeout: float = 600) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"python -m {module} failed:\n{completed.stderr[-4000:]}")
    return completed.stdout


# --- server --------------------------------------------------------------------------


def procfile_option(process: str, name: str) -> int:
    """A whole-number option on the Procfile's `<process>:` line (what `make run` runs),
    so the bench measures the processes as they run."""
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{process}:"):
            arguments = shlex.split(line.removeprefix(f"{process}:"))
            if name in arguments:
                return int(arguments[arguments.index(name) + 1])
    raise ValueError(f"no {name} on the Procfile's {process} line")


@dataclass
class GranianServer:
    """A WSGI app under granian on a free port; a context manager."""

    env: dict[str, str]
    app: str = "config.wsgi:application"
    # As in the Procfile. Each blocking thread may hold a PostgreSQL connection; more
    # threads than that only contend for the GIL and lengthen the p99.
    workers: int = field(default_factory=lambda: procfile_option("web", "--workers"))
    blocking_threads: int = field(
        default_factory=lambda: procfile_option("web", "--blocking-threads")
    )
    ready_path: str = "/healthz"
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    managed: ManagedProcess | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.managed.process if self.managed is not None else None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self, timeout: float = 60) -> GranianServer:
        self.port = self.port or free_port()
        granian = str(Path(sys.executable).parent / "granian")
        self.managed = managed = ManagedProcess(
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
                str(self.blocking_threads),
                "--no-access-log",
                "--log-level",
                "warning",
                *self.extra_args,
                self.app,
            ],
            env=self.env,
            name="bench-granian",
        ).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if managed.exited():
                raise RuntimeError(f"granian exited early:\n{self.output()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url(self.ready_path), timeout=2):  # noqa: S310
                    return self
            except urllib.error.HTTPError:
                return self  # any HTTP answer means the app is up
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise TimeoutError(f"granian did not answer on {self.ready_path}")

    def output(self) -> str:
        return self.managed.output() if self.managed is not None else ""

    def stop(self) -> None:
        if self.managed is not None:
            self.managed.stop()

    def __enter__(self) -> GranianServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# --- wrk -------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    logger.info("wrk not found: installing it with apt-get")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is needed: apt-get install -y wrk")
    return found


# Counts answers by status in every wrk thread and prints the sum at the end.
STATUS_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %d: %d\\n", status, count))
  end
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx_3xx: int
    socket_errors: int
    statuses: dict[int, int]
    output: str


def wrk_best(results: list[WrkResult]) -> WrkResult:
    """The round with the highest rate: of rounds alternating with their baseline's, the
    one least slowed by other work on the machine."""
    return max(results, key=lambda result: result.requests_per_second)


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency_ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    if not match:
        raise ValueError(f"no {percentile}% latency in wrk output:\n{text}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(text: str) -> WrkResult:
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", text)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not total or not rate:
        raise ValueError(f"unexpected wrk output:\n{text}")
    seconds = float(total.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[total.group(3)]
    non_ok = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    statuses = {
        int(status): int(count)
        for status, count in re.findall(r"^status (\d+): (\d+)$", text, re.M)
    }
    return WrkResult(
        requests=int(total.group(1)),
        seconds=seconds,
        requests_per_second=float(rate.group(1)),
        p50_ms=_latency_ms(text, "50"),
        p99_ms=_latency_ms(text, "99"),
        non_2xx_3xx=int(non_ok.group(1)) if non_ok else 0,
        socket_errors=sum(int(value) for value in errors.groups()) if errors else 0,
        statuses=statuses,
        output=text,
    )


def run_wrk(
    url: str,
    *,
    threads: int = 2,
    connections: int = 32,
    duration: str = "8s",
    count_statuses: bool = False,
    extra_args: list[str] | None = None,
) -> WrkResult:
    """`wrk -t2 -c32 -d8s --latency url`; with `count_statuses`, answers counted by status
    (a Lua callback per response: slower, so only for checks, not for the rate)."""
    args = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}",
        "--latency",
        "--timeout",
        "10s",
        *(extra_args or []),
    ]
    script_file = None
    if count_statuses:
        script_file = tempfile.NamedTemporaryFile(  # noqa: SIM115
            "w", suffix=".lua", delete=False
        )
        script_file.write(STATUS_SCRIPT)
        script_file.close()
        args += ["-s", script_file.name]
    try:
        completed = subprocess.run(
            [*args, url], capture_output=True, text=True, timeout=600, check=True
        )
    finally:
        if script_file is not None:
            Path(script_file.name).unlink(missing_ok=True)
    return parse_wrk(completed.stdout)
