"""`make bench`: run every suite, print one table, save it under bench/results/.

A suite is a module `bench/suite_<name>.py` with `run() -> list[Figure]`.
`python -m bench.run redirect postbacks` runs only the named suites; with `BENCH_SMOKE=1`
the suites that know it run at smoke sizes, and nothing is saved.
"""

from __future__ import annotations

import importlib
import logging
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

import psutil
import psycopg

from bench.figures import Figure, markdown_table, write_results

logger = logging.getLogger("bench")

# Before each suite the machine must settle: what the previous suite left behind (PostgreSQL
# writing back its dirty pages, the kernel flushing files, a process still exiting) otherwise
# lands on the next suite's figures. Quiet means below this share of the machine's CPU over a
# few seconds; after SETTLE_TIMEOUT the suite runs anyway, and the log says so.
SETTLE_BUSY_PERCENT = 10.0
SETTLE_TIMEOUT = 120.0


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    available = sorted(
        path.stem.removeprefix("suite_") for path in Path(__file__).parent.glob("suite_*.py")
    )
    chosen = argv or available
    # This run's Redis keys live under a prefix of its own (see bench.server.bench_redis_prefix).
    os.environ["BENCH_RUN_PREFIX"] = f"creditflow-bench:{secrets.token_hex(4)}:"
    figures: list[Figure] = []
    failed: list[str] = []
    for name in chosen:
        logger.info("suite %s", name)
        module = importlib.import_module(f"bench.suite_{name}")
        _settle()
        try:
            figures.extend(module.run())
        except Exception:
            # One broken suite must not throw away the others' figures (a full run takes
            # half an hour); it is named in the table and the run exits non-zero.
            logger.exception("suite %s failed", name)
            failed.append(name)
            figures.append(Figure(name=f"suite {name}: FAILED (see the log)", value=0, unit=""))
    sys.stdout.write(markdown_table(figures) + "\n")
    if os.environ.get("BENCH_SMOKE") == "1":
        # Smoke sizes check that the suites run end to end; their figures mean nothing.
        logger.info("smoke run: nothing saved")
    else:
        logger.info("saved %s", write_results(figures))
    _remove_bench_leftovers()
    if failed:
        sys.exit(f"suites failed: {', '.join(failed)}")


def _settle() -> None:
    """A checkpoint, a sync, then wait until the machine is quiet (see SETTLE_BUSY_PERCENT)."""
    from bench.server import server_admin_url

    started = time.monotonic()
    try:
        with psycopg.connect(server_admin_url(), autocommit=True) as connection:
            connection.execute("CHECKPOINT")
    except psycopg.Error as error:
        logger.warning("settle: no checkpoint (%s)", error)
    os.sync()
    busy = psutil.cpu_percent(interval=2)
    while busy >= SETTLE_BUSY_PERCENT and time.monotonic() - started < SETTLE_TIMEOUT:
        busy = psutil.cpu_percent(interval=2)
    logger.info(
        "settle: %.0f s, machine %.0f%% busy%s",
        time.monotonic() - started,
        busy,
        "" if busy < SETTLE_BUSY_PERCENT else " (not quiet: the suite runs anyway)",
    )


def _remove_bench_leftovers() -> None:
    """This run's suites ran under key prefixes `<BENCH_RUN_PREFIX><random>:`; their Redis keys
    and Prometheus files are of no use once the table is written. Another run's keys on the
    same Redis are left alone."""
    from bench.server import bench_environment
    from harness.services import redis_keys_delete

    redis_url = bench_environment(database_url="")["REDIS_URL"]
    redis_keys_delete(redis_url=redis_url, prefix=os.environ["BENCH_RUN_PREFIX"])
    metrics_root = Path(__file__).resolve().parent.parent / ".run" / "prometheus"
    for directory in metrics_root.glob("creditflow-bench-*"):
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:])
