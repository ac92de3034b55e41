"""The report table sums month, dekad and day rows: the same numbers as summing every day."""

import csv
import io
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from django.db import connection
from django.db.models import Sum

from attribution.models import AttributionType, Conversion, ConversionStatus
from reports.models import DailyRollup, DailyTotal, Dimension, PeriodRollup
from reports.periods import DAY, period_plan
from reports.selectors import SORTABLE, SUMMED, ReportQuery, report_rows_by_key
from reports.services import rollup_periods_rebuild, rollup_recompute_range
from tests.factories import CreativeFactory, NetworkFactory, OfferFactory
from tests.reports.helpers import (
    clicks_made,
    conversion_credited,
    conversion_unattributed,
    message_sent,
)
from tracking.models import Click, Link

FIRST = date(2026, 1, 26)
LAST = date(2026, 4, 4)
RANGES = [
    (FIRST, LAST),
    (date(2026, 1, 28), date(2026, 3, 31)),
    (date(2026, 2, 1), date(2026, 2, 28)),
    (date(2026, 2, 3), date(2026, 3, 19)),
    (date(2026, 2, 11), date(2026, 2, 20)),
    (date(2026, 3, 9), date(2026, 3, 9)),
]


def test_a_plan_counts_every_day_of_its_range_once_and_no_other_day():
    # given
    for start in (date(2026, 1, 1), date(2026, 1, 13), date(2026, 2, 20), date(2024, 2, 9)):
        for length in (1, 2, 9, 10, 11, 19, 28, 31, 45, 90, 366):
            end = start + timedelta(days=length - 1)

            # when
            plan = period_plan(start=start, end=end)

            # then
            counted: dict[date, int] = {}
            for part in plan:
                for day in _days_of(part.period, part.start):
                    counted[day] = counted.get(day, 0) + part.sign
            in_range = {day for day, count in counted.items() if count}
            assert set(counted.values()) <= {0, 1}, (start, length)
            assert in_range == {start + timedelta(days=n) for n in range(length)}
            assert len(plan) <= 14 + length // 28, (start, length, plan)


def test_ninety_days_are_a_few_parts():
    # when
    plan = period_plan(start=date(2026, 3, 13), end=date(2026, 6, 10))

    # then: dekad 11-20 March minus 11 and 12 March, dekad 21-31 March, April, May, 1-10 June
    assert [(part.sign, part.period, part.start.isoformat()) for part in plan] == [
        (1, "dekad", "2026-03-11"),
        (-1, "day", "2026-03-11"),
        (-1, "day", "2026-03-12"),
        (1, "dekad", "2026-03-21"),
        (1, "month", "2026-04-01"),
        (1, "month", "2026-05-01"),
        (1, "dekad", "2026-06-01"),
    ]


@pytest.fixture
def history(db):
    """Messages over ten weeks across month ends, with clicks (bots, duplicates), click-through,
    view-through, rejected, reversed and unattributed conversions on many days."""
    chance = random.Random(18)
    network = NetworkFactory()
    offers = [OfferFactory(network=network), OfferFactory(network=network)]
    creatives = [CreativeFactory(), CreativeFactory()]
    messages = []
    for number in range(24):
        sent = FIRST + timedelta(days=chance.randrange((LAST - FIRST).days + 1))
        message, link = message_sent(
            creative=creatives[number % 2], offer=offers[number % 2], sent_at=_at(sent, 9)
        )
        messages.append(message)
        for _ in range(chance.randrange(4)):
            day = min(LAST, sent + timedelta(days=chance.randrange(20)))
            clicks_made(
                link,
                _at(day, 10),
                count=chance.randrange(1, 4),
                is_bot=chance.random() < 0.2,
                is_duplicate=chance.random() < 0.3,
            )
        for _ in range(chance.randrange(3)):
            day = min(LAST, sent + timedelta(days=chance.randrange(25)))
            conversion = conversion_credited(
                message,
                _at(day, 12),
                payout=f"{chance.randrange(1, 50)}.{chance.randrange(100):02d}",
                status=chance.choice(list(ConversionStatus)),
            )
            if chance.random() < 0.3:
                conversion.attribution_type = AttributionType.VIEW_THROUGH
                conversion.save(update_fields=["attribution_type"])
    for number in range(5):
        conversion_unattributed(
            network, _at(FIRST + timedelta(days=number * 13), 15), payout="3.50", offer=offers[0]
        )
    rollup_recompute_range(start=FIRST, end=LAST)
    return messages


