"""Every read of the reports: the rollup rows of a date range, summed per key or per day.

Ratios are computed here, never stored: `epc` = revenue / unique clicks and
`revenue_per_send` = revenue / sends, both 0 when the divisor is 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import Max, Model, QuerySet, Sum
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from attribution.models import Network, Offer
from reports.cells import cells_page
from reports.models import DailyRollup, DailyTotal, Dimension, RollupWatermark
from reports.periods import period_parts_sql
from tracking.models import Campaign, Creative, Message, message_name

COUNTS = (
    "sends",
    "clicks",
    "unique_clicks",
    "bot_clicks",
    "preview_clicks",
    "conversions",
    "rejected_conversions",
    "reversed_conversions",
    "view_through_conversions",
)
AMOUNTS = ("revenue", "reversed_revenue", "view_through_revenue")
SUMMED = COUNTS + AMOUNTS
RATIOS = ("epc", "revenue_per_send")
# What the table can be sorted by: every column but the name.
SORTABLE = ("key", *SUMMED, *RATIOS)
MAX_RANGE_DAYS = 366
# The page and its CSV show at most this many keys (the top ones by the chosen order).
TABLE_LIMIT = 500
CENT = Decimal("0.0001")

DIMENSION_MODELS: dict[str, type[Model]] = {
    Dimension.MESSAGE: Message,
    Dimension.CREATIVE: Creative,
    Dimension.OFFER: Offer,
    Dimension.CAMPAIGN: Campaign,
    Dimension.NETWORK: Network,
}


class ReportInputError(ValueError):
    """The request named a range or dimension the report cannot answer; the text says why."""


@dataclass(frozen=True)
class ReportQuery:
    dimension: str
    start: date
    end: date
    key: int | None = None

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]


@dataclass
class ReportRow:
    key: int
    day: date | None = None
    name: str = ""
    admin_url: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    html: str = ""  # the page's table row, formatted by the view

    def __getattr__(self, name: str) -> Any:
        # Lets templates and serializers read `row.clicks` like a model field.
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)


def report_query_parse(
    *,
    dimension: str | None,
    start: str | None,
    end: str | None,
    key: str | None = None,
    default_end: date,
    default_days: int = 30,
    max_days: int | None = MAX_RANGE_DAYS,
    reversed_is_empty: bool = False,
) -> ReportQuery:
    """Check a report request. Missing dates default to the `default_days` up to `default_end`.

    The paginated API reads stored cells only, so it takes any range (`max_days=None`), and a
    start after the end is a range without days (`reversed_is_empty`): no rows, not an error.
    """
    dimension = dimension or Dimension.CAMPAIGN
    if dimension not in Dimension.values:
        raise ReportInputError(
            f"Unknown dimension {dimension!r}: choose one of {', '.join(Dimension.values)}."
        )
    end_day = _date_parse(end, "end") if end else default_end
    start_day = _date_parse(start, "start") if start else end_day - timedelta(days=default_days - 1)
    if start_day > end_day and not reversed_is_empty:
        raise ReportInputError(f"The start ({start_day}) is after the end ({end_day}).")
    if max_days is not None and (end_day - start_day).days + 1 > max_days:
        raise ReportInputError(f"The range is longer than {MAX_RANGE_DAYS} days.")
    key_id: int | None = None
    if key:
        try:
            key_id = int(key)
        except ValueError:
            raise ReportInputError(f"The key {key!r} is not an id.") from None
        if not 1 <= key_id < 2**63:
            raise ReportInputError(f"The key {key!r} is not an id.")
    return ReportQuery(dimension=dimension, start=start_day, end=end_day, key=key_id)


def _date_parse(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportInputError(f"The {name} date {text!r} is not a YYYY-MM-DD date.") from None


def _rollups(query: ReportQuery) -> QuerySet[DailyRollup]:
    rows = DailyRollup.objects.filter(
        dimension=query.dimension, day__gte=query.start, day__lte=query.end
    )
    if query.key is not None:
        rows = rows.filter(key=query.key)
    return rows


def _with_ratios(values: dict[str, Any]) -> dict[str, Any]:
    for name in SUMMED:
        values[name] = values.get(name) or (Decimal(0) if name in AMOUNTS else 0)
    revenue: Decimal = values["revenue"]
    values["epc"] = (
        (revenue / values["unique_clicks"]).quantize(CENT)
        if values["unique_clicks"]
        else Decimal(0)
    )
    values["revenue_per_send"] = (
        (revenue / values["sends"]).quantize(CENT) if values["sends"] else Decimal(0)
    )
    return values


def report_totals(*, series: list[dict[str, Any]]) -> dict[str, Any]:
    """The sums of a `report_series` (one scan of the rollups serves the chart and totals)."""
    return _with_ratios({name: sum(day[name] for day in series) for name in SUMMED})


def report_rows_by_key(
    *, query: ReportQuery, order: str = "-revenue", limit: int | None = TABLE_LIMIT, offset: int = 0
) -> tuple[list[ReportRow], int]:
    """One row per key over the range, sorted by `order` (a SORTABLE name, `-` for descending,
    ties by key), `limit` of them (None: all) from `offset` on; and how many keys in all.

    Summed from the month, dekad and day rows that make up the range (reports.periods), so
    90 days of 20,000 keys read about 7 rows a key instead of 90.
    """
    rows: list[ReportRow] = []
    key_count = 0
    for chunk, count in _rows_by_key(query=query, order=order, limit=limit, offset=offset):
        rows.extend(chunk)
        key_count = count
    if not rows and offset:
        # Past the last key: the count comes with the first row only.
        for _, count in _rows_by_key(query=query, order=order, limit=1, offset=0, names=False):
            key_count = count
    return rows, key_count


def report_rows_by_key_iterate(*, query: ReportQuery, order: str) -> Iterator[ReportRow]:
    """Every key's row over the range in `order`, fetched and named a chunk at a time."""
    for chunk, _ in _rows_by_key(query=query, order=order, limit=None, offset=0, names=False):
        _names_attach(query.dimension, chunk, with_admin_urls=False)
        yield from chunk


