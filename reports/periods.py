"""Calendar periods the rollups are also summed over, and how a date range is made of them.

A 90-day report by message would sum 1.8M daily rows (20,000 keys a day). Each day's rows
are also kept summed per key over the day's month and its dekad (days 1-10, 11-20 and 21
to the month's end: see PeriodRollup), so a range is read as a few months, dekads and days,
some of them subtracted: 13 March to 10 June is dekad 11-20 March minus 11 and 12 March,
dekad 21-31 March, April, May and dekad 1-10 June.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any, Literal

PeriodName = Literal["month", "dekad", "day"]
MONTH: PeriodName = "month"
DEKAD: PeriodName = "dekad"
DAY: PeriodName = "day"


@dataclass(frozen=True)
class PeriodPart:
    """`sign` (+1 or -1) times the rows of one month, dekad or day starting at `start`."""

    sign: int
    period: PeriodName
    start: date


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def dekad_start(day: date) -> date:
    return day.replace(day=min(21, 1 + (day.day - 1) // 10 * 10))


def dekad_end(day: date) -> date:
    start = dekad_start(day)
    return month_end(day) if start.day == 21 else start + timedelta(days=9)


def period_plan(*, start: date, end: date) -> list[PeriodPart]:
    """The fewest parts whose signed sum is exactly the days from `start` to `end`.

    Every part is a whole month, dekad or day; a subtracted part always lies inside an
    added one. An empty range (start after end) has no parts.
    """
    if start > end:
        return []
    parts: list[PeriodPart] = []
    day = start
    while day <= end:
        last = min(end, month_end(day))
        parts.extend(_in_month(day, last))
        day = last + timedelta(days=1)
    return parts


@cache
def _in_month(first: date, last: date) -> tuple[PeriodPart, ...]:
    if first == month_start(first) and last == month_end(first):
        return (PeriodPart(1, MONTH, first),)
    direct = _dekads(first, last)
    best = direct
    # The month minus what the range leaves out of it, when that is cheaper.
    if first == month_start(first):
        rest = _dekads(last + timedelta(days=1), month_end(first))
        best = min(best, (PeriodPart(1, MONTH, first), *_negated(rest)), key=len)
    elif last == month_end(first):
        rest = _dekads(month_start(first), first - timedelta(days=1))
        best = min(best, (PeriodPart(1, MONTH, month_start(first)), *_negated(rest)), key=len)
    return best


def _dekads(first: date, last: date) -> tuple[PeriodPart, ...]:
    parts: list[PeriodPart] = []
    day = first
    while day <= last:
        piece_end = min(last, dekad_end(day))
        parts.extend(_in_dekad(day, piece_end))
        day = piece_end + timedelta(days=1)
    return tuple(parts)


def _in_dekad(first: date, last: date) -> tuple[PeriodPart, ...]:
    begin, finish = dekad_start(first), dekad_end(first)
    if first == begin and last == finish:
        return (PeriodPart(1, DEKAD, begin),)
    direct = _days(first, last, sign=1)
    if first == begin:
        other = (PeriodPart(1, DEKAD, begin), *_days(last + timedelta(days=1), finish, sign=-1))
    elif last == finish:
        other = (PeriodPart(1, DEKAD, begin), *_days(begin, first - timedelta(days=1), sign=-1))
    else:
        return direct
    return min(direct, other, key=len)


def _days(first: date, last: date, *, sign: int) -> tuple[PeriodPart, ...]:
    return tuple(
        PeriodPart(sign, DAY, first + timedelta(days=n)) for n in range((last - first).days + 1)
    )


def _negated(parts: tuple[PeriodPart, ...]) -> tuple[PeriodPart, ...]:
    return tuple(PeriodPart(-part.sign, part.period, part.start) for part in parts)


def period_parts_sql(
    *,
    dimension: str,
    start: date,
    end: date,
    key: int | None,
    metrics: Sequence[str],
    keys: Sequence[int] | None = None,
) -> tuple[str, dict[str, Any]]:
    """A subquery of (key, days, *metrics) rows whose sums per key are that key's sums over
    the range: the daily rows of its day parts, the period rows of the others, negated in a
    subtracted part. Only `key`'s rows when given, and only those of `keys` when given.

    The rows carry their sign rather than a column to multiply by: `sign * revenue` cast
    the sign to numeric and multiplied once a row (100,000 rows for a 90-day ranking of
    20,000 keys), about a tenth of that ranking's CPU time by revenue."""
    only_key = " AND r.key = %(key)s" if key is not None else ""
    if keys is not None:
        # One array in PostgreSQL's text form: psycopg's list dumper costs more, and picks
        # smallint[] or bigint[] by the values.
        only_key += " AND r.key = ANY(%(keys)s::bigint[])"
    params: dict[str, Any] = {
        "dimension": dimension,
        "key": key,
        "keys": "{" + ",".join(map(str, keys or ())) + "}",
    }
    # One branch a part, each an index range scan (a join to a list of parts is planned as a
    # scan of every row of the dimension).
    branches = []
    for number, part in enumerate(period_plan(start=start, end=end)):
        params[f"start_{number}"] = part.start
        minus = "" if part.sign > 0 else "-"
        columns = "".join(f", {minus}r.{name} AS {name}" for name in metrics)
        if part.period == DAY:
            branches.append(
                f"SELECT r.key, {minus}1 AS days{columns} FROM reports_dailyrollup r"  # noqa: S608
                f" WHERE r.dimension = %(dimension)s AND r.day = %(start_{number})s{only_key}"
            )
        else:
            params[f"period_{number}"] = part.period
            branches.append(
                f"SELECT r.key, {minus}r.days AS days{columns} FROM reports_periodrollup r"  # noqa: S608
                f" WHERE r.dimension = %(dimension)s AND r.period = %(period_{number})s"
                f" AND r.start = %(start_{number})s{only_key}"
            )
    if not branches:
        columns = "".join(f", r.{name}" for name in metrics)
        branches.append(
            f"SELECT r.key, 1 AS days{columns} FROM reports_dailyrollup r WHERE false"  # noqa: S608
        )
    return "\nUNION ALL\n".join(branches), params
