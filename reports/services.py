"""Every write of the reports app: daily rollups recomputed from the raw tables.

A day is never incremented. `rollup_recompute_day` computes the day's rows again from one
set-based `SELECT ... GROUP BY GROUPING SETS` and makes the stored rows equal to them
(writing only the rows that differ: new, gone or changed), in one transaction, under a
transaction-scoped advisory lock on the day: running it twice gives the same rows, and two
runs at once wait for each other instead of double counting.

What counts where (days are days in `settings.REPORTS_TIME_ZONE`):

- a send on its `sent_at` day, under its message, creative, campaign, offer and the
  offer's network;
- a click on its `occurred_at` day, under its message and that message's creative,
  campaign, offer and the offer's network;
- a conversion on its `occurred_at` day. Credited to a message: under that message and
  the message's creative, campaign and offer. Unattributed (no message): under the offer
  the conversion names, if any, and always under the conversion's own network; it has no
  message, creative or campaign row. The network dimension always uses the conversion's
  own network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from attribution.models import Offer
from config.enqueue import task_enqueue_on_commit
from reports.models import Dimension, RollupJob, RollupWatermark
from reports.periods import dekad_start, month_end, month_start
from reports.retention import rollup_day_has_dropped_clicks
from reports.selectors import SUMMED

logger = logging.getLogger(__name__)

# First key of the two-int advisory lock: "rollup" days, apart from anyone else's locks.
ADVISORY_LOCK_NAMESPACE = 0x726F6C6C
WATERMARK_NAME = "touched"
# Rows committed by a transaction that started before our scan carry a timestamp older than
# the scan; looking back this far again each time picks them up (recomputing is idempotent).
WATERMARK_OVERLAP = timedelta(minutes=5)
# Beyond this, a job or a first scan is the nightly task's or the command's business.
FIRST_SCAN_LOOKBACK_DAYS = 3
# More touched days than this in one scan: the older ones are recomputed by a job.
TOUCHED_DAYS_PER_RUN = 10

# The day's bounds are parameters, not computed in the statement (a CTE's values are
# unknown when the statement is planned): with constants the planner reads only the
# partitions of tracking_click that hold the day, and estimates its rows from their
# statistics, however many months of clicks are stored.
_RECOMPUTE_SQL = """
CREATE TEMPORARY TABLE rollup_day_new ON COMMIT DROP AS
WITH per_message AS (
    SELECT message_id,
           sum(sends) AS sends, sum(clicks) AS clicks,
           sum(unique_clicks) AS unique_clicks, sum(bot_clicks) AS bot_clicks,
           sum(preview_clicks) AS preview_clicks
    FROM (
        SELECT m.id AS message_id, 1 AS sends, 0 AS clicks, 0 AS unique_clicks, 0 AS bot_clicks,
               0 AS preview_clicks
        FROM tracking_message m
        WHERE m.sent_at >= %(lo)s AND m.sent_at < %(hi)s
        UNION ALL
        SELECT c.message_id, 0,
               count(*) FILTER (WHERE NOT c.is_bot AND NOT c.is_preview),
               count(*) FILTER (WHERE NOT c.is_bot AND NOT c.is_preview AND NOT c.is_duplicate),
               count(*) FILTER (WHERE c.is_bot OR c.is_preview),
               count(*) FILTER (WHERE c.is_preview)
        FROM tracking_click c
        WHERE c.occurred_at >= %(lo)s AND c.occurred_at < %(hi)s
        GROUP BY c.message_id
    ) AS sources
    GROUP BY message_id
),
facts AS (
    SELECT pm.message_id, m.creative_id, m.campaign_id, m.offer_id, o.network_id,
           pm.sends, pm.clicks, pm.unique_clicks, pm.bot_clicks, pm.preview_clicks,
           0 AS conversions, 0 AS rejected, 0 AS reversed,
           0::numeric AS revenue, 0::numeric AS reversed_revenue,
           0 AS view_through, 0::numeric AS view_through_revenue
    FROM per_message pm
    JOIN tracking_message m ON m.id = pm.message_id
    JOIN attribution_offer o ON o.id = m.offer_id
    UNION ALL
    SELECT v.message_id,
           COALESCE(m.creative_id, v.creative_id),
           COALESCE(m.campaign_id, v.campaign_id),
           COALESCE(m.offer_id, v.offer_id),
           v.network_id,
           0, 0, 0, 0, 0,
           count(*) FILTER (WHERE v.status IN ('approved', 'pending') AND NOT v.view_through),
           count(*) FILTER (WHERE v.status = 'rejected'),
           count(*) FILTER (WHERE v.status = 'reversed'),
           COALESCE(sum(v.payout) FILTER (
               WHERE v.status IN ('approved', 'pending') AND NOT v.view_through), 0),
           COALESCE(sum(v.payout) FILTER (WHERE v.status = 'reversed'), 0),
           count(*) FILTER (WHERE v.status IN ('approved', 'pending') AND v.view_through),
           COALESCE(sum(v.payout) FILTER (
               WHERE v.status IN ('approved', 'pending') AND v.view_through), 0)
    -- The day's conversions first, on their own (OFFSET 0): joined flat, the planner may
    -- read every conversion ever stored in message order (an index scan for a merge join)
    -- and filter on the day after, which grows with the table.
    FROM (SELECT *, attribution_type IS NOT DISTINCT FROM 'view_through' AS view_through
          FROM attribution_conversion
          WHERE occurred_at >= %(lo)s AND occurred_at < %(hi)s
          OFFSET 0) v
    LEFT JOIN tracking_message m ON m.id = v.message_id
    GROUP BY 1, 2, 3, 4, 5
)
SELECT CASE WHEN GROUPING(message_id) = 0 THEN 'message'
            WHEN GROUPING(creative_id) = 0 THEN 'creative'
            WHEN GROUPING(campaign_id) = 0 THEN 'campaign'
            WHEN GROUPING(offer_id) = 0 THEN 'offer'
            ELSE 'network' END AS dimension,
       COALESCE(message_id, creative_id, campaign_id, offer_id, network_id) AS key,
       sum(sends)::int AS sends, sum(clicks)::int AS clicks,
       sum(unique_clicks)::int AS unique_clicks, sum(bot_clicks)::int AS bot_clicks,
       sum(preview_clicks)::int AS preview_clicks, sum(conversions)::int AS conversions,
       sum(rejected)::int AS rejected_conversions, sum(reversed)::int AS reversed_conversions,
       sum(view_through)::int AS view_through_conversions,
       sum(revenue)::numeric(14, 4) AS revenue,
       sum(reversed_revenue)::numeric(14, 4) AS reversed_revenue,
       sum(view_through_revenue)::numeric(14, 4) AS view_through_revenue
