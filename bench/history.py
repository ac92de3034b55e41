"""Growth: stored click history loaded fast, and the drain measured with and without it.

Used by the growth suite's child process (Django set up, bench database). History is
loaded a month at a time into a table of its own with one `INSERT ... SELECT` over
`generate_series`, then attached as that month's partition, so PostgreSQL builds its
indexes once, sorted, as a restore would; rows spread over the bench's messages and links.
Each history table carries a CHECK constraint of its month, so attaching it reads nothing
and `history_detached` can take the history out of the clicks table and put it back at once.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


def history_load(*, clicks: int, before: date, months: int = 12) -> None:
    """`clicks` clicks spread over the `months` whole months before the month of `before`."""
    from django.db import connection

    from tracking.models import Click
    from tracking.services.partitions import (
        TABLE,
        click_partitions_forget,
        month_after,
        partition_name,
    )

    per_month = clicks // months
    columns = [str(field.column) for field in Click._meta.concrete_fields]
    values = {
        "id": "nextval(pg_get_serial_sequence('tracking_click', 'id'))",
        "click_id": "'h' || %(tag)s || '-' || n",
        "occurred_at": "%(start)s::timestamptz + (n %% %(seconds)s) * interval '1 second'",
        "link_id": "l.id",
        "message_id": "m.id",
        "contact_id": "m.contact_id",
        "offer_id": "m.offer_id",
        "channel": "m.channel",
        "user_agent": "'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) ' || (n %% 7)",
        "referrer": "''",
        "ip": "('198.51.' || (n %% 250) || '.0')::inet",
        "method": "'GET'",
        "is_bot": "n %% 20 = 0",
        "is_preview": "n %% 33 = 0",
        "is_duplicate": "n %% 5 = 0",
        "is_imported": "false",
        "recorded_at": "%(start)s::timestamptz + (n %% %(seconds)s) * interval '1 second'",
        "flag_reason": "''",
    }
    missing = [column for column in columns if column not in values]
    if missing:
        raise RuntimeError(f"bench history: no value for tracking_click.{', '.join(missing)}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), count(*) FROM tracking_message")
        first_message, message_count = cursor.fetchone()
        for month in _history_months(before=before, months=months):
            name = partition_name(month)
            start = datetime.combine(month, datetime.min.time(), tzinfo=UTC)
            seconds = int(
                (
                    datetime.combine(month_after(month), datetime.min.time(), tzinfo=UTC) - start
                ).total_seconds()
            )
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
            cursor.execute(
                f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
                f" CONSTRAINT {name}_month CHECK ({_month_condition(month)}))"
            )
            cursor.execute(
                f"INSERT INTO {name} ({', '.join(columns)}) "  # noqa: S608 - our names
                f"SELECT {', '.join(values[column] for column in columns)} "
                "FROM generate_series(1, %(count)s) AS n "
                "JOIN tracking_message m ON m.id = %(first_message)s + (n %% %(messages)s) "
                "JOIN tracking_link l ON l.message_id = m.id",
                {
                    "tag": f"{month:%Y%m}",
                    "start": start,
                    "seconds": seconds,
                    "count": per_month,
                    "first_message": first_message,
                    "messages": message_count,
                },
            )
            _attach(cursor, month)
        cursor.execute("VACUUM ANALYZE tracking_click")
    click_partitions_forget()


def _history_months(*, before: date, months: int) -> list[date]:
    from tracking.services.partitions import month_add, month_of

    first = month_add(month_of(datetime.combine(before, datetime.min.time(), tzinfo=UTC)), -months)
    return [month_add(first, index) for index in range(months)]


def _month_bounds(month: date) -> tuple[str, str]:
    """The month's first instant and the next month's, as timestamptz literals (UTC)."""
    from tracking.services.partitions import month_after

    return f"'{month.isoformat()} 00:00:00+00'", f"'{month_after(month).isoformat()} 00:00:00+00'"


def _month_condition(month: date) -> str:
    start, end = _month_bounds(month)
    return f"occurred_at >= {start} AND occurred_at < {end}"


def _attach(cursor: Any, month: date) -> None:
    """Attach a history month: its CHECK constraint says every row is within the month's
    bounds, so PostgreSQL attaches it without reading it."""
    from tracking.services.partitions import TABLE, partition_name

    start, end = _month_bounds(month)
    cursor.execute(
        f"ALTER TABLE {TABLE} ATTACH PARTITION {partition_name(month)}"
        f" FOR VALUES FROM ({start}) TO ({end})"
    )


@contextmanager
def history_detached(*, before: date, months: int = 12) -> Iterator[None]:
    """Within the block, `tracking_click` without the history `history_load` gave it (the
    same months): its partitions detached, attached again after the block. The rest of
    the database stays as it is, so a drain measured inside and one measured outside
    differ in the history alone, not in what else the machine or the server holds."""
    from django.db import connection

    from tracking.services.partitions import TABLE, click_partitions_forget, partition_name

    history = _history_months(before=before, months=months)
    with connection.cursor() as cursor:
        for month in history:
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {partition_name(month)}")
    click_partitions_forget()
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for month in history:
                _attach(cursor, month)
        click_partitions_forget()


@dataclass(frozen=True)
class DrainMeasured:
    """One drain: clicks per second, and CPU per click of this process (the drainer) and of
    its PostgreSQL backend. The CPU says what the drain cost whatever else the machine did;
    the rate also counts the time spent waiting for a core."""

    per_second: float
    drainer_cpu_us: float
    backend_cpu_us: float

    @property
    def cpu_us(self) -> float:
        return self.drainer_cpu_us + self.backend_cpu_us


def drain_measure(*, clicks: int, day: date, seed: int) -> DrainMeasured:
    """`clicks_drain` of a spool file of `clicks` lines on `day`, measured."""
    import psutil
    from django.db import connection

    from tracking.services.clicks import SPOOL_LINE_VERSION, click_id_generate
    from tracking.services.drain import clicks_drain
    from tracking.services.spool import spool_host

    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM tracking_link ORDER BY id")
        links = [row[0] for row in cursor.fetchall()]
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp()
    lines = []
    for n in range(clicks):
        record: list[Any] = [
            SPOOL_LINE_VERSION,
            click_id_generate(start + n / 1000),
            # A thousand clicks a second, as a drainer under load sees them.
            start + n / 1000,
            links[(n * 7919 + seed) % len(links)],
            f"203.0.{n % 250}.0",
            f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/{n % 11}",
            "",
            "GET",
            "",
        ]
        lines.append(json.dumps(record, separators=(",", ":")))
    directory = Path(tempfile.mkdtemp(prefix="bench-drain-"))
    spool = directory / f"clicks-{spool_host()}-1-bench{seed}-000001.log"
    spool.write_text("\n".join(lines) + "\n")
    connection.ensure_connection()
    backend = psutil.Process(connection.connection.info.backend_pid)
    backend_before, drainer_before = sum(backend.cpu_times()[:2]), time.process_time()
    started = time.perf_counter()
    report = clicks_drain(directory=directory)
    elapsed = time.perf_counter() - started
    drainer_cpu, backend_cpu = (
        time.process_time() - drainer_before,
        sum(backend.cpu_times()[:2]) - backend_before,
    )
    if report.inserted != clicks:
        raise RuntimeError(f"drain stored {report.inserted} of {clicks} clicks")
    shutil.rmtree(directory, ignore_errors=True)
    return DrainMeasured(
        per_second=clicks / elapsed,
        drainer_cpu_us=drainer_cpu * 1e6 / clicks,
        backend_cpu_us=backend_cpu * 1e6 / clicks,
    )