# Sort expressions over the per-key sums (ratios are computed, not stored).
_RATIO_ORDER = {
    "epc": "CASE WHEN unique_clicks > 0 THEN revenue / unique_clicks ELSE 0 END",
    "revenue_per_send": "CASE WHEN sends > 0 THEN revenue / sends ELSE 0 END",
}
_CHUNK = 2000
# What a sort column is computed from (a metric: itself; the key: nothing).
_SORT_NEEDS: dict[str, tuple[str, ...]] = {
    "key": (),
    "epc": ("revenue", "unique_clicks"),
    "revenue_per_send": ("revenue", "sends"),
}


def _rows_by_key(
    *, query: ReportQuery, order: str, limit: int | None, offset: int, names: bool = True
) -> Iterator[tuple[list[ReportRow], int]]:
    descending = order.startswith("-")
    column = order.lstrip("-")
    if column not in SORTABLE:
        raise ReportInputError(f"Cannot sort by {column!r}.")
    if limit is not None:
        yield _page_by_key(
            query=query,
            column=column,
            descending=descending,
            limit=limit,
            offset=offset,
            names=names,
        )
        return
    parts, params = period_parts_sql(
        dimension=query.dimension, start=query.start, end=query.end, key=query.key, metrics=SUMMED
    )
    sums = ", ".join(f"sum({name}) AS {name}" for name in SUMMED)
    direction = "DESC" if descending else "ASC"
    sort = _RATIO_ORDER.get(column, column)
    sql = f"""
        SELECT key, {", ".join(SUMMED)}, count(*) OVER () AS key_count
        FROM (
            SELECT key, {sums} FROM ({parts}) AS parts
            GROUP BY key
            -- A key whose only rows were in subtracted parts has no day in the range.
            HAVING sum(days) > 0
        ) AS by_key
        ORDER BY {sort} {direction}, key OFFSET %(offset)s
    """  # noqa: S608 - column names and fixed expressions only
    params.update({"offset": offset})
    with transaction.atomic(), connection.cursor() as cursor:
        _sums_settings(cursor)
        cursor.execute(sql, params)
        fetched = True
        while fetched:
            fetched = cursor.fetchmany(_CHUNK)
            if not fetched:
                break
            chunk = [
                ReportRow(
                    key=item[0], values=_with_ratios(dict(zip(SUMMED, item[1:-1], strict=True)))
                )
                for item in fetched
            ]
            if names:
                _names_attach(query.dimension, chunk)
            yield chunk, fetched[0][-1]


def _sums_settings(cursor: Any) -> None:
    # Planned well above jit_above_cost: compiling the sums would cost more than it saves;
    # and 20,000 keys' sums spill to disk in the default work_mem.
    cursor.execute("SET LOCAL jit = off")
    cursor.execute("SET LOCAL work_mem = '64MB'")