FROM facts
GROUP BY GROUPING SETS ((message_id), (creative_id), (campaign_id), (offer_id), (network_id))
-- In each grouping set the other key columns are NULL, so this is the grouped key; a NULL
-- there is an unattributed conversion's missing message (or creative...): no row for it.
HAVING COALESCE(message_id, creative_id, campaign_id, offer_id, network_id) IS NOT NULL
"""

_METRICS = ", ".join(SUMMED)

# A day's rows are read through the (dimension, day, key) index: no index starts with the day.
_DIMENSIONS = list(Dimension.values)

# Each key whose row of the day is new, gone or different: the new values minus the old
# ones, and `days` +1 (new), -1 (gone) or 0. Rows that did not change are left alone, so a
# day recomputed again (every minute while it is touched) writes only what moved.
_CHANGES_SQL = f"""
CREATE TEMPORARY TABLE rollup_day_change ON COMMIT DROP AS
SELECT COALESCE(n.dimension, o.dimension) AS dimension, COALESCE(n.key, o.key) AS key,
       (n.key IS NOT NULL)::int - (o.key IS NOT NULL)::int AS days,
       {", ".join(f"COALESCE(n.{name}, 0) - COALESCE(o.{name}, 0) AS {name}" for name in SUMMED)},
       {", ".join(f"n.{name} AS new_{name}" for name in SUMMED)}
FROM rollup_day_new n
FULL JOIN (
    SELECT dimension, key, {_METRICS} FROM reports_dailyrollup
    WHERE dimension = ANY(%(dimensions)s) AND day = %(day)s
) o
  ON o.dimension = n.dimension AND o.key = n.key
