"""Stored clicks classified again, after the rules or the lists changed.

The user agent (and method) of each click in the range is run through today's
`click_flags`. The prefetch header is not stored, so a click a header made a preview
(`header:...`) keeps that flag while its user agent still looks like a person's; so does
a scanner caught by behaviour (`behaviour:...`), which a user agent cannot overrule.
`is_duplicate` is left as stored. Returns what changed, for the caller to re-decide
conversions and recompute rollups (tracking knows neither).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from config.enqueue import task_enqueue_on_commit
from tracking.services.flags import click_flags

CHUNK = 5_000
_KEPT_WHEN_HUMAN = ("header:", "behaviour:")


@dataclass
class ReclassifyOutcome:
    checked: int = 0
    changed: int = 0
    contact_ids: set[int] = field(default_factory=set)
    earliest_changed: datetime | None = None
    # Days (in REPORTS_TIME_ZONE) of the clicks that changed.
    days: set[date] = field(default_factory=set)


_UPDATE_SQL = """
UPDATE tracking_click AS c
SET is_bot = new.is_bot, is_preview = new.is_preview, flag_reason = new.flag_reason
FROM unnest(%s::bigint[], %s::timestamptz[], %s::boolean[], %s::boolean[], %s::text[])
    AS new(id, occurred_at, is_bot, is_preview, flag_reason)
WHERE c.id = new.id AND c.occurred_at = new.occurred_at
"""


def clicks_reclassify(*, start: datetime, end: datetime) -> ReclassifyOutcome:
    """Clicks with `start <= occurred_at < end`, in chunks, each chunk its own transaction."""
    outcome = ReclassifyOutcome()
    zone = ZoneInfo(settings.REPORTS_TIME_ZONE)
    after: tuple[datetime, int] | None = None
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, occurred_at, user_agent, method, is_bot, is_preview, flag_reason,"
                " contact_id FROM tracking_click"
                " WHERE occurred_at >= %s AND occurred_at < %s"
                " AND (%s::timestamptz IS NULL OR (occurred_at, id) > (%s, %s))"
                " ORDER BY occurred_at, id LIMIT %s FOR UPDATE",
                [
                    start,
                    end,
                    after[0] if after else None,
                    after[0] if after else None,
                    after[1] if after else 0,
                    CHUNK,
                ],
            )
            rows = cursor.fetchall()
            if not rows:
                return outcome
            changes: list[tuple[int, datetime, bool, bool, str]] = []
            for pk, occurred_at, user_agent, method, is_bot, is_preview, reason, contact in rows:
                flags = click_flags(user_agent=user_agent, method=method, purpose="")
                if not (flags.is_bot or flags.is_preview) and reason.startswith(_KEPT_WHEN_HUMAN):
                    continue
                if (flags.is_bot, flags.is_preview, flags.reason) == (is_bot, is_preview, reason):
                    continue
                changes.append((pk, occurred_at, flags.is_bot, flags.is_preview, flags.reason))
                outcome.contact_ids.add(contact)
                if outcome.earliest_changed is None or occurred_at < outcome.earliest_changed:
                    outcome.earliest_changed = occurred_at
                outcome.days.add(timezone.localtime(occurred_at, zone).date())
            if changes:
                cursor.execute(_UPDATE_SQL, [list(column) for column in zip(*changes, strict=True)])
            outcome.checked += len(rows)
            outcome.changed += len(changes)
            after = (rows[-1][1], rows[-1][0])


# The worker task lives above tracking (reports re-decides conversions and rollups).
RECLASSIFY_TASK = "reports.clicks_reclassify"


def clicks_reclassify_request(*, start: date, end: date, requested_by_id: int | None) -> None:
    """Hand the days `start` to `end` (in REPORTS_TIME_ZONE) to a worker, after the commit."""
    task_enqueue_on_commit(
        name=RECLASSIFY_TASK, args=[start.isoformat(), end.isoformat(), requested_by_id]
    )