def _page_by_key(
    *, query: ReportQuery, column: str, descending: bool, limit: int, offset: int, names: bool
) -> tuple[list[ReportRow], int]:
    """One page of keys: ranked on the sort column alone (a narrow sum over the range's
    parts), then every metric summed for the page's keys only.

    Summing all twelve metrics of 20,000 keys to show 500 of them cost most of the page;
    the ranking sums one or two columns, and the page's keys are fetched by the index."""
    direction = "DESC" if descending else "ASC"
    sort = _RATIO_ORDER.get(column, column)
    needed = _SORT_NEEDS.get(column, (column,))
    parts, params = period_parts_sql(
        dimension=query.dimension, start=query.start, end=query.end, key=query.key, metrics=needed
    )
    sums = "".join(f", sum({name}) AS {name}" for name in needed)
    rank_sql = f"""
        SELECT key, count(*) OVER () AS key_count
        FROM (
            SELECT key{sums} FROM ({parts}) AS parts
            GROUP BY key
            -- A key whose only rows were in subtracted parts has no day in the range.
            HAVING sum(days) > 0
        ) AS by_key
        ORDER BY {sort} {direction}, key LIMIT %(limit)s OFFSET %(offset)s
    """  # noqa: S608 - column names and fixed expressions only
    params.update({"limit": limit, "offset": offset})
    with transaction.atomic(), connection.cursor() as cursor:
        _sums_settings(cursor)
        # Parallel workers do not pay here: each key has a row in nearly every part, so each
        # worker's partial sums cover nearly every key (3 x 20,000 partial rows out of the
        # 100,000 read, sorted and summed again), and the page's keys are a few thousand rows.
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(rank_sql, params)
        ranked = cursor.fetchall()
        if not ranked:
            return [], 0
        keys = [item[0] for item in ranked]
        parts, params = period_parts_sql(
            dimension=query.dimension,
            start=query.start,
            end=query.end,
            key=query.key,
            metrics=SUMMED,
            keys=keys,
        )
        all_sums = ", ".join(f"sum({name})" for name in SUMMED)
        cursor.execute(
            f"SELECT key, {all_sums} FROM ({parts}) AS parts GROUP BY key",  # noqa: S608
            params,
        )
        by_key = {item[0]: item[1:] for item in cursor.fetchall()}
    rows = [
        ReportRow(key=key, values=_with_ratios(dict(zip(SUMMED, by_key[key], strict=True))))
        for key in keys
    ]
    if names:
        _names_attach(query.dimension, rows)
    return rows, ranked[0][1]


# The API's `ordering`: day and key (the default, "day"), or a summed metric (ties by day, key);
# a leading `-` reverses the whole order, so one index per metric serves both directions.
API_ORDERINGS = ("day", "key", *SUMMED)


class CountedRows:
    """The range's cells in one API ordering, read a page at a time (reports.cells), whose
    count is known without `COUNT(*)`: Django's paginator asks `count()` and slices; the
    count comes from the per-day totals (see DailyTotal)."""

    def __init__(self, *, query: ReportQuery, column: str, descending: bool, count: int) -> None:
        self.query = query
        self.column = column
        self.descending = descending
        self._count = count

    def count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: slice) -> list[DailyRollup]:
        offset = index.start or 0
        stop = self._count if index.stop is None else index.stop
        return cells_page(
            dimension=self.query.dimension,
            start=self.query.start,
            end=self.query.end,
            column=self.column,
            descending=self.descending,
            limit=stop - offset,
            offset=offset,
        )


def report_rows_by_day_and_key(
    *, query: ReportQuery, ordering: str = "day"
) -> QuerySet[DailyRollup] | CountedRows:
    """The stored cells of the range for the API (paginated by the caller), sorted on the
    server by `ordering` (an API_ORDERINGS name, `-` for descending): by day, then key; by
    key, then day; or by a metric, then day, then key."""
    column = ordering.removeprefix("-")
    if column not in API_ORDERINGS:
        raise ReportInputError(
            f"Cannot order by {column!r}: choose one of {', '.join(API_ORDERINGS)}"
            " (a leading - for descending)."
        )
    descending = ordering.startswith("-")
    if query.key is not None:
        # One key's days: counting and sorting them is cheap.
        sign = "-" if descending else ""
        if column == "day":
            order = [f"{sign}day", f"{sign}key"]
        elif column == "key":
            order = [f"{sign}key", f"{sign}day"]
        else:
            order = [f"{sign}{column}", f"{sign}day", f"{sign}key"]
        return _rollups(query).order_by(*order)
    keys = DailyTotal.objects.filter(
        dimension=query.dimension, day__gte=query.start, day__lte=query.end
    ).aggregate(keys=Sum("keys"))["keys"]
    return CountedRows(query=query, column=column, descending=descending, count=keys or 0)