WHERE n.key IS NULL OR o.key IS NULL
   OR ({", ".join(f"n.{name}" for name in SUMMED)})
      IS DISTINCT FROM ({", ".join(f"o.{name}" for name in SUMMED)})
"""  # noqa: S608 - column names only

_GONE_SQL = """
DELETE FROM reports_dailyrollup r USING rollup_day_change c
WHERE r.day = %(day)s AND c.days = -1 AND r.dimension = c.dimension AND r.key = c.key
"""

_WRITE_SQL = f"""
INSERT INTO reports_dailyrollup (day, dimension, key, {_METRICS}, computed_at)
SELECT %(day)s::date, dimension, key, {", ".join(f"new_{name}" for name in SUMMED)}, now()
FROM rollup_day_change WHERE days >= 0
-- One order for every run: two runs of one day lock its rows in the same order.
ORDER BY dimension, key
ON CONFLICT (dimension, key, day) DO UPDATE SET
    {", ".join(f"{name} = excluded.{name}" for name in SUMMED)}, computed_at = excluded.computed_at
"""  # noqa: S608 - column names only

# The changes added to the day's month and dekad. Answers the period rows left with no day
# (to be deleted).
_PERIODS_ADD_SQL = f"""
WITH changed AS (
    INSERT INTO reports_periodrollup (period, start, dimension, key, days, {_METRICS})
    SELECT p.period, p.start, c.dimension, c.key, c.days, {", ".join(f"c.{n}" for n in SUMMED)}
    FROM rollup_day_change c
    CROSS JOIN (VALUES ('month', %(month)s::date), ('dekad', %(dekad)s::date)) AS p(period, start)
    -- One order for every run: two runs of one month lock its rows in the same order.
    ORDER BY c.dimension, p.period, p.start, c.key
    ON CONFLICT (dimension, period, start, key) DO UPDATE SET
        days = reports_periodrollup.days + excluded.days,
        {", ".join(f"{name} = reports_periodrollup.{name} + excluded.{name}" for name in SUMMED)}
    RETURNING id, days
)
SELECT id FROM changed WHERE days = 0
"""  # noqa: S608 - column names only

# The day's sums per dimension, from its rows as just computed (equal to the stored ones now:
# see DailyTotal); `computed_at` says the day was recomputed then, even when none of its rows
# changed (the retention task asks).
_TOTALS_SQL = f"""
INSERT INTO reports_dailytotal (day, dimension, keys, {_METRICS}, computed_at)
SELECT %(day)s::date, dimension, count(*), {", ".join(f"sum({name})" for name in SUMMED)}, now()
FROM rollup_day_new GROUP BY dimension
RETURNING keys
"""  # noqa: S608 - column names only

# Every period row of the months from `start` to `end`, from the daily rows (see
# rollup_periods_rebuild).
_PERIODS_REBUILD_SQL = f"""
INSERT INTO reports_periodrollup (period, start, dimension, key, days, {_METRICS})
SELECT p.period, p.start, dimension, key, count(*),
       {", ".join(f"sum({name})" for name in SUMMED)}