def test_report_rows_equal_the_sums_of_every_day_for_each_dimension_and_range(history):
    for dimension in Dimension.values:
        for start, end in RANGES:
            # when
            rows, key_count = report_rows_by_key(
                query=ReportQuery(dimension=dimension, start=start, end=end),
                order="-revenue",
                limit=None,
            )

            # then
            expected = _daily_sums(dimension, start, end)
            assert {row.key: _metrics(row.values) for row in rows} == expected, (dimension, start)
            assert key_count == len(expected)


def test_report_rows_stay_equal_after_late_data_and_status_changes(history):
    # given: a late conversion, a reversal, and a conversion moved to another message
    late = conversion_credited(history[0], _at(date(2026, 2, 14), 8), payout="77.00")
    changed = Conversion.objects.filter(status=ConversionStatus.APPROVED).order_by("pk")[0]
    changed.status = ConversionStatus.REVERSED
    changed.save(update_fields=["status"])
    moved = Conversion.objects.exclude(pk__in=[late.pk, changed.pk]).filter(attributed=True)[0]
    moved.message = history[-1]
    moved.save(update_fields=["message"])
    days = {
        late.occurred_at.date(),
        changed.occurred_at.date(),
        moved.occurred_at.date(),
    }

    # when
    for day in days:
        rollup_recompute_range(start=day, end=day)

    # then
    for dimension in Dimension.values:
        for start, end in RANGES:
            rows, _ = report_rows_by_key(
                query=ReportQuery(dimension=dimension, start=start, end=end),
                order="revenue",
                limit=None,
            )
            expected = _daily_sums(dimension, start, end)
            assert {row.key: _metrics(row.values) for row in rows} == expected, (dimension, start)
    kept = _period_rows()
    rollup_periods_rebuild(start=FIRST, end=LAST)
    assert _period_rows() == kept


def test_a_key_whose_only_day_is_recomputed_away_leaves_no_period_row(history):
    # given: a message whose rows are all on one day
    message = history[3]
    days = set(
        DailyRollup.objects.filter(dimension="message", key=message.pk).values_list(
            "day", flat=True
        )
    )
    Conversion.objects.filter(message=message).delete()
    Click.objects.filter(message_id=message.pk).delete()
    Link.objects.filter(message=message).delete()
    message.delete()

    # when
    for day in days:
        rollup_recompute_range(start=day, end=day)

    # then
    assert not PeriodRollup.objects.filter(dimension="message", key=message.pk).exists()
    rows, _ = report_rows_by_key(
        query=ReportQuery(dimension="message", start=FIRST, end=LAST), limit=None
    )
    assert message.pk not in {row.key for row in rows}


def test_sorting_and_paging_walk_the_same_rows_as_the_sums(history):
    # given
    query = ReportQuery(dimension="message", start=FIRST, end=LAST)
    expected = _daily_sums("message", FIRST, LAST)

    for order in ("-revenue", "clicks", "-epc", "revenue_per_send", "key", "-view_through_revenue"):
        # when
        first, count = report_rows_by_key(query=query, order=order, limit=5)
        rest, _ = report_rows_by_key(query=query, order=order, limit=None, offset=5)

        # then
        column = order.lstrip("-")
        values = [row.values[column] if column != "key" else row.key for row in first + rest]
        assert values == sorted(values, reverse=order.startswith("-")), order
        assert sorted(row.key for row in first + rest) == sorted(expected)
        assert count == len(expected)


def test_the_page_pages_and_the_full_csv_holds_every_key(admin_client_logged_in, history):
    # given
    params = {"dimension": "message", "start": FIRST.isoformat(), "end": LAST.isoformat()}
    expected = _daily_sums("message", FIRST, LAST)

    # when
    page = admin_client_logged_in.get("/admin/reports/daily/", {**params, "o": "-clicks"})
    export = admin_client_logged_in.get(page.context["csv_all_url"])

    # then
    assert page.status_code == 200
    assert export.status_code == 200
    table = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert {int(line["key"]) for line in table} == set(expected)
    assert [int(line["clicks"]) for line in table] == sorted(
        (values["clicks"] for values in expected.values()), reverse=True
    )
    assert sum(Decimal(line["view_through_revenue"]) for line in table) == sum(
        values["view_through_revenue"] for values in expected.values()
    )