def report_rows_as_dicts(*, dimension: str, rows: Iterable[DailyRollup]) -> list[dict[str, Any]]:
    """API rows: stored cells with their ratios and the key's name."""
    cells = [
        ReportRow(
            key=row.key,
            day=row.day,
            values=_with_ratios({name: getattr(row, name) for name in SUMMED}),
        )
        for row in rows
    ]
    _names_attach(dimension, cells, with_admin_urls=False)
    return [
        {"day": cell.day, "dimension": dimension, "key": cell.key, "name": cell.name, **cell.values}
        for cell in cells
    ]


def report_series(*, query: ReportQuery) -> list[dict[str, Any]]:
    """Every day of the range (zeros included) with the sums of every metric that day:
    one stored total a day (DailyTotal), or one key's own rows."""
    sums: dict[date, dict[str, Any]]
    if query.key is None:
        sums = {
            item["day"]: cast(dict[str, Any], item)
            for item in DailyTotal.objects.filter(
                dimension=query.dimension, day__gte=query.start, day__lte=query.end
            ).values("day", *SUMMED)
        }
    else:
        sums = {
            item["day"]: cast(dict[str, Any], item)
            for item in _rollups(query).values("day").annotate(**{n: Sum(n) for n in SUMMED})
        }
    return [
        {"day": day, **_with_ratios({n: sums.get(day, {}).get(n) for n in SUMMED})}
        for day in query.days
    ]


def report_freshness() -> datetime | None:
    """Until when new rows have been folded into the rollups by the every-minute task."""
    watermark = RollupWatermark.objects.filter(name="touched").first()
    return watermark.scanned_until if watermark else None


def report_key_name(*, dimension: str, key: int) -> str:
    rows = [ReportRow(key=key)]
    _names_attach(dimension, rows, with_admin_urls=False)
    return rows[0].name


def report_key_names(*, dimension: str, keys: Sequence[int]) -> dict[int, str]:
    """The display name of each key of a dimension (message, offer, ...), in one query."""
    named = _names_found(dimension, keys)
    return {key: named.get(key, f"#{key} (deleted)") for key in keys}


def _names_found(dimension: str, keys: Iterable[int]) -> dict[int, str]:
    """The display name of each key that still names a row (deleted ones are left out)."""
    model = DIMENSION_MODELS[dimension]
    if model is Message:
        # A report can name 100,000 messages: one array parameter (an IN list of that many
        # parameters costs seconds to bind) in PostgreSQL's text form (psycopg's list dumper
        # takes a second for 150,000 ids), and no model instances (500 of them cost more
        # than the query).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, channel FROM tracking_message WHERE id = ANY(%s::bigint[])",
                ["{" + ",".join(map(str, set(keys))) + "}"],
            )
            return {pk: message_name(pk=pk, channel=channel) for pk, channel in cursor.fetchall()}
    objects: QuerySet[Any] = model._default_manager.all()
    if model is Creative:
        objects = objects.select_related("campaign")
    return {pk: str(found) for pk, found in objects.in_bulk(set(keys)).items()}


def _names_attach(
    dimension: str, rows: Sequence[ReportRow], *, with_admin_urls: bool = True
) -> None:
    named = _names_found(dimension, {row.key for row in rows})
    opts = DIMENSION_MODELS[dimension]._meta
    # One reverse() for all rows (500 of them cost more than the query).
    change_url = ""
    if with_admin_urls:
        try:
            change_url = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_change", args=["0"]
            ).removesuffix("/0/change/")
        except NoReverseMatch:
            change_url = ""
    for row in rows:
        name = named.get(row.key)
        row.name = f"#{row.key} (deleted)" if name is None else name
        if change_url and name is not None:
            row.admin_url = f"{change_url}/{row.key}/change/"


__all__ = [
    "API_ORDERINGS",
    "DIMENSION_MODELS",
    "MAX_RANGE_DAYS",
    "RATIOS",
    "SORTABLE",
    "SUMMED",
    "TABLE_LIMIT",
    "CountedRows",
    "ReportInputError",
    "ReportQuery",
    "ReportRow",
    "report_freshness",
    "report_key_name",
    "report_key_names",
    "report_query_parse",
    "report_rows_as_dicts",
    "report_rows_by_day_and_key",
    "report_rows_by_key",
    "report_rows_by_key_iterate",
    "report_series",
    "report_totals",
]


def rollup_age_get() -> float | None:
    """Seconds since the reports last caught up: the rollup watermark when there is one,
    else the newest rollup row; None when no rollup was ever computed."""
    newest = (
        RollupWatermark.objects.filter(name="touched")
        .values_list("scanned_until", flat=True)
        .first()
    )
    if newest is None:
        newest = DailyTotal.objects.aggregate(newest=Max("computed_at"))["newest"]
    if newest is None:
        return None
    return max(0.0, (timezone.now() - newest).total_seconds())