FROM reports_dailyrollup
CROSS JOIN LATERAL (VALUES
    ('month', date_trunc('month', day)::date),
    ('dekad', date_trunc('month', day)::date + (least(2, (extract(day FROM day)::int - 1) / 10)
                                                * 10))
) AS p(period, start)
WHERE day >= %(start)s AND day <= %(end)s
GROUP BY dimension, p.period, p.start, key
-- Written in the order a report reads them: a part's rows on as few pages as can be.
ORDER BY dimension, p.period, p.start, key
"""  # noqa: S608 - column names only

_TOUCHED_DAYS_SQL = """
SELECT DISTINCT (sent_at AT TIME ZONE %(tz)s)::date
FROM tracking_message WHERE created_at > %(since)s
UNION
SELECT DISTINCT (occurred_at AT TIME ZONE %(tz)s)::date
FROM tracking_click WHERE recorded_at > %(since)s
UNION
SELECT DISTINCT (occurred_at AT TIME ZONE %(tz)s)::date
FROM attribution_conversion WHERE updated_at > %(since)s
UNION
SELECT DISTINCT (v.occurred_at AT TIME ZONE %(tz)s)::date
FROM attribution_conversionevent e JOIN attribution_conversion v ON v.id = e.conversion_id
WHERE e.created_at > %(since)s
"""


def rollup_today() -> date:
    """Today in `REPORTS_TIME_ZONE`."""
    return timezone.localdate(timezone=_report_zone())


def _report_zone() -> ZoneInfo:
    return ZoneInfo(settings.REPORTS_TIME_ZONE)


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    """Midnight of `day` and of the day after in `REPORTS_TIME_ZONE` (23 or 25 hours apart
    on the days the clocks change)."""
    zone = _report_zone()
    return (
        datetime.combine(day, datetime.min.time(), tzinfo=zone),
        datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone),
    )


def rollup_recompute_day(*, day: date) -> int:
    """Make every rollup row of `day` equal to the rows computed from the raw tables.

    Only rows whose values differ are written or deleted, and only their change is added to
    the day's month and dekad (PeriodRollup): the end state is the same as replacing the day.
    Returns the number of rows the day has. Safe to run twice and to run twice at once.
    A day whose raw clicks were dropped by the retention task keeps its rows (0 returned).
    """
    if rollup_day_has_dropped_clicks(day=day):
        logger.info("rollup day kept: its clicks were dropped", extra={"day": day.isoformat()})
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, day.toordinal()]
        )
        # The days of one month share their month's period rows: one at a time.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [ADVISORY_LOCK_NAMESPACE + 2, month_start(day).toordinal()],
        )
        cursor.execute("DROP TABLE IF EXISTS pg_temp.rollup_day_new, pg_temp.rollup_day_change")
        # Stale statistics (a table that grew since its last ANALYZE) plan a day's statement
        # past jit_above_cost: compiling it then took longer than the rest of the recompute.
        cursor.execute("SET LOCAL jit = off")
        lo, hi = _day_bounds(day)
        cursor.execute(_RECOMPUTE_SQL, {"lo": lo, "hi": hi})
        cursor.execute(_CHANGES_SQL, {"day": day, "dimensions": _DIMENSIONS})
        cursor.execute(_GONE_SQL, {"day": day})
        cursor.execute(_WRITE_SQL, {"day": day})
        cursor.execute(_PERIODS_ADD_SQL, {"month": month_start(day), "dekad": dekad_start(day)})
        emptied = [row[0] for row in cursor.fetchall()]
        if emptied:
            cursor.execute("DELETE FROM reports_periodrollup WHERE id = ANY(%s)", [emptied])
        cursor.execute("DELETE FROM reports_dailytotal WHERE day = %s", [day])
        cursor.execute(_TOTALS_SQL, {"day": day})
        written = sum(row[0] for row in cursor.fetchall())
        cursor.execute("DROP TABLE rollup_day_new, rollup_day_change")
    logger.info("rollup day recomputed", extra={"day": day.isoformat(), "rows": written})
    return written


def rollup_periods_rebuild(*, start: date, end: date) -> int:
    """Write the month and dekad rows of every month from `start` to `end` again from the
    daily rows (for daily rows written other than by `rollup_recompute_day`)."""
    first, last = month_start(start), month_end(end)
    with transaction.atomic(), connection.cursor() as cursor:
        month = first
        while month <= last:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                [ADVISORY_LOCK_NAMESPACE + 2, month.toordinal()],
            )
            month = month_end(month) + timedelta(days=1)
        cursor.execute(
            "DELETE FROM reports_periodrollup WHERE start >= %s AND start <= %s", [first, last]
        )
        cursor.execute(_PERIODS_REBUILD_SQL, {"start": first, "end": last})
        return cursor.rowcount


def rollup_recompute_range(
    *, start: date, end: date, on_day_done: Callable[[date], None] | None = None
) -> int:
    """Recompute every day from `start` to `end` inclusive, one transaction per day."""
    written = 0
    day = start
    while day <= end:
        written += rollup_recompute_day(day=day)
        if on_day_done is not None:
            on_day_done(day)
        day += timedelta(days=1)
    return written


def rollup_recompute_touched() -> list[date]:
    """Recompute the days that new messages, clicks or conversion changes fell on since
    the last scan, and move the watermark. Returns the days recomputed here.

    One run at a time (a second run while one is busy returns at once). Each day is its own
    transaction; the watermark moves only when every day is done, so a run that dies is
    simply repeated. When more than `TOUCHED_DAYS_PER_RUN` days were touched (an import of
    old clicks), the older ones go to a `RollupJob` on a worker instead of holding up this
    every-minute task past its time limit again and again.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, 0)", [ADVISORY_LOCK_NAMESPACE + 1])
        if not cursor.fetchone()[0]:
            return []
    try:
        scan_started = _database_now()
        watermark, _ = RollupWatermark.objects.get_or_create(
            name=WATERMARK_NAME,
            defaults={"scanned_until": scan_started - timedelta(days=FIRST_SCAN_LOOKBACK_DAYS)},
        )
        with connection.cursor() as cursor:
            cursor.execute(
                _TOUCHED_DAYS_SQL,
                {
                    "tz": settings.REPORTS_TIME_ZONE,
                    "since": watermark.scanned_until - WATERMARK_OVERLAP,
                },
            )
            days = sorted(row[0] for row in cursor.fetchall())
        recent, older = days[-TOUCHED_DAYS_PER_RUN:], days[:-TOUCHED_DAYS_PER_RUN]
        if older:
            rollup_job_create(start=older[0], end=older[-1], requested_by_id=None)
            logger.info(
                "older touched days handed to a job",
                extra={"start": older[0].isoformat(), "end": older[-1].isoformat()},
            )
        for day in recent:
            rollup_recompute_day(day=day)
        RollupWatermark.objects.filter(name=WATERMARK_NAME).update(
            scanned_until=scan_started,
            days_recomputed=F("days_recomputed") + len(recent),
            updated_at=timezone.now(),
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, 0)", [ADVISORY_LOCK_NAMESPACE + 1])
    return recent


