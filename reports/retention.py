"""Retention of raw clicks: whole months dropped once every day they fed is final.

Rollups and conversions keep their history: a conversion's credit (message, creative,
campaign, offer, contact) is stored on the conversion itself, and a day whose clicks were
dropped is never recomputed again (its rollup rows would lose their clicks), so its
rows stay as they were when the clicks went.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.utils import timezone

from reports.models import RollupWatermark
from tracking.services.partitions import (
    click_partition_summary,
    click_partitions,
    click_partitions_drop,
    month_add,
    month_of,
)

logger = logging.getLogger(__name__)

CLICKS_KEPT_FROM = "clicks_kept_from"
TOUCHED = "touched"
# As in reports.services: the every-minute scan looks back this far for late commits.
SCAN_OVERLAP = timedelta(minutes=5)


def clicks_kept_from() -> datetime | None:
    """The first instant whose clicks are all still stored (None: nothing was ever dropped)."""
    watermark = RollupWatermark.objects.filter(name=CLICKS_KEPT_FROM).first()
    return watermark.scanned_until if watermark else None


def rollup_day_has_dropped_clicks(*, day: date) -> bool:
    kept_from = clicks_kept_from()
    if kept_from is None:
        return False
    start = datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.REPORTS_TIME_ZONE))
    return start < kept_from


def clicks_retention_apply(*, months: int | None = None, now: datetime | None = None) -> list[str]:
    """Drop the click partitions older than `months` (default CLICK_RETENTION_MONTHS) whose
    days' rollups are final; returns the partitions dropped.

    Final: the every-minute rollup scan has passed the partition's last recorded click, and
    each day that has clicks in it has rollup rows computed after that click was recorded.
    A month that is not final yet waits for a later run. Clicks the DEFAULT partition holds
    are never dropped here.
    """
    months = settings.CLICK_RETENTION_MONTHS if months is None else months
    if months <= 0:
        return []
    if months < settings.CLICK_RETENTION_MIN_MONTHS:
        logger.warning(
            "click retention of %d months raised to %d", months, settings.CLICK_RETENTION_MIN_MONTHS
        )
        months = settings.CLICK_RETENTION_MIN_MONTHS
    horizon = month_add(month_of(now or timezone.now()), -months)
    touched = RollupWatermark.objects.filter(name=TOUCHED).first()
    if touched is None:
        return []
    final = []
    for partition in click_partitions():
        if partition.end > horizon:
            break
        if _is_final(partition.month, scanned_until=touched.scanned_until):
            final.append(partition)
        else:
            # Months go in order: a later month is not dropped before an earlier one.
            break
    if not final:
        return []
    kept_from = datetime.combine(final[-1].end, time.min, tzinfo=ZoneInfo("UTC"))
    # Written before the drop: a crash in between only stops recomputes of days whose
    # rows are final anyway.
    RollupWatermark.objects.update_or_create(
        name=CLICKS_KEPT_FROM, defaults={"scanned_until": kept_from}
    )
    return click_partitions_drop(months=[partition.month for partition in final])


def _is_final(month: date, *, scanned_until: datetime) -> bool:
    days, latest = click_partition_summary(month=month, time_zone=settings.REPORTS_TIME_ZONE)
    if latest is None:
        return True
    if latest + SCAN_OVERLAP >= scanned_until:
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT day, max(computed_at) FROM reports_dailytotal WHERE day = ANY(%s) GROUP BY day",
            [days],
        )
        computed = dict(cursor.fetchall())
    # `computed_at` is its transaction's start: one that started a little after a click
    # was recorded may not have seen it yet (the drainer commits after its `now()`).
    return all(day in computed and computed[day] > latest + SCAN_OVERLAP for day in days)
