import os
import time
from datetime import timedelta
from typing import cast

import pytest
import redis
from django.utils import timezone

from attribution.models import Network, Postback
from tests.factories import NetworkFactory


@pytest.fixture
def spool(settings, tmp_path):
    settings.CLICK_SPOOL_DIR = tmp_path / "spool"
    settings.CLICK_SPOOL_DIR.mkdir()
    return settings.CLICK_SPOOL_DIR


def _postback_waiting_since(minutes: int) -> None:
    network = cast(Network, NetworkFactory())
    postback = Postback.objects.create(network=network, method="GET", query_string="click_id=a")
    Postback.objects.filter(pk=postback.pk).update(
        received_at=timezone.now() - timedelta(minutes=minutes)
    )


@pytest.mark.django_db
def test_healthz_says_ok_when_nothing_waits(client, spool):
    # given: a postback received a moment ago is normal
    _postback_waiting_since(minutes=0)

    # when
    response = client.get("/healthz")

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["queues"]["stuck"] is False
    assert body["queues"]["postbacks_waiting"] == 1


@pytest.mark.django_db
def test_healthz_reports_a_postback_stuck_for_ten_minutes(client, spool):
    # given
    _postback_waiting_since(minutes=10)

    # when
    relaxed = client.get("/healthz")
    strict = client.get("/healthz?strict=1")

    # then: still 200 for the load balancer, 503 for a strict monitor
    assert relaxed.status_code == 200
    body = relaxed.json()
    assert body["status"] == "degraded"
    assert body["queues"]["stuck"] is True
    assert body["queues"]["oldest_postback_seconds"] >= 600
    assert "postback" in body["queues"]["reasons"][0]
    assert strict.status_code == 503


@pytest.mark.django_db
def test_healthz_reports_a_queue_deeper_than_the_threshold(client, settings, spool):
    # given
    settings.HEALTH_QUEUE_DEPTH_MAX = 2
    queue_key = settings.REDIS_KEY_PREFIX + settings.CELERY_TASK_DEFAULT_QUEUE
    connection = redis.Redis.from_url(settings.REDIS_URL)
    connection.lpush(queue_key, "health-test-1", "health-test-2", "health-test-3")

    try:
        # when
        response = client.get("/healthz")
    finally:
        connection.lrem(queue_key, 0, "health-test-1")
        connection.lrem(queue_key, 0, "health-test-2")
        connection.lrem(queue_key, 0, "health-test-3")

    # then
    body = response.json()
    assert body["status"] == "degraded"
    assert body["queues"]["queue_depths"][settings.CELERY_TASK_DEFAULT_QUEUE] >= 3
    assert any("queue" in reason for reason in body["queues"]["reasons"])


@pytest.mark.django_db
def test_healthz_reports_clicks_left_in_the_spool(client, spool):
    # given: a spool file nobody drained, last written two minutes ago
    path = spool / "clicks-host-1-0001.log"
    path.write_bytes(b'{"c": "x"}\n')
    two_minutes_ago = time.time() - 120
    os.utime(path, (two_minutes_ago, two_minutes_ago))

    # when
    response = client.get("/healthz")

    # then
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["queues"]["click_spool_bytes"] == 11
    assert any("spool" in reason for reason in body["queues"]["reasons"])