def rollup_trailing_window_days() -> int:
    """The nightly window: the longest click window of any offer, plus two days."""
    longest = Offer.objects.aggregate(longest=Max("click_window_days"))["longest"] or 30
    return int(longest) + 2


def rollup_recompute_trailing() -> tuple[date, date]:
    """Recompute the trailing window ending today: late postbacks and reversals land there."""
    end = rollup_today()
    start = end - timedelta(days=rollup_trailing_window_days() - 1)
    rollup_recompute_range(start=start, end=end)
    return start, end


def rollup_job_create(*, start: date, end: date, requested_by_id: int | None) -> RollupJob:
    """Record a range recompute and hand it to a worker once the row is committed."""
    job = RollupJob.objects.create(
        start=start,
        end=end,
        days_total=(end - start).days + 1,
        requested_by_id=requested_by_id,
    )
    task_enqueue_on_commit(name="reports.recompute_range_job", args=[job.pk])
    return job


def rollup_job_run(*, job_id: int) -> RollupJob | None:
    """Run a queued job (or one whose worker died mid-way); None when there is nothing to do."""
    stale_before = timezone.now() - timedelta(hours=1)
    claimed = RollupJob.objects.filter(pk=job_id, status=RollupJob.Status.QUEUED).update(
        status=RollupJob.Status.RUNNING, started_at=timezone.now(), days_done=0
    ) or RollupJob.objects.filter(
        pk=job_id, status=RollupJob.Status.RUNNING, started_at__lt=stale_before
    ).update(started_at=timezone.now(), days_done=0)
    if not claimed:
        return None
    job = RollupJob.objects.get(pk=job_id)

    def advance(_day: date) -> None:
        RollupJob.objects.filter(pk=job_id).update(days_done=job.days_done + 1)
        job.days_done += 1

    try:
        rollup_recompute_range(start=job.start, end=job.end, on_day_done=advance)
    except Exception as error:
        RollupJob.objects.filter(pk=job_id).update(
            status=RollupJob.Status.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    RollupJob.objects.filter(pk=job_id).update(
        status=RollupJob.Status.DONE, finished_at=timezone.now()
    )
    job.refresh_from_db()
    return job


def _database_now() -> datetime:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement_timestamp()")
        now: datetime = cursor.fetchone()[0]
    return now
