"""The beat task and the admin's range recompute, run by a real Celery worker process."""

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import cast

import pytest

from reports.models import DailyRollup, RollupJob
from reports.tasks import recompute_touched
from tests.factories import CreativeFactory, OfferFactory
from tests.reports.helpers import clicks_made, conversion_credited, message_sent
from tracking.models import Creative

pytestmark = pytest.mark.slow


def wait_until(condition: Callable[[], bool], *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not true after {timeout}s")


def test_a_new_conversion_shows_in_the_rollups_after_the_every_minute_task(worker):
    # given: a message and a click, and a conversion the network just sent
    creative = cast(Creative, CreativeFactory())
    message, link = message_sent(
        creative=creative, offer=OfferFactory(), sent_at=datetime(2026, 6, 10, 9, tzinfo=UTC)
    )
    clicks_made(link, datetime(2026, 6, 10, 10, tzinfo=UTC))
    conversion_credited(message, datetime(2026, 6, 10, 11, tzinfo=UTC), payout="11.00")

    # when: beat fires the task (as it does every minute)
    recompute_touched.delay()

    # then
    wait_until(
        lambda: DailyRollup.objects.filter(
            day=date(2026, 6, 10), dimension="campaign", key=creative.campaign_id
        ).exists()
    )
    cell = DailyRollup.objects.get(
        day=date(2026, 6, 10), dimension="campaign", key=creative.campaign_id
    )
    assert (cell.sends, cell.clicks, cell.conversions, cell.revenue) == (1, 1, 1, Decimal("11"))


def test_a_range_recompute_asked_in_the_admin_runs_on_a_worker(worker, client, django_user_model):
    # given
    staff = django_user_model.objects.create_user(
        username="ops", password="ops-password-123", is_staff=True, is_superuser=True
    )
    client.force_login(staff)
    _, link = message_sent(
        creative=CreativeFactory(),
        offer=OfferFactory(),
        sent_at=datetime(2026, 6, 9, 9, tzinfo=UTC),
    )
    clicks_made(link, datetime(2026, 6, 11, 10, tzinfo=UTC), count=2)

    # when
    response = client.post(
        "/admin/reports/rollupjob/add/", {"start": "2026-06-08", "end": "2026-06-12"}
    )

    # then
    assert response.status_code == 302
    job = RollupJob.objects.get()
    wait_until(lambda: RollupJob.objects.filter(pk=job.pk, status="done").exists())
    job.refresh_from_db()
    assert (job.days_done, job.days_total) == (5, 5)
    assert DailyRollup.objects.get(day=date(2026, 6, 11), dimension="message").clicks == 2
    listing = client.get("/admin/reports/rollupjob/").content.decode()
    assert "5/5 days" in listing
