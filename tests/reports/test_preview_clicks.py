"""The report shows human clicks, previews and bots apart."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from tests.factories import ClickFactory, LinkFactory

DAY = "2026-03-02"


@pytest.mark.django_db
def test_previews_are_counted_apart_from_bots_and_people(api_client):
    # given: one link's person, bot and two previews on one day
    link = LinkFactory(message__sent_at=datetime(2026, 3, 2, 8, tzinfo=UTC))
    moment = datetime(2026, 3, 2, 9, tzinfo=UTC)
    ClickFactory(link=link, occurred_at=moment, user_agent="person")
    ClickFactory(link=link, occurred_at=moment, is_bot=True, flag_reason="rule:http-library")
    for reason in ("rule:slack", "behaviour:soon-after-send"):
        ClickFactory(link=link, occurred_at=moment, is_preview=True, flag_reason=reason)

    # when
    call_command("recompute_rollups", "--start", DAY, "--end", DAY, "--no-progress")
    response = api_client.get(
        "/api/v1/reports/daily/", {"dimension": "campaign", "start": DAY, "end": DAY}
    )

    # then
    row = response.json()["results"][0]
    assert (row["clicks"], row["bot_clicks"], row["preview_clicks"]) == (1, 3, 2)


@pytest.mark.django_db
def test_the_report_page_has_a_previews_column(admin_client_logged_in):
    # when
    response = admin_client_logged_in.get(
        "/admin/reports/daily/", {"dimension": "campaign", "start": DAY, "end": DAY}
    )

    # then
    assert response.status_code == 200
    assert "Of which previews" in response.content.decode()
