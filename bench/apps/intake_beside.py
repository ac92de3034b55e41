"""`BENCH_DB_SUFFIX=_<name> python -m bench.apps.intake_beside [--rounds N] [--variants A,B]`:
the postback suite's "intake, a worker deciding beside it" in interleaved rounds, with CPU.

Seeds the postback suite's database once (1,000,000 clicks), then for each round and each
variant (order alternating round by round): one granian server and one Celery worker as the
suite starts them, a backlog of 30,000 postbacks, the commit-only view, a backlog again, the
intake. Beside wrk's rate and p99: the CPU seconds over the measured 8 s of the web
(granian and its workers), of the worker (its processes) and of the bench database's
PostgreSQL backends, per request and per postback decided. One JSON line per run.

A variant is a name from `VARIANTS`: environment given to both the server and the worker.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any

import psutil

from bench import suite_postbacks as suite
from bench.server import (
    GranianServer,
    bench_database,
    bench_environment,
    django_manage,
    python_module,
)
from bench.sustained import DatabaseBackendsCpu, process_cpu_seconds

logger = logging.getLogger("bench")

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "nice0": {"WORKER_NICE": "0"},
    "nice5": {"WORKER_NICE": "5"},
    "nice10": {"WORKER_NICE": "10"},
    "nice19": {"WORKER_NICE": "19"},
}


def _one_variant(
    env: dict[str, str], database_url: str, click_id: str, variant: str
) -> list[dict[str, Any]]:
    env = {**env, **VARIANTS[variant]}
    worker = suite._worker(env)
    rows = []
    with GranianServer(env=env) as server:
        worker.start()
        try:
            for name, path in suite.beside_paths(click_id):
                python_module(
                    env, "bench.suite_postbacks", "seed-postbacks", str(suite.BESIDE_BACKLOG), name
                )
                suite._wait_until_deciding(env, worker, database_url)
                if server.process is None or worker.process is None:
                    raise RuntimeError("the server or the worker is not running")
                decided_before, started = suite._decided(database_url), time.monotonic()
                web0 = process_cpu_seconds(server.process.pid)
                worker0 = process_cpu_seconds(worker.process.pid)
                backends = DatabaseBackendsCpu(suite._postgres_url(database_url)).start()
                result = suite._measure(server, path, new_txid_as=f"{variant}-{name}-")
                web_cpu = process_cpu_seconds(server.process.pid) - web0
                worker_cpu = process_cpu_seconds(worker.process.pid) - worker0
                pg_cpu = backends.stop()
                seconds = time.monotonic() - started
                decided = suite._decided(database_url) - decided_before
                # wrk's warm-up (2 s) is inside the CPU span: count its requests too.
                requests = result.requests * (seconds / result.seconds)
                nice = psutil.Process(worker.process.pid).nice()
                row = {
                    "variant": variant,
                    "view": name,
                    "rps": round(result.requests_per_second, 1),
                    "p50": result.p50_ms,
                    "p99": result.p99_ms,
                    "worker_rate": round(decided / seconds, 1),
                    "worker_nice": nice,
                    "web_us_per_req": round(web_cpu / requests * 1e6, 1),
                    "worker_cpu_s": round(worker_cpu, 2),
                    "worker_us_per_decided": round(worker_cpu / decided * 1e6, 1)
                    if decided
                    else None,
                    "pg_cpu_s": round(pg_cpu, 2),
                    "span_s": round(seconds, 2),
                    "load": os.getloadavg()[0],
                }
                sys.stdout.write(json.dumps(row) + "\n")
                sys.stdout.flush()
                rows.append(row)
        finally:
            worker.stop()
    suite._forget_queues(env)
    return rows


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", default="nice0,nice10")
    arguments = parser.parse_args()
    variants = arguments.variants.split(",")
    with bench_database(suite.DATABASE) as database_url:
        env = bench_environment(database_url=database_url, DJANGO_SETTINGS_MODULE=suite.SETTINGS)
        django_manage(env, "migrate", "--noinput")
        python_module(env, "bench.suite_postbacks", "seed-network")
        python_module(env, "bench.suite_postbacks", "seed-clicks", timeout=1800)
        click_id = suite.a_person_click_id(database_url)
        for round_number in range(arguments.rounds):
            order = variants if round_number % 2 == 0 else variants[::-1]
            for variant in order:
                _one_variant(env, database_url, click_id, variant)


if __name__ == "__main__":
    main()
