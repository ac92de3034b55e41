"""`BENCH_DB_SUFFIX=_<name> python -m bench.apps.drain_cost [--passes N] [--per-file K]
[--user-agent UA]`: CPU per stored click of `clicks_drain`, in process, without wrk.

Two live spool files (held with a shared lock, as two web processes hold theirs) get `K` new
lines each before every pass, as the sustained redirect feeds them (about 6,700 clicks a
second drained every 0.2 s: some 850 a file a pass); then one `clicks_drain` pass. Measured
over the passes: this process's CPU time and the CPU time of its PostgreSQL backend
(`/proc/<pg_backend_pid()>/stat`, same machine), so other databases' work on a shared server
does not count. Prints one JSON line. Runs itself in a fresh bench database (migrated and
seeded with `bench.apps.seed`), dropped afterwards.
"""

import argparse
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import django

DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


def _backend_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def main() -> None:
    if "--child" not in sys.argv:
        _in_bench_database()
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--passes", type=int, default=200)
    parser.add_argument("--per-file", type=int, default=850)
    parser.add_argument("--user-agent", default=DEFAULT_USER_AGENT)
    parser.add_argument("--ip", default="127.0.0.0")
    arguments = parser.parse_args()
    django.setup()
    from django.db import connection

    from tracking.models import Click, Link
    from tracking.services.clicks import SPOOL_LINE_VERSION, click_id_generate
    from tracking.services.drain import clicks_drain
    from tracking.services.spool import spool_host

    link_id = Link.objects.order_by("id").values_list("id", flat=True)[0]
    directory = Path(tempfile.mkdtemp(prefix="bench-drain-cost-"))
    descriptors = []
    for number in (1, 2):
        path = directory / f"clicks-{spool_host()}-{number}-cost-000001.log"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        fcntl.flock(descriptor, fcntl.LOCK_SH)
        descriptors.append(descriptor)

    def feed() -> None:
        for descriptor in descriptors:
            now = time.time()
            lines = [
                json.dumps(
                    [
                        SPOOL_LINE_VERSION,
                        click_id_generate(now),
                        now,
                        link_id,
                        arguments.ip,
                        arguments.user_agent,
                        "",
                        "GET",
                        "",
                    ],
                    separators=(",", ":"),
                )
                for _ in range(arguments.per_file)
            ]
            os.write(descriptor, ("\n".join(lines) + "\n").encode())

    # Warm up: partitions known, user agent classified, connection open, plans cached.
    for _ in range(5):
        feed()
        clicks_drain(directory=directory)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    stored_before = Click.objects.count()
    drainer_cpu = backend_cpu = wall = 0.0
    for _ in range(arguments.passes):
        feed()
        backend_before = _backend_cpu_seconds(backend)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        clicks_drain(directory=directory)
        drainer_cpu += time.process_time() - cpu_before
        wall += time.perf_counter() - wall_before
        backend_cpu += _backend_cpu_seconds(backend) - backend_before
    stored = Click.objects.count() - stored_before
    for descriptor in descriptors:
        os.close(descriptor)
    shutil.rmtree(directory, ignore_errors=True)
    expected = arguments.passes * arguments.per_file * len(descriptors)
    if stored != expected:
        sys.exit(f"stored {stored} clicks, expected {expected}")
    per_click = 1e6 / stored
    sys.stdout.write(
        json.dumps(
            {
                "clicks": stored,
                "drainer_us_per_click": round(drainer_cpu * per_click, 2),
                "backend_us_per_click": round(backend_cpu * per_click, 2),
                "total_us_per_click": round((drainer_cpu + backend_cpu) * per_click, 2),
                "wall_ms_per_pass": round(wall * 1000 / arguments.passes, 2),
            }
        )
        + "\n"
    )


def _in_bench_database() -> None:
    from bench.server import bench_database, bench_environment, django_manage, python_module

    with bench_database("creditflow_bench_drain_cost") as database_url:
        env = bench_environment(database_url=database_url)
        django_manage(env, "migrate", "--noinput")
        python_module(env, "bench.apps.seed")
        output = python_module(env, "bench.apps.drain_cost", "--child", *sys.argv[1:], timeout=1800)
    sys.stdout.write(output)


if __name__ == "__main__":
    main()