def test_pages_of_keys_are_the_whole_ordering_cut_into_pieces(history):
    # given: the page ranks keys on the sort column alone and sums the rest for its keys only
    for start, end in ((FIRST, LAST), (date(2026, 1, 28), date(2026, 3, 31))):
        query = ReportQuery(dimension="message", start=start, end=end)
        for column in SORTABLE:
            for order in (column, f"-{column}"):
                whole, whole_count = report_rows_by_key(query=query, order=order, limit=None)

                # when
                pages = []
                offset = 0
                while True:
                    page, count = report_rows_by_key(
                        query=query, order=order, limit=4, offset=offset
                    )
                    if not page:
                        break
                    assert count == whole_count, order
                    pages.extend(page)
                    offset += 4

                # then: the same keys in the same order, with every value summed in full
                assert [(row.key, row.values) for row in pages] == [
                    (row.key, row.values) for row in whole
                ], (start, order)
                assert {row.key: _metrics(row.values) for row in pages} == _daily_sums(
                    "message", start, end
                )


def test_a_recompute_writes_only_the_rows_whose_values_changed(history):
    # given: a day with several message rows, one of whose conversions is reversed
    day = (
        DailyRollup.objects.filter(dimension="message", conversions__gt=0)
        .order_by("day", "key")
        .values_list("day", flat=True)
        .first()
    )
    assert day is not None
    before = _row_versions(day)
    conversion = Conversion.objects.filter(
        status__in=[ConversionStatus.APPROVED, ConversionStatus.PENDING],
        occurred_at__date=day,
        message__isnull=False,
    ).first()
    assert conversion is not None
    conversion.status = ConversionStatus.REVERSED
    conversion.save(update_fields=["status"])

    # when
    rollup_recompute_range(start=day, end=day)

    # then: the conversion's message, creative, campaign, offer and network rows were written
    # again, every other row of the day was left where it was
    after = _row_versions(day)
    assert set(after) == set(before)
    rewritten = {cell for cell in after if after[cell] != before[cell]}
    assert rewritten == {
        ("message", conversion.message_id),
        ("creative", conversion.creative_id),
        ("campaign", conversion.campaign_id),
        ("offer", conversion.offer_id),
        ("network", conversion.network_id),
    }


def test_rows_kept_by_changes_equal_rows_rebuilt_from_nothing(history):
    # given: late data, a status change, a moved credit, and a message gone
    late = conversion_credited(history[1], _at(date(2026, 3, 2), 8), payout="12.50")
    changed = Conversion.objects.filter(status=ConversionStatus.PENDING).order_by("pk")[0]
    changed.status = ConversionStatus.REJECTED
    changed.save(update_fields=["status"])
    moved = Conversion.objects.exclude(pk__in=[late.pk, changed.pk]).filter(attributed=True)[1]
    moved.message = history[-2]
    moved.save(update_fields=["message"])
    gone = history[5]
    Conversion.objects.filter(message=gone).delete()
    Click.objects.filter(message_id=gone.pk).delete()
    Link.objects.filter(message=gone).delete()
    gone.delete()
    rollup_recompute_range(start=FIRST, end=LAST)
    kept = _stored_rows()

    # when
    DailyRollup.objects.all().delete()
    DailyTotal.objects.all().delete()
    PeriodRollup.objects.all().delete()
    rollup_recompute_range(start=FIRST, end=LAST)

    # then
    assert _stored_rows() == kept
    assert not DailyRollup.objects.filter(dimension="message", key=gone.pk).exists()


def _daily_sums(dimension: str, start: date, end: date) -> dict[int, dict[str, Any]]:
    grouped = (
        DailyRollup.objects.filter(dimension=dimension, day__gte=start, day__lte=end)
        .values("key")
        .annotate(**{name: Sum(name) for name in SUMMED})
    )
    return {item["key"]: _metrics(cast(dict[str, Any], item)) for item in grouped}


def _metrics(values: dict[str, Any]) -> dict[str, Any]:
    return {name: values[name] or 0 for name in SUMMED}


def _row_versions(day: date) -> dict[tuple[str, int], str]:
    """Where each row of the day is stored: a row written again moves (its `ctid`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT dimension, key, ctid::text FROM reports_dailyrollup WHERE day = %s", [day]
        )
        return {(dimension, key): ctid for dimension, key, ctid in cursor.fetchall()}


def _stored_rows() -> tuple[set[tuple], set[tuple], set[tuple]]:
    return (
        set(DailyRollup.objects.values_list("day", "dimension", "key", *SUMMED)),
        set(DailyTotal.objects.values_list("day", "dimension", "keys", *SUMMED)),
        _period_rows(),
    )


def _period_rows() -> set[tuple]:
    return set(
        PeriodRollup.objects.values_list("period", "start", "dimension", "key", "days", *SUMMED)
    )


def _days_of(period: str, start: date) -> list[date]:
    if period == DAY:
        return [start]
    days = [start]
    while True:
        following = days[-1] + timedelta(days=1)
        if following.month != start.month:
            break
        if period == "dekad" and following.day in (11, 21):
            break
        days.append(following)
    return days


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
