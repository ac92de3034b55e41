"""The daily report page inside the admin: `/admin/reports/daily/` and its CSV twin.

Query parameters (all optional): `dimension` (message, creative, offer, campaign, network;
default campaign), `start` and `end` (YYYY-MM-DD, default the last 30 days), `key` (one
id of that dimension: the links from the message/creative/offer/campaign pages use it),
`o` (sort column, `-` prefix for descending; default `-revenue`), `p` (page of the table,
TABLE_LIMIT keys a page; default 1). The CSV holds the page's rows, or every key with `all=1`
(streamed).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from reports.charts import chart_build
from reports.models import DailyReport, Dimension
from reports.selectors import (
    SORTABLE,
    TABLE_LIMIT,
    ReportInputError,
    ReportQuery,
    ReportRow,
    report_freshness,
    report_key_name,
    report_query_parse,
    report_rows_by_key,
    report_rows_by_key_iterate,
    report_series,
    report_totals,
)
from reports.services import rollup_today

COLUMNS = (
    ("sends", "Sends"),
    ("clicks", "Clicks"),
    ("unique_clicks", "Unique clicks"),
    ("bot_clicks", "Bot & preview clicks"),
    ("preview_clicks", "Of which previews"),
    ("conversions", "Conversions"),
    ("revenue", "Revenue"),
    ("epc", "EPC"),
    ("revenue_per_send", "Revenue / send"),
    ("rejected_conversions", "Rejected"),
    ("reversed_conversions", "Reversed"),
    ("reversed_revenue", "Reversed revenue"),
    ("view_through_conversions", "View-through"),
    ("view_through_revenue", "View-through revenue"),
)
DEFAULT_ORDER = "-revenue"
# Decimal places each money or ratio column shows (as `floatformat`); counts show as they are.
PLACES = {
    "revenue": 2,
    "reversed_revenue": 2,
    "view_through_revenue": 2,
    "epc": 4,
    "revenue_per_send": 4,
}
QUANTUMS = {name: Decimal(1).scaleb(-places) for name, places in PLACES.items()}


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("p") or "1"
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw[:9]) <= 10**6:
        raise ReportInputError(f"The page {raw[:20]!r} is not a page number.")
    return int(raw)


def _parse(request: HttpRequest) -> tuple[ReportQuery, str]:
    params = request.GET
    query = report_query_parse(
        dimension=params.get("dimension"),
        start=params.get("start"),
        end=params.get("end"),
        key=params.get("key"),
        default_end=rollup_today(),
    )
    order = params.get("o") or DEFAULT_ORDER
    if order.lstrip("-") not in SORTABLE:
        raise ReportInputError(f"Cannot sort by {order.lstrip('-')!r}.")
    return query, order


def daily_report_view(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {
        **admin.site.each_context(request),
        "title": "Daily report",
        "opts": DailyReport._meta,
        "dimensions": Dimension.choices,
        "columns": COLUMNS,
        "params": request.GET,
        "freshness": report_freshness(),
        "time_zone": settings.REPORTS_TIME_ZONE,
    }
    try:
        query, order = _parse(request)
        page = _page_number(request)
    except ReportInputError as error:
        context["error"] = str(error)
        return TemplateResponse(request, "admin/reports/daily_report.html", context, status=400)
    rows, key_count = report_rows_by_key(query=query, order=order, offset=(page - 1) * TABLE_LIMIT)
    key_link = (
        "?"
        + urlencode({"dimension": query.dimension, "start": query.start, "end": query.end})
        + "&key="
    )
    for row in rows:
        row.html = _row_html(row, key_link=key_link)
    series = report_series(query=query)
    base = {"dimension": query.dimension, "start": query.start, "end": query.end}
    if query.key is not None:
        base["key"] = query.key
    context.update(
        {
            "query": query,
            "dimension_label": Dimension(query.dimension).label,
            "order": order,
            "rows": rows,
            "key_count": key_count,
            "limit": TABLE_LIMIT,
            "totals": report_totals(series=series),
            "chart": chart_build(series=series),
            "key_name": (
                report_key_name(dimension=query.dimension, key=query.key)
                if query.key is not None
                else ""
            ),
            "headers": _headers(base, order),
            "page": page,
            "first_shown": (page - 1) * TABLE_LIMIT + 1,
            "previous_url": (
                "?" + urlencode({**base, "o": order, "p": page - 1}) if page > 1 else ""
            ),
            "next_url": (
                "?" + urlencode({**base, "o": order, "p": page + 1})
                if page * TABLE_LIMIT < key_count
                else ""
            ),
            "csv_url": reverse("admin:reports_daily_csv")
            + "?"
            + urlencode({**base, "o": order, "p": page}),
            "csv_all_url": reverse("admin:reports_daily_csv")
            + "?"
            + urlencode({**base, "o": order, "all": 1}),
            "recompute_url": reverse("admin:reports_rollupjob_add")
            + "?"
            + urlencode({"start": query.start, "end": query.end}),
            "dimension_links": [
                (value, label, "?" + urlencode({**base, "dimension": value, "o": order}))
                for value, label in Dimension.choices
                if query.key is None
            ],
        }
    )
    return TemplateResponse(request, "admin/reports/daily_report.html", context)


def daily_report_csv_view(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """The table of the page, same query, same order, same rows, as CSV; every key with
    `all=1`, streamed a chunk of keys at a time."""
    try:
        query, order = _parse(request)
        page = _page_number(request)
    except ReportInputError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    filename = f"report-{query.dimension}-{query.start}-{query.end}.csv"
    header = ["dimension", "key", "name", *(name for name, _ in COLUMNS)]
    if request.GET.get("all") == "1":
        rows = report_rows_by_key_iterate(query=query, order=order)
        response: HttpResponse | StreamingHttpResponse = StreamingHttpResponse(
            _csv_lines(query.dimension, header, rows), content_type="text/csv; charset=utf-8"
        )
    else:
        page_rows, _ = report_rows_by_key(query=query, order=order, offset=(page - 1) * TABLE_LIMIT)
        response = HttpResponse(
            "".join(_csv_lines(query.dimension, header, page_rows)),
            content_type="text/csv; charset=utf-8",
        )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class _Line:
    """A file-like target for csv.writer that hands back the line just written."""

    def write(self, text: str) -> str:
        return text


def _csv_lines(dimension: str, header: list[str], rows: Iterable[ReportRow]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(
            [dimension, row.key, _csv_safe(row.name), *(row.values[n] for n, _ in COLUMNS)]
        )


def _row_html(row: ReportRow, *, key_link: str) -> SafeString:
    """A row of the table, formatted here: 500 rows of the name's link and 14 number cells
    took longer to render as template variables and filters than the queries that fetched
    them. Numbers need no escaping; the name and links are escaped as the template would."""
    key = row.key
    name: str = escape(row.name)
    if row.admin_url:
        name = f'<a href="{escape(row.admin_url)}">{name}</a>'
    cells = []
    for column, _ in COLUMNS:
        value = row.values[column]
        if column in PLACES:
            value = Decimal(value).quantize(QUANTUMS[column], ROUND_HALF_UP)
        cells.append(f'<td class="number">{value}</td>')
    return mark_safe(  # noqa: S308 - escaped above, numbers only
        f'<tr data-key="{key}">\n'
        f"        <td>{name}\n"
        f'            <a class="report-note" href="{escape(key_link)}{key}" title="Only this one">'
        f"#{key}</a></td>\n"
        f"        {''.join(cells)}\n"
        "      </tr>"
    )


def _csv_safe(text: str) -> str:
    # A name starting with = + - @ would run as a formula in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _headers(base: dict[str, Any], order: str) -> list[dict[str, Any]]:
    headers = []
    for name, label in (("key", "Key"), *COLUMNS):
        current = order.lstrip("-") == name
        descending = order.startswith("-")
        # First click sorts the biggest first; clicking the sorted column flips it.
        next_order = name if current and descending else f"-{name}"
        if name == "key" and not current:
            next_order = "key"
        headers.append(
            {
                "name": name,
                "label": label,
                "sorted": current,
                "descending": current and descending,
                "url": "?" + urlencode({**base, "o": next_order}),
            }
        )
    return headers


def report_url(*, dimension: str, key: int, start: date | None = None) -> str:
    """The report rows of one message/creative/offer/campaign/network (for other admin pages)."""
    params: dict[str, Any] = {"dimension": dimension, "key": key}
    if start is not None:
        params["start"] = start
    return reverse("admin:reports_daily") + "?" + urlencode(params)
