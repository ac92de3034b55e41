"""The API's pages of stored cells (one rollup row a key a day) in any of its orderings.

A metric ordering is (metric, day, key). Read from one index in that order, a short range
of a long history skipped every row of the other days first: one day of 90 was 1.8M index
entries for a page at offset 1,000 by `sends`. Here each day of the range that has rows is
read in its own metric order (index `rollup_day_<metric>`: dimension, day, metric, day + 0,
key) and PostgreSQL merges the days (a Merge Append), so a page reads its offset and limit
in index entries, plus one index descent a day. The page's (day, key) pairs come from the
indexes alone; then only the page's rows are read from the table.
"""

from __future__ import annotations

from datetime import date

from django.db import connection, transaction

from reports.models import METRIC_INDEXES, DailyRollup

METRICS = tuple(metric for metric, _ in METRIC_INDEXES)

_MERGED_BRANCH = {
    # (day, key): one day's keys in the index rollup_dimension_day_key, merged on the key;
    # equal keys (one a day, so runs of at most the range's days) are put in day order.
    "key": (
        "SELECT day, key FROM reports_dailyrollup WHERE dimension = %s AND day = %s"
        " ORDER BY key{direction}"
    ),
    # (metric, day, key): see reports.models.SAME_DAY for why `day + 0`.
    "metric": (
        "SELECT day + 0 AS day, key, {column} AS sort FROM reports_dailyrollup"
        " WHERE dimension = %s AND day = %s"
        " ORDER BY {column}{direction}, day + 0{direction}, key{direction}"
    ),
}

_DAYS_WITH_ROWS_SQL = """
WITH RECURSIVE days AS (
    (SELECT day FROM reports_dailyrollup
     WHERE dimension = %(dimension)s AND day >= %(start)s AND day <= %(end)s
     ORDER BY day LIMIT 1)
    UNION ALL
    SELECT (SELECT r.day FROM reports_dailyrollup r
            WHERE r.dimension = %(dimension)s AND r.day > days.day AND r.day <= %(end)s
            ORDER BY r.day LIMIT 1)
    FROM days WHERE days.day IS NOT NULL
)
SELECT day FROM days WHERE day IS NOT NULL
"""


def cells_days_with_rows(*, dimension: str, start: date, end: date) -> list[date]:
    """The days of the range that have rows of the dimension: one index descent a day
    (a skip over index rollup_dimension_day_key), not a read of every row."""
    with connection.cursor() as cursor:
        cursor.execute(_DAYS_WITH_ROWS_SQL, {"dimension": dimension, "start": start, "end": end})
        return [row[0] for row in cursor.fetchall()]


def cells_page(
    *,
    dimension: str,
    start: date,
    end: date,
    column: str,
    descending: bool,
    limit: int,
    offset: int,
) -> list[DailyRollup]:
    """Rows `offset` to `offset + limit` of the dimension's cells from `start` to `end` in the
    order `column` (day: day, key; key: key, day; a metric: metric, day, key), `descending`
    reversing all of it. The order is total (one row a key a day), so pages never overlap."""
    if column not in ("day", "key", *METRICS):
        raise ValueError(f"Not an API ordering: {column!r}")
    direction = " DESC" if descending else ""
    if limit <= 0:
        return []
    params: list[object] = []
    if column == "day":
        page = (
            "SELECT day, key FROM reports_dailyrollup"  # noqa: S608 - fixed names only
            " WHERE dimension = %s AND day >= %s AND day <= %s"
            f" ORDER BY day{direction}, key{direction} LIMIT %s OFFSET %s"
        )
        params += [dimension, start, end, limit, offset]
        order = f"r.day{direction}, r.key{direction}"
    else:
        days = cells_days_with_rows(dimension=dimension, start=start, end=end)
        if not days:
            return []
        if column == "key":
            branch = _MERGED_BRANCH["key"].format(direction=direction)
            merged_order = f"key{direction}, day{direction}"
            order = f"r.key{direction}, r.day{direction}"
        else:
            branch = _MERGED_BRANCH["metric"].format(column=column, direction=direction)
            merged_order = f"sort{direction}, day{direction}, key{direction}"
            order = f"r.{column}{direction}, r.day{direction}, r.key{direction}"
        branches = "\nUNION ALL\n".join(f"({branch})" for _ in days)
        for day in days:
            params += [dimension, day]
        page = (
            f"SELECT day, key FROM ({branches}) AS merged"  # noqa: S608 - our column names
            f" ORDER BY {merged_order} LIMIT %s OFFSET %s"
        )
        params += [limit, offset]
    sql = (
        f"SELECT r.* FROM ({page}) AS page JOIN reports_dailyrollup r"  # noqa: S608
        " ON r.dimension = %s AND r.day = page.day AND r.key = page.key"
        f" ORDER BY {order}"
    )
    params.append(dimension)
    with transaction.atomic(), connection.cursor() as cursor:
        # A merge of many days is estimated far above jit_above_cost though it stops after
        # the page: compiling it would cost more than reading the page.
        cursor.execute("SET LOCAL jit = off")
        return list(DailyRollup.objects.raw(sql, params))
