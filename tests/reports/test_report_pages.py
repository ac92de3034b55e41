import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from reports.models import RollupJob
from reports.services import rollup_recompute_range
from tests.factories import CreativeFactory, OfferFactory
from tests.reports.helpers import clicks_made, conversion_credited, message_sent

DAY = date(2026, 3, 2)
REPORT_URL = "/admin/reports/daily/"
API_URL = "/api/v1/reports/daily/"


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.fixture
def two_offers(db):
    """Offer A: 2 sends, 4 unique clicks, 1 conversion of 8.00 on DAY.
    Offer B: 1 send, 1 click, 2 conversions of 30.00 on the next day."""
    offer_a = OfferFactory(name="Alpha Loans")
    offer_b = OfferFactory(name="Beta Cards", network=offer_a.network)
    creative = CreativeFactory()
    message_1, link_1 = message_sent(creative=creative, offer=offer_a, sent_at=at(DAY, 9))
    _, link_2 = message_sent(creative=creative, offer=offer_a, sent_at=at(DAY, 10))
    message_3, link_3 = message_sent(
        creative=creative, offer=offer_b, sent_at=at(DAY + timedelta(days=1), 9)
    )
    clicks_made(link_1, at(DAY, 9), count=3)
    clicks_made(link_2, at(DAY, 10))
    clicks_made(link_2, at(DAY, 10), is_bot=True)
    clicks_made(link_3, at(DAY + timedelta(days=1), 9))
    conversion_credited(message_1, at(DAY, 12), payout="8.00")
    conversion_credited(message_3, at(DAY + timedelta(days=1), 12), payout="10.00")
    conversion_credited(message_3, at(DAY + timedelta(days=1), 13), payout="20.00")
    rollup_recompute_range(start=DAY, end=DAY + timedelta(days=1))
    return offer_a, offer_b


def report_params(**extra: str) -> dict[str, str]:
    return {
        "dimension": "offer",
        "start": DAY.isoformat(),
        "end": (DAY + timedelta(days=1)).isoformat(),
        **extra,
    }


def test_report_page_shows_totals_chart_and_rows_sorted_by_revenue(
    admin_client_logged_in, two_offers
):
    # given
    offer_a, offer_b = two_offers

    # when
    response = admin_client_logged_in.get(REPORT_URL, report_params())

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="report-chart"' in html
    assert html.count("<polyline") == 3
    rows = response.context["rows"]
    assert [row.key for row in rows] == [offer_b.pk, offer_a.pk]
    assert rows[1].values["epc"] == Decimal("2.0000")  # 8.00 / 4 unique clicks
    assert rows[1].values["revenue_per_send"] == Decimal("4.0000")  # 8.00 / 2 sends
    assert rows[0].values["epc"] == Decimal("30.0000")
    assert "Alpha Loans" in html and "Beta Cards" in html
    totals = response.context["totals"]
    assert (totals["sends"], totals["clicks"], totals["bot_clicks"], totals["conversions"]) == (
        3,
        5,
        1,
        3,
    )
    assert totals["revenue"] == Decimal("38")


def test_report_page_sorts_by_a_column_given_in_the_query(admin_client_logged_in, two_offers):
    # given
    offer_a, offer_b = two_offers

    # when
    response = admin_client_logged_in.get(REPORT_URL, report_params(o="-clicks"))

    # then
    assert [row.key for row in response.context["rows"]] == [offer_a.pk, offer_b.pk]


def test_report_page_for_one_key_shows_only_its_rows(admin_client_logged_in, two_offers):
    # given: the link an offer's admin page shows
    offer_a, _ = two_offers

    # when
    response = admin_client_logged_in.get(REPORT_URL, report_params(key=str(offer_a.pk)))

    # then
    assert response.status_code == 200
    assert [row.key for row in response.context["rows"]] == [offer_a.pk]
    assert "Alpha Loans" in response.content.decode()


