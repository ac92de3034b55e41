"""The report API pages and sorts on the server; counts and totals come from per-day totals."""

from datetime import UTC, date, datetime, timedelta

import pytest

from reports.models import DailyRollup, DailyTotal
from reports.selectors import API_ORDERINGS
from reports.services import rollup_recompute_range
from tests.factories import CreativeFactory, OfferFactory
from tests.reports.helpers import clicks_made, conversion_credited, message_sent

DAY = date(2026, 4, 6)
API_URL = "/api/v1/reports/daily/"


@pytest.fixture
def three_days_of_messages(db):
    """Five messages a day for three days; message n of a day has n clicks and converts for n."""
    offer = OfferFactory()
    creative = CreativeFactory()
    for offset in range(3):
        day = DAY + timedelta(days=offset)
        for n in range(1, 6):
            at = datetime(day.year, day.month, day.day, 8 + n, tzinfo=UTC)
            message, link = message_sent(creative=creative, offer=offer, sent_at=at)
            clicks_made(link, at, count=n)
            conversion_credited(message, at + timedelta(minutes=5), payout=f"{n + offset}.00")
    rollup_recompute_range(start=DAY, end=DAY + timedelta(days=2))


def get(api_client, **params):
    query = {
        "dimension": "message",
        "start": DAY.isoformat(),
        "end": (DAY + timedelta(days=2)).isoformat(),
        **params,
    }
    response = api_client.get(API_URL, query)
    assert response.status_code == 200, response.content
    return response.json()


def test_pages_walk_every_cell_once_in_day_and_key_order(api_client, three_days_of_messages):
    # when
    pages = [get(api_client, page_size="4", page=str(n)) for n in (1, 2, 3, 4)]

    # then
    rows = [(row["day"], row["key"]) for page in pages for row in page["results"]]
    assert [page["count"] for page in pages] == [15] * 4
    assert len(rows) == 15
    assert rows == sorted(rows)
    assert pages[0]["previous"] is None
    assert pages[3]["next"] is None
    assert "page=2" in pages[0]["next"]


def test_ordering_by_a_metric_sorts_across_days_on_the_server(api_client, three_days_of_messages):
    # when
    top = get(api_client, ordering="-revenue", page_size="3")
    bottom = get(api_client, ordering="revenue", page_size="2")

    # then: revenue n + day offset, so the biggest is message 5 of the last day
    assert [row["revenue"] for row in top["results"]] == ["7.0000", "6.0000", "6.0000"]
    assert top["results"][0]["day"] == (DAY + timedelta(days=2)).isoformat()
    assert [row["revenue"] for row in bottom["results"]] == ["1.0000", "2.0000"]
    assert top["count"] == 15


def test_ordering_by_key_descending(api_client, three_days_of_messages):
    # when
    body = get(api_client, ordering="-key", page_size="15")

    # then
    keys = [row["key"] for row in body["results"]]
    assert keys == sorted(keys, reverse=True)


def _documented_order(rows, ordering):
    """The API's order, computed here: by day then key, by key then day, or by the metric
    then day then key; a leading - reverses all of it."""
    column = ordering.removeprefix("-")

    def sort_key(row):
        if column == "day":
            return (row.day, row.key)
        if column == "key":
            return (row.key, row.day)
        return (getattr(row, column), row.day, row.key)

    ordered = sorted(rows, key=sort_key, reverse=ordering.startswith("-"))
    return [(row.day.isoformat(), row.key) for row in ordered]


def test_every_ordering_pages_through_every_cell_once_in_the_documented_order(
    api_client, three_days_of_messages
):
    # given: many ties (one send each, the same clicks on each day, no view-through)
    cells = list(DailyRollup.objects.filter(dimension="message"))
    assert len(cells) == 15

    for ordering in [f"{sign}{name}" for name in API_ORDERINGS for sign in ("", "-")]:
        # when: pages of 4, and the whole range in one page
        pages = [
            get(api_client, ordering=ordering, page_size="4", page=str(n)) for n in (1, 2, 3, 4)
        ]
        whole = get(api_client, ordering=ordering, page_size="100")

        # then
        paged = [(row["day"], row["key"]) for page in pages for row in page["results"]]
        expected = _documented_order(cells, ordering)
        assert paged == expected, ordering
        assert [(row["day"], row["key"]) for row in whole["results"]] == expected, ordering


def test_a_range_wider_than_the_stored_days_pages_the_same_cells(
    api_client, three_days_of_messages
):
    # given: the last day's cells alone, and days without rows around the three
    last_day = [
        row
        for row in DailyRollup.objects.filter(dimension="message")
        if row.day == DAY + timedelta(days=2)
    ]
    everything = list(DailyRollup.objects.filter(dimension="message"))

    # when
    one_day = get(
        api_client,
        ordering="-clicks",
        start=(DAY + timedelta(days=2)).isoformat(),
        end=(DAY + timedelta(days=2)).isoformat(),
        page_size="2",
        page="2",
    )
    wide = get(api_client, ordering="sends", start="2026-01-01", end="2026-12-31", page_size="100")

    # then
    assert [(row["day"], row["key"]) for row in one_day["results"]] == _documented_order(
        last_day, "-clicks"
    )[2:4]
    assert one_day["count"] == 5
    assert [(row["day"], row["key"]) for row in wide["results"]] == _documented_order(
        everything, "sends"
    )
    assert wide["count"] == 15


def test_a_page_past_the_last_answers_404(api_client, three_days_of_messages):
    # when
    response = api_client.get(
        API_URL,
        {
            "dimension": "message",
            "start": DAY.isoformat(),
            "end": (DAY + timedelta(days=2)).isoformat(),
            "ordering": "-revenue",
            "page_size": "10",
            "page": "3",
        },
    )

    # then
    assert response.status_code == 404


@pytest.mark.parametrize("ordering", ["name", "-epc", "day,key", "--day"])
def test_an_unknown_ordering_answers_400_naming_it(api_client, db, ordering):
    # when
    response = api_client.get(
        API_URL,
        {"dimension": "offer", "start": "2026-04-01", "end": "2026-04-02", "ordering": ordering},
    )

    # then
    assert response.status_code == 400
    assert "order" in response.json()["error"]


def test_each_day_keeps_its_totals_and_key_count(three_days_of_messages):
    # then
    total = DailyTotal.objects.get(dimension="message", day=DAY + timedelta(days=1))
    assert (total.keys, total.sends, total.clicks, total.conversions) == (5, 5, 15, 5)
    assert str(total.revenue) == "20.0000"
    assert DailyTotal.objects.get(dimension="offer", day=DAY).keys == 1


def test_recomputing_a_day_replaces_its_totals(three_days_of_messages):
    # when
    rollup_recompute_range(start=DAY, end=DAY)

    # then
    assert DailyTotal.objects.filter(day=DAY, dimension="message").count() == 1
    assert DailyTotal.objects.get(day=DAY, dimension="message").clicks == 15


def test_report_page_totals_match_the_rows(admin_client_logged_in, three_days_of_messages):
    # when
    response = admin_client_logged_in.get(
        "/admin/reports/daily/",
        {
            "dimension": "message",
            "start": DAY.isoformat(),
            "end": (DAY + timedelta(days=2)).isoformat(),
        },
    )

    # then
    assert response.status_code == 200
    totals = response.context["totals"]
    rows = response.context["rows"]
    assert totals["clicks"] == sum(row.clicks for row in rows) == 45
    assert totals["revenue"] == sum(row.revenue for row in rows)
