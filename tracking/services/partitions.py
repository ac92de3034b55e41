"""Monthly partitions of `tracking_click` (RANGE on `occurred_at`, UTC months).

Why: a click costs the same to store, and a day of rollups the same to recompute, whether
the table holds a month or years; old months go as a whole table (`DROP`), not row by row.

A click is never refused for want of a partition: the beat task creates months ahead,
`clicks_insert` creates the month of any click it has not seen a partition for (imports
of old history), and the DEFAULT partition takes whatever slips through. A month created
while the DEFAULT partition holds rows of it takes those rows along, in one transaction.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.db import connection, transaction

logger = logging.getLogger(__name__)

TABLE = "tracking_click"
DEFAULT_PARTITION = "tracking_click_default"
_PREFIX = "tracking_click_p"
_LOCK_KEY = zlib.crc32(b"creditflow.click_partitions")

# Months this process has seen a partition for; a month not in it costs one catalog query.
_known_months: set[date] = set()


@dataclass(frozen=True)
class ClickPartition:
    name: str
    month: date  # first day of the month (UTC)

    @property
    def end(self) -> date:
        return month_after(self.month)


def month_of(moment: datetime) -> date:
    utc = moment.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def month_after(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_add(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{_PREFIX}{month:%Y%m}"


def click_partitions() -> list[ClickPartition]:
    """The monthly partitions that exist, oldest first (the DEFAULT one is not listed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname FROM pg_inherits
            JOIN pg_class parent ON parent.oid = pg_inherits.inhparent
            JOIN pg_class child ON child.oid = pg_inherits.inhrelid
            WHERE parent.relname = %s AND child.relname LIKE %s
            ORDER BY child.relname
            """,
            [TABLE, _PREFIX + "%"],
        )
        names = [row[0] for row in cursor.fetchall()]
    return [
        ClickPartition(name=name, month=date(int(name[-6:-2]), int(name[-2:]), 1)) for name in names
    ]


def click_partitions_ensure(*, months: Iterable[date]) -> list[str]:
    """Create the partitions of these months that do not exist yet; returns the new ones."""
    wanted = set(months) - _known_months
    if not wanted:
        return []
    existing = {partition.month for partition in click_partitions()}
    _known_months.update(existing)
    created = []
    for month in sorted(wanted - existing):
        if _partition_create(month):
            created.append(partition_name(month))
        # Remembered once committed: inside a caller's transaction that rolls back, the
        # partition goes too, and the next batch must create it again.
        transaction.on_commit(lambda month=month: _known_months.add(month))  # type: ignore[misc]
    return created


def click_statistics_refresh() -> None:
    """ANALYZE the partitioned table itself. Autovacuum analyzes each partition as it fills
    but never the parent, whose statistics the planner uses wherever a query cannot be
    narrowed to some months (a click looked up by its id alone, a join on clicks): left
    alone they stay those of the day the table was first analyzed, however it grows."""
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {TABLE}")


def click_partitions_forget() -> None:
    """Tests that drop and create partitions make each process ask the catalog again."""
    _known_months.clear()


def _partition_create(month: date) -> bool:
    name = partition_name(month)
    start, end = month.isoformat(), month_after(month).isoformat()
    with transaction.atomic(), connection.cursor() as cursor:
        # One creator at a time, and the check again under the lock: another process may
        # have made this month meanwhile.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        cursor.execute("SELECT to_regclass(%s)", [name])
        row = cursor.fetchone()
        if row and row[0] is not None:
            return False
        # Built apart and attached, so that rows the DEFAULT partition took for this month
        # move along (ATTACH would refuse while the DEFAULT partition still holds them).
        cursor.execute(
            f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
        cursor.execute(
            f"""
            WITH moved AS (
                DELETE FROM {DEFAULT_PARTITION}
                WHERE occurred_at >= %(start)s::date AT TIME ZONE 'UTC'
                  AND occurred_at < %(end)s::date AT TIME ZONE 'UTC'
                RETURNING *
            )
            INSERT INTO {name} SELECT * FROM moved
            """,  # noqa: S608 (a name made from a date)
            {"start": start, "end": end},
        )
        moved = cursor.rowcount
        cursor.execute(
            f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES"
            f" FROM ('{start} 00:00:00+00') TO ('{end} 00:00:00+00')"
        )
    logger.info("created click partition %s (%d clicks moved from the default one)", name, moved)
    return True


def click_partitions_drop(*, months: Iterable[date]) -> list[str]:
    """Drop whole months of raw clicks. Callers decide which months are safe to drop."""
    dropped = []
    by_month = {partition.month: partition for partition in click_partitions()}
    for month in sorted(months):
        partition = by_month.get(month)
        if partition is None:
            continue
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {partition.name}")
            cursor.execute(f"DROP TABLE {partition.name}")
        _known_months.discard(month)
        dropped.append(partition.name)
        logger.info("dropped click partition %s", partition.name)
    return dropped


def click_partition_summary(*, month: date, time_zone: str) -> tuple[list[date], datetime | None]:
    """The days (in `time_zone`) that have clicks in this month's partition, and its latest
    `recorded_at` (None when it holds no click)."""
    name = partition_name(month)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [name])
        row = cursor.fetchone()
        if not row or row[0] is None:
            return [], None
        cursor.execute(
            f"SELECT DISTINCT (occurred_at AT TIME ZONE %s)::date FROM {name}",  # noqa: S608
            [time_zone],
        )
        days = sorted(day for (day,) in cursor.fetchall())
        cursor.execute(f"SELECT max(recorded_at) FROM {name}")  # noqa: S608
        latest = cursor.fetchone()
    return days, latest[0] if latest else None
