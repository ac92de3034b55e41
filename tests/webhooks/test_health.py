"""`/healthz` tells operators when webhook deliveries wait for a worker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import WebhookDeliveryFactory

pytestmark = pytest.mark.django_db


def test_healthz_reports_a_delivery_due_for_ten_minutes(client, settings, tmp_path):
    # given: a delivery due ten minutes ago that no worker has taken
    settings.CLICK_SPOOL_DIR = tmp_path / "spool"
    settings.CLICK_SPOOL_DIR.mkdir()
    WebhookDeliveryFactory.create(next_attempt_at=timezone.now() - timedelta(minutes=10))
    # when
    response = client.get("/healthz")
    # then
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["queues"]["webhook_deliveries_due"] == 1
    assert body["queues"]["oldest_webhook_due_seconds"] >= 600
    assert any("webhook delivery" in reason for reason in body["queues"]["reasons"])
