"""CSV conversion import: a 100,000-row file, end to end, with `make run`'s worker.

The file names 100,000 clicks (one per contact, of the 1,000,000 the postback suite's
seeding makes) with a conversion id and a payout. The figure is rows per second from the
upload (checked and stored, as `POST /api/v1/conversions/import/` does) until every row's
conversion is decided by a Celery worker as `make run` starts it (prefork, concurrency 2),
which both stores the rows and decides them. Baselines, same run: the same rows as postbacks
(stored as the intake stores them, then decided by the same worker: what the import adds to
the postback path), and PostgreSQL's own `COPY` of the same file into a table, the least any
import of it can cost.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from bench.figures import Figure
from bench.server import bench_database, bench_environment, django_manage, python_module
from bench.suite_postbacks import SETTINGS, SLUG, _forget_queues, _postgres_url, _work_through

logger = logging.getLogger("bench")

DATABASE = "creditflow_bench_imports"
ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))


def run() -> list[Figure]:
    with bench_database(DATABASE) as database_url:
        env = bench_environment(database_url=database_url, DJANGO_SETTINGS_MODULE=SETTINGS)
        django_manage(env, "migrate", "--noinput")
        python_module(env, "bench.suite_postbacks", "seed-network")
        python_module(env, "bench.suite_postbacks", "seed-clicks", timeout=1800)
        with tempfile.TemporaryDirectory(prefix="bench-import-") as directory:
            csv_path = Path(directory) / "conversions.csv"
            python_module(env, "bench.suite_imports", "write-csv", str(csv_path))
            copy_seconds = _copy_seconds(database_url, csv_path)
            upload = json.loads(python_module(env, "bench.suite_imports", "upload", str(csv_path)))
            csv_path_rows = csv_path.read_text(encoding="utf-8").splitlines()[1:]
        worked = _work_through(env, database_url, ROWS, concurrency=2)
        with psycopg.connect(_postgres_url(database_url)) as connection:
            row = connection.execute(
                "SELECT count(*), count(*) FILTER (WHERE attributed) FROM attribution_conversion"
            ).fetchone()
            conversions, attributed = row if row else (0, 0)
        logger.info("import: %s, worker %s, %s conversions", upload, worked, conversions)
        if conversions != ROWS:
            raise RuntimeError(f"{conversions} conversions from {ROWS} rows: each must count once")
        as_postbacks, as_postbacks_cpu = _as_postbacks(env, database_url, csv_path_rows)
    seconds = upload["seconds"] + worked["wall"]
    return [
        Figure(
            name=f"CSV import, {ROWS:,} rows, upload to every conversion decided (make run worker)",
            value=ROWS / seconds,
            unit="rows/s",
            baseline=as_postbacks,
            baseline_name="the same rows as stored postbacks, decided by the same worker",
            target=">= 2,000 rows/s",
        ),
        Figure(
            name=f"CSV import, {ROWS:,} rows, against COPY of the same file into a table",
            value=ROWS / seconds,
            unit="rows/s",
            baseline=ROWS / copy_seconds,
            baseline_name="COPY of the same file into a table",
        ),
        Figure(
            name=f"CSV import, worker CPU seconds per 100,000 rows ({ROWS:,} rows)",
            value=worked["cpu"] * 100_000 / ROWS,
            unit="s",
            baseline=as_postbacks_cpu * 100_000 / ROWS,
            baseline_name="the same rows as stored postbacks, decided by the same worker",
        ),
        Figure(name="CSV import: conversions attributed", value=attributed, unit="conversions"),
    ]


def _as_postbacks(env: dict[str, str], database_url: str, rows: list[str]) -> tuple[float, float]:
    """Rows/s of the same rows stored as the intake stores postbacks (a query string each)
    and decided by the same worker, after the import's conversions are gone; and the
    worker's CPU seconds."""
    _forget_queues(env)
    with psycopg.connect(_postgres_url(database_url)) as connection:
        connection.execute(
            "TRUNCATE attribution_postback, attribution_conversion, attribution_conversionevent,"
            " attribution_conversionimport CASCADE"
        )
        network_id = connection.execute(
            "SELECT id FROM attribution_network WHERE slug = %s", [SLUG]
        ).fetchone()
        connection.execute(
            """
            INSERT INTO attribution_postback (network_id, received_at, method, query_string,
                body, content_type, headers, source_ip, status, reason, attempts)
            SELECT %s, now(), 'GET', 'click_id=' || r[1] || '&order_id=' || r[2] || '&payout='
                   || r[3], '', '', '{}', '127.0.0.1', 'received', '', 0
              FROM unnest(%s::text[]) AS line, string_to_array(line, ',') AS r
            """,
            [network_id[0] if network_id else 0, rows],
        )
        connection.execute("ANALYZE attribution_postback")
        connection.commit()
    started = time.perf_counter()
    python_module(env, "bench.suite_postbacks", "enqueue", "wake")
    worked = _work_through(env, database_url, len(rows), concurrency=2)
    seconds = time.perf_counter() - started
    logger.info("the same rows as postbacks: worker %s", worked)
    return len(rows) / seconds, worked["cpu"]


def _copy_seconds(database_url: str, csv_path: Path) -> float:
    with psycopg.connect(_postgres_url(database_url)) as connection:
        connection.execute(
            "CREATE TEMPORARY TABLE copied (click_id text, order_id text, payout text)"
        )
        started = time.perf_counter()
        with (
            connection.cursor().copy("COPY copied FROM STDIN WITH (FORMAT csv, HEADER)") as copy,
            csv_path.open("rb") as source,
        ):
            while block := source.read(1 << 16):
                copy.write(block)
        connection.commit()
        return time.perf_counter() - started


# --- child-process commands (Django configured with the bench environment) ----------


def _write_csv(path: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor, open(path, "w", encoding="utf-8") as out:
        cursor.execute(
            """
            SELECT click.click_id FROM tracking_click click
            JOIN tracking_message message ON message.id = click.message_id
            WHERE message.channel = 'sms' AND click.click_id LIKE '%%-3'
            ORDER BY click.id LIMIT %s
            """,
            [ROWS],
        )
        out.write("click_id,order_id,payout\n")
        for number, (click_id,) in enumerate(cursor.fetchall()):
            out.write(f"{click_id},IMP{number},12.50\n")


def _upload(path: str) -> None:
    from attribution.services.imports import conversion_import_create

    data = Path(path).read_bytes()
    started = time.perf_counter()
    conversion_import = conversion_import_create(network_slug=SLUG, data=data)
    seconds = time.perf_counter() - started
    sys.stdout.write(
        json.dumps({"seconds": seconds, "import_id": conversion_import.pk, "bytes": len(data)})
    )


def main(argv: list[str]) -> None:
    import django

    django.setup()
    {"write-csv": _write_csv, "upload": _upload}[argv[0]](argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