def test_csv_export_holds_exactly_the_rows_shown(admin_client_logged_in, two_offers):
    # given
    offer_a, _ = two_offers
    page = admin_client_logged_in.get(REPORT_URL, report_params(o="-clicks"))

    # when
    response = admin_client_logged_in.get(page.context["csv_url"])

    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [int(line["key"]) for line in table] == [row.key for row in page.context["rows"]]
    assert (table[0]["key"], table[0]["name"]) == (str(offer_a.pk), "Alpha Loans")
    assert (table[0]["clicks"], table[0]["unique_clicks"], table[0]["revenue"]) == (
        "4",
        "4",
        "8.0000",
    )
    assert table[0]["epc"] == "2.0000"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"start": "2026-03-10", "end": "2026-03-01"}, "after the end"),
        ({"start": "yesterday"}, "not a YYYY-MM-DD date"),
        ({"start": "2024-01-01", "end": "2026-01-01"}, "longer than 366 days"),
        ({"dimension": "planet"}, "Unknown dimension"),
        ({"o": "password"}, "Cannot sort by"),
    ],
)
def test_report_page_and_csv_explain_bad_input_without_failing(
    admin_client_logged_in, params, reason
):
    # when
    page = admin_client_logged_in.get(REPORT_URL, params)
    export = admin_client_logged_in.get(REPORT_URL + "csv/", params)

    # then
    assert page.status_code == 400
    assert reason in page.content.decode()
    assert export.status_code == 400
    assert reason in export.content.decode()


def test_report_page_needs_a_staff_login(client, db):
    # when
    response = client.get(REPORT_URL)

    # then
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_admin_index_and_rollup_pages_open(admin_client_logged_in, two_offers):
    # when
    pages = [
        admin_client_logged_in.get("/admin/"),
        admin_client_logged_in.get("/admin/reports/dailyrollup/"),
        admin_client_logged_in.get("/admin/reports/rollupjob/"),
        admin_client_logged_in.get("/admin/reports/rollupjob/add/?start=2026-03-01&end=2026-03-02"),
        admin_client_logged_in.get("/admin/reports/rollupwatermark/"),
        admin_client_logged_in.get("/admin/reports/dailyreport/", follow=True),
    ]

    # then
    assert [page.status_code for page in pages] == [200] * 6
    assert "/admin/reports/dailyreport/" in pages[0].content.decode()
    assert pages[-1].redirect_chain[-1][0].startswith(REPORT_URL)


def test_recompute_form_records_a_job_for_the_range(admin_client_logged_in, db):
    # when
    response = admin_client_logged_in.post(
        "/admin/reports/rollupjob/add/", {"start": "2026-03-01", "end": "2026-03-07"}
    )

    # then
    assert response.status_code == 302
    job = RollupJob.objects.get()
    assert (job.start, job.end, job.days_total, job.status) == (
        date(2026, 3, 1),
        date(2026, 3, 7),
        7,
        "queued",
    )


def test_recompute_form_refuses_an_inverted_range(admin_client_logged_in, db):
    # when
    response = admin_client_logged_in.post(
        "/admin/reports/rollupjob/add/", {"start": "2026-03-07", "end": "2026-03-01"}
    )

    # then
    assert response.status_code == 200
    assert "The start is after the end." in response.content.decode()
    assert not RollupJob.objects.exists()


def test_report_api_answers_the_cells_of_each_day(api_client, two_offers):
    # given
    offer_a, offer_b = two_offers

    # when
    response = api_client.get(API_URL, report_params())

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    first, second = body["results"]
    assert first == {
        "day": "2026-03-02",
        "dimension": "offer",
        "key": offer_a.pk,
        "name": "Alpha Loans",
        "sends": 2,
        "clicks": 4,
        "unique_clicks": 4,
        "bot_clicks": 1,
        "preview_clicks": 0,
        "conversions": 1,
        "rejected_conversions": 0,
        "reversed_conversions": 0,
        "revenue": "8.0000",
        "reversed_revenue": "0.0000",
        "view_through_conversions": 0,
        "view_through_revenue": "0.0000",
        "epc": "2.0000",
        "revenue_per_send": "4.0000",
    }
    assert (second["day"], second["key"], second["revenue"], second["epc"]) == (
        "2026-03-03",
        offer_b.pk,
        "30.0000",
        "30.0000",
    )


@pytest.mark.parametrize(
    "params",
    [
        {"dimension": "offer", "start": "2026-03-02"},
        {"dimension": "galaxy", "start": "2026-03-01", "end": "2026-03-02"},
        {"dimension": "offer", "start": "2026-13-01", "end": "2026-03-01"},
        {"dimension": "offer", "start": "2026-03-01", "end": "2026-03-02", "key": "x"},
        {"dimension": "offer", "start": "2026-03-01", "end": "2026-03-02", "key": "0"},
    ],
)
def test_report_api_answers_400_with_a_reason_for_bad_input(api_client, params):
    # when
    response = api_client.get(API_URL, params)

    # then
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.parametrize(
    ("start", "end"), [("2026-03-05", "2026-03-01"), ("2020-01-01", "2026-03-01")]
)
def test_report_api_takes_any_range_a_reversed_one_has_no_rows(api_client, start, end):
    # when: paginated stored cells, so no range is too long; a start after the end has no days
    response = api_client.get(API_URL, {"dimension": "offer", "start": start, "end": end})

    # then
    assert response.status_code == 200, response.json()
    assert response.json()["results"] == []


