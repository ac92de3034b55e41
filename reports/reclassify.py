"""Re-classifying stored clicks for a date range, with conversions and rollups following.

Run on a worker (`reports.clicks_reclassify`, enqueued by `manage.py reclassify_clicks`
or the clicks admin): tracking classifies the range's clicks again with today's rules
and lists; the conversions of the contacts whose clicks changed, from the earliest
changed click on, are decided again (`conversions_redecide`: every change kept as a
`CreditChange`); the days of the changed clicks and conversions are recomputed. Safe to
run twice: a second run finds nothing to change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection

from attribution.services.recredit import conversions_redecide
from reports.services import rollup_recompute_day
from tracking.services.reclassify import RECLASSIFY_TASK, clicks_reclassify

logger = logging.getLogger(__name__)
TASK_NAME = RECLASSIFY_TASK


@dataclass(frozen=True)
class ClicksReclassified:
    checked: int
    changed: int
    conversions_changed: int
    days_recomputed: list[date]


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.REPORTS_TIME_ZONE))


def _conversions_of(*, contact_ids: set[int], since: datetime) -> list[int]:
    """Conversions credited to these contacts, or naming a click of theirs, from `since` on."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT v.id FROM attribution_conversion AS v"
            " LEFT JOIN tracking_click AS c ON c.click_id = v.click_id AND v.click_id <> ''"
            " WHERE v.occurred_at >= %(since)s"
            " AND (v.contact_id = ANY(%(contacts)s) OR c.contact_id = ANY(%(contacts)s))"
            " ORDER BY v.id",
            {"since": since, "contacts": sorted(contact_ids)},
        )
        return [row[0] for row in cursor.fetchall()]


def clicks_reclassify_range(
    *, start: date, end: date, requested_by_id: int | None = None
) -> ClicksReclassified:
    """Days `start` to `end` inclusive, in REPORTS_TIME_ZONE."""
    outcome = clicks_reclassify(
        start=_local_midnight(start), end=_local_midnight(end + timedelta(days=1))
    )
    days = set(outcome.days)
    conversions_changed = 0
    if outcome.contact_ids and outcome.earliest_changed is not None:
        conversion_ids = _conversions_of(
            contact_ids=outcome.contact_ids, since=outcome.earliest_changed
        )
        redecided = conversions_redecide(
            conversion_ids=conversion_ids,
            changed_by_id=requested_by_id,
            why=f"clicks of {start} to {end} re-classified",
        )
        conversions_changed = redecided.changed
        days.update(redecided.days)
    for day in sorted(days):
        rollup_recompute_day(day=day)
    logger.info(
        "clicks re-classified",
        extra={"checked": outcome.checked, "changed": outcome.changed, "days": len(days)},
    )
    return ClicksReclassified(
        checked=outcome.checked,
        changed=outcome.changed,
        conversions_changed=conversions_changed,
        days_recomputed=sorted(days),
    )
