"""The admin home page: today against the same weekday last week, and the backlogs."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from reports.services import rollup_recompute_day
from tests.factories import TEST_POSTBACK_TOKEN, CreativeFactory, OfferFactory
from tests.reports.helpers import (
    clicks_made,
    conversion_credited,
    conversion_unattributed,
    message_sent,
)

TODAY = date(2026, 3, 11)
LAST_WEEK = TODAY - timedelta(days=7)
NOW = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def figure(page: str, name: str) -> tuple[str, str]:
    row = re.search(rf'<tr id="dashboard-{name}">(.*?)</tr>', page, re.S)
    assert row is not None, name
    today = re.search(r'class="number today">([^<]*)<', row.group(1))
    last_week = re.search(r'class="number last-week">([^<]*)<', row.group(1))
    assert today is not None and last_week is not None
    return today.group(1), last_week.group(1)


@pytest.mark.django_db
def test_the_dashboard_shows_today_against_the_same_weekday_last_week(
    admin_client_logged_in, client
):
    # given: a small known history on both days, and one the day before (not shown)
    creative = CreativeFactory.create()
    offer = OfferFactory.create()
    with time_machine.travel(NOW, tick=False):
        message, link = message_sent(creative=creative, offer=offer, sent_at=at(TODAY, 9))
        message_sent(creative=creative, offer=offer, sent_at=at(TODAY, 10))
        clicks_made(link, at(TODAY, 11), count=3)
        clicks_made(link, at(TODAY, 11), is_bot=True)
        clicks_made(link, at(TODAY, 12), count=2, is_preview=True)
        clicks_made(link, at(TODAY - timedelta(days=1), 12), count=5)
        conversion_credited(message, at(TODAY, 13), payout="12.50")
        conversion_credited(message, at(TODAY, 13), payout="99.00", status="rejected")
        conversion_unattributed(offer.network, at(TODAY, 14), payout="5.00")
        old_message, old_link = message_sent(
            creative=creative, offer=offer, sent_at=at(LAST_WEEK, 9)
        )
        clicks_made(old_link, at(LAST_WEEK, 10))
        clicks_made(old_link, at(LAST_WEEK, 10), is_bot=True, is_preview=True)
        conversion_credited(old_message, at(LAST_WEEK, 11), payout="10.00")
        for day in (TODAY, LAST_WEEK, TODAY - timedelta(days=1)):
            rollup_recompute_day(day=day)
        # and one postback waiting for a worker
        waiting = client.get(
            f"/postback/{offer.network.slug}/", {"token": TEST_POSTBACK_TOKEN, "click_id": "x"}
        )
        assert waiting.status_code == 200

    # when
    with time_machine.travel(NOW, tick=False):
        response = admin_client_logged_in.get("/admin/")

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "<title>Dashboard | creditflow admin</title>" in page
    assert figure(page, "sends") == ("2", "1")
    assert figure(page, "human_clicks") == ("3", "1")
    assert figure(page, "bot_clicks") == ("1", "1")
    assert figure(page, "preview_clicks") == ("2", "0")
    assert figure(page, "conversions") == ("2", "1")
    assert figure(page, "revenue") == ("17.50", "10.00")
    postbacks = re.search(r'<tr id="backlog-postbacks_waiting">.*?<td[^>]*>(\d+)<', page, re.S)
    assert postbacks is not None and postbacks.group(1) == "1"
    assert 'id="backlog-click_spool_bytes"' in page
    assert re.search(r'id="backlog-queue_depth[^"]*"', page)
    assert "/admin/reports/daily/?dimension=campaign" in page


@pytest.mark.django_db
def test_the_dashboard_of_an_empty_installation_shows_zeros(admin_client_logged_in):
    # when
    response = admin_client_logged_in.get("/admin/")

    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert figure(page, "sends") == ("0", "0")
    assert figure(page, "revenue") == ("0.00", "0.00")
    assert "creditflow" in page
