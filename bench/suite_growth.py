"""Growth: what a stored click costs later, at the rollups seed (1,000,000 clicks on one day)
and again after 20M clicks of history (`BENCH_HISTORY_CLICKS`) were added in the twelve
months before it: the drain rate and one day's rollup recompute, against the same figures
taken before the history was loaded. `BENCH_SMOKE=1` runs every step at small sizes.

Runs in a child process on its own database (`creditflow_bench_growth`, dropped, created
and migrated each run). Loading the history takes minutes: with `BENCH_GROWTH_KEEP=1` the
database is kept after the run, and the next run with it set measures again on it (the
figures taken before the history are read back from the database, not taken again).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.figures import Figure

logger = logging.getLogger("bench.growth")

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "creditflow_bench_growth" + os.environ.get("BENCH_DB_SUFFIX", "")
SMOKE = os.environ.get("BENCH_SMOKE") == "1"
KEEP = os.environ.get("BENCH_GROWTH_KEEP") == "1"
HISTORY_CLICKS = int(os.environ.get("BENCH_HISTORY_CLICKS", 120_000 if SMOKE else 20_000_000))
DRAIN_CLICKS = 5_000 if SMOKE else 50_000


def run() -> list[Figure]:
    from bench.suite_rollups import CLICKS

    result = subprocess.run(
        [sys.executable, "-m", "bench.suite_growth", "--child"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local", "DJANGO_DEBUG": "0"},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"growth bench failed:\n{result.stderr[-4000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    return [
        Figure(
            name=f"growth: drain rate with {HISTORY_CLICKS / 1e6:,.1f}M more clicks stored",
            value=measured["drain_large_per_s"],
            unit="clicks/s",
            baseline=measured["drain_small_per_s"],
            baseline_name=f"same drain at {CLICKS / 1e6:,.2f}M stored",
            target="ratio >= 0.9",
        ),
        Figure(
            name=f"growth: recompute 1 day with {HISTORY_CLICKS / 1e6:,.1f}M more clicks stored",
            value=measured["recompute_large_ms"],
            unit="ms",
            baseline=measured["recompute_small_ms"],
            baseline_name=f"same day at {CLICKS / 1e6:,.2f}M stored",
            target="ratio <= 1.2",
        ),
    ]


# --- the child process ---------------------------------------------------------------


def _database_url_for_bench() -> str:
    from config.env import env

    url = env.str("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/creditflow")
    return urlunsplit(urlsplit(url)._replace(path=f"/{BENCH_DATABASE}"))


def _admin(url: str, *statements: str) -> None:
    import psycopg

    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


def _kept_state(url: str) -> dict[str, Any] | None:
    """The state a kept database was left with, or None when there is none to reuse."""
    import psycopg

    try:
        with psycopg.connect(url) as connection:
            row = connection.execute("SELECT state FROM bench_growth_state").fetchone()
    except psycopg.Error:
        return None
    return json.loads(row[0]) if row else None


def _state_save(state: dict[str, Any]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_growth_state (state text)")
        cursor.execute("DELETE FROM bench_growth_state")
        cursor.execute("INSERT INTO bench_growth_state VALUES (%s)", [json.dumps(state)])


def _child() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    url = _database_url_for_bench()
    state = _kept_state(url) if KEEP else None
    if state is None or state.get("history_clicks") != HISTORY_CLICKS:
        state = None
        _admin(
            url,
            f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)',
            f'CREATE DATABASE "{BENCH_DATABASE}"',
        )
    os.environ["DATABASE_URL"] = url
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from bench.history import drain_rate, history_load
    from bench.suite_rollups import CLICKS, DAY, _seed, _timed
    from reports.services import rollup_recompute_day

    if state is None:
        call_command("migrate", verbosity=0, interactive=False)
        started = time.perf_counter()
        _seed()
        logger.info("seeded %s clicks in %.1fs", CLICKS, time.perf_counter() - started)
        # Warm-up: the drainer's first batch compiles the flag rules and fills its caches.
        drain_rate(clicks=min(DRAIN_CLICKS, 1000), day=DAY + timedelta(days=3), seed=3)
        state = {
            "recompute_small_ms": _timed(lambda: rollup_recompute_day(day=DAY)),
            "drain_small_per_s": drain_rate(
                clicks=DRAIN_CLICKS, day=DAY + timedelta(days=1), seed=1
            ),
            "runs": 0,
        }
        started = time.perf_counter()
        history_load(clicks=HISTORY_CLICKS, before=DAY)
        logger.info(
            "loaded %s clicks of history in %.1fs", HISTORY_CLICKS, time.perf_counter() - started
        )
        state["history_clicks"] = HISTORY_CLICKS
    else:
        logger.info("reusing the kept database %s", BENCH_DATABASE)
        drain_rate(clicks=min(DRAIN_CLICKS, 1000), day=DAY + timedelta(days=3), seed=3)
    measured = dict(state)
    measured["recompute_large_ms"] = _timed(lambda: rollup_recompute_day(day=DAY))
    # Each kept run drains a day of its own: the duplicate check sees no earlier run's clicks.
    measured["drain_large_per_s"] = drain_rate(
        clicks=DRAIN_CLICKS, day=DAY + timedelta(days=4 + state["runs"]), seed=2
    )
    logger.info("measured %s", measured)
    state["runs"] += 1
    _state_save(state)
    connection.close()
    if not KEEP:
        # The seeded database takes several GB: not left behind after the run.
        _admin(url, f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
    sys.stdout.write(json.dumps(measured) + "\n")


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child()
    else:
        from bench.figures import markdown_table, write_results

        figures = run()
        sys.stdout.write(markdown_table(figures) + "\n")
        write_results(figures)