def test_report_api_is_for_staff_only(client, db):
    # when
    response = client.get(API_URL, report_params())

    # then
    assert response.status_code in (401, 403)


def test_message_creative_campaign_offer_and_network_pages_link_to_their_report_rows(
    admin_client_logged_in, two_offers
):
    # given
    offer_a, _ = two_offers
    message = offer_a.messages.first()
    pages = {
        "message": f"/admin/tracking/message/{message.pk}/change/",
        "creative": f"/admin/tracking/creative/{message.creative_id}/change/",
        "campaign": f"/admin/tracking/campaign/{message.campaign_id}/change/",
        "offer": f"/admin/attribution/offer/{offer_a.pk}/change/",
        "network": f"/admin/attribution/network/{offer_a.network_id}/change/",
    }
    keys = {
        "message": message.pk,
        "creative": message.creative_id,
        "campaign": message.campaign_id,
        "offer": offer_a.pk,
        "network": offer_a.network_id,
    }

    for dimension, url in pages.items():
        # when
        response = admin_client_logged_in.get(url)

        # then
        assert response.status_code == 200, url
        link = f"{REPORT_URL}?dimension={dimension}&amp;key={keys[dimension]}"
        assert link in response.content.decode(), url


def test_recompute_action_on_rollup_rows_queues_a_job_for_their_days(
    admin_client_logged_in, two_offers
):
    # given
    from reports.models import DailyRollup

    selected = DailyRollup.objects.filter(dimension="offer").values_list("pk", flat=True)

    # when
    response = admin_client_logged_in.post(
        "/admin/reports/dailyrollup/",
        {"action": "recompute_selected_days", "_selected_action": [str(pk) for pk in selected]},
    )

    # then
    assert response.status_code == 302
    job = RollupJob.objects.get()
    assert (job.start, job.end, job.days_total) == (DAY, DAY + timedelta(days=1), 2)


def test_report_page_and_csv_show_the_top_rows_and_say_how_many_there_are(
    admin_client_logged_in, db
):
    # given: more keys than the table shows
    from reports.models import DailyRollup
    from reports.selectors import TABLE_LIMIT

    DailyRollup.objects.bulk_create(
        DailyRollup(day=DAY, dimension="network", key=key, clicks=key)
        for key in range(1, TABLE_LIMIT + 3)
    )
    params = {"dimension": "network", "start": DAY.isoformat(), "end": DAY.isoformat()}

    # when
    page = admin_client_logged_in.get(REPORT_URL, {**params, "o": "-clicks"})
    export = admin_client_logged_in.get(page.context["csv_url"])

    # then
    assert page.status_code == 200
    assert f"The {TABLE_LIMIT} first of {TABLE_LIMIT + 2} rows" in page.content.decode()
    assert len(page.context["rows"]) == TABLE_LIMIT
    keys = [int(line["key"]) for line in csv.DictReader(io.StringIO(export.content.decode()))]
    assert keys == [row.key for row in page.context["rows"]]
    assert keys[0] == TABLE_LIMIT + 2


def test_report_page_rows_escape_names_link_each_key_and_mark_deleted_ones(
    admin_client_logged_in, two_offers
):
    # given: an offer whose name holds markup, and rows of an offer deleted since
    from reports.models import DailyRollup

    offer_a, _ = two_offers
    offer_a.name = '<b>Alpha & "Co"</b>'
    offer_a.save()
    DailyRollup.objects.create(day=DAY, dimension="offer", key=987654, clicks=1)

    # when
    response = admin_client_logged_in.get(REPORT_URL, report_params(o="key"))

    # then: the name shows as text, linked to its admin page and to its own report
    html = response.content.decode()
    assert "<b>Alpha" not in html
    assert (
        f'<a href="/admin/attribution/offer/{offer_a.pk}/change/">'
        "&lt;b&gt;Alpha &amp; &quot;Co&quot;&lt;/b&gt;</a>"
    ) in html
    only_this_one = (
        f"?dimension=offer&amp;start={DAY}&amp;end={DAY + timedelta(days=1)}&amp;key={offer_a.pk}"
    )
    assert f'href="{only_this_one}" title="Only this one">#{offer_a.pk}</a>' in html
    assert '<tr data-key="987654">\n        <td>#987654 (deleted)\n' in html
    assert "/attribution/offer/987654/change/" not in html
    # and each day of the chart names its value
    assert f"<title>{DAY}: 4</title>" in html
