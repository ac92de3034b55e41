import os
import time
from datetime import timedelta
from pathlib import Path
from typing import cast

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from attribution import metrics as attribution_metrics
from attribution.models import Network, Postback
from attribution.services.processing import postback_process
from attribution.views import postback_intake
from config.celery_app import app as celery_app
from config.logging import request_id_var
from reports.models import RollupWatermark
from tests.factories import TEST_POSTBACK_TOKEN, ClickFactory, LinkFactory, NetworkFactory
from tracking import metrics as tracking_metrics
from tracking.models import ClickSpoolOffset, Link
from tracking.services.spool import spool_writer
from tracking.views import redirect


def _scrape(client, **headers) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@pytest.mark.django_db
def test_metrics_are_refused_to_anonymous_and_non_staff_users(client):
    # given
    outsider = get_user_model().objects.create_user(username="outsider", password="x" * 12)

    # when
    anonymous = client.get("/metrics")
    client.force_login(outsider)
    logged_in = client.get("/metrics")

    # then
    assert anonymous.status_code == 403
    assert logged_in.status_code == 403
    assert "error" in logged_in.json()


@pytest.mark.django_db
@override_settings(METRICS_TOKEN="scrape-token-0123456789")
def test_metrics_accept_the_bearer_token_and_only_it(client):
    # when
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    right = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")

    # then
    assert wrong.status_code == 403
    assert right.status_code == 200
    assert right["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
@override_settings(METRICS_TOKEN="")
def test_an_empty_metrics_token_opens_nothing(client):
    # when
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer ")

    # then
    assert response.status_code == 403


@pytest.mark.django_db
def test_metrics_count_redirect_and_postback_outcomes(admin_client_logged_in):
    # given
    before = _scrape(admin_client_logged_in)

    # when
    tracking_metrics.redirect_outcome("redirect")
    tracking_metrics.redirect_outcome("redirect")
    tracking_metrics.redirect_outcome("not_found")
    tracking_metrics.redirect_outcome("no-such-outcome")
    attribution_metrics.postback_outcome("accepted")
    attribution_metrics.postback_outcome("forbidden")
    attribution_metrics.postback_processed("attributed")
    after = _scrape(admin_client_logged_in)

    # then
    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("creditflow_redirects_total", outcome="redirect") == 2
    assert delta("creditflow_redirects_total", outcome="not_found") == 1
    assert delta("creditflow_redirects_total", outcome="error") == 1
    assert delta("creditflow_postbacks_total", outcome="accepted") == 1
    assert delta("creditflow_postbacks_total", outcome="forbidden") == 1
    assert delta("creditflow_postbacks_processed_total", outcome="attributed") == 1


@pytest.mark.django_db
def test_metrics_report_the_click_spool_and_queue_depth(admin_client_logged_in):
    # given: three spool files of 100 bytes, the drainer 40 bytes into one of them,
    # and two tasks waiting for a worker
    before = _scrape(admin_client_logged_in)
    spool = Path(settings.CLICK_SPOOL_DIR)
    spool.mkdir(parents=True, exist_ok=True)
    paths = [spool / f"clicks-zz-metrics-test-{index}.log" for index in range(3)]
    for path in paths:
        path.write_bytes(b"x" * 99 + b"\n")
    ClickSpoolOffset.objects.create(file_name=paths[0].name, offset=40)
    old = time.time() - 90
    os.utime(paths[1], (old, old))
    queue_key = settings.REDIS_KEY_PREFIX + settings.CELERY_TASK_DEFAULT_QUEUE
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.lpush(queue_key, "metrics-test-1", "metrics-test-2")

    try:
        # when
        after = _scrape(admin_client_logged_in)
    finally:
        client.lrem(queue_key, 0, "metrics-test-1")
        client.lrem(queue_key, 0, "metrics-test-2")
        for path in paths:
            path.unlink()

    # then
    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("creditflow_click_spool_files") == 3
    assert delta("creditflow_click_spool_bytes") == 260
    assert after[("creditflow_click_spool_oldest_pending_seconds", ())] >= 90
    assert delta("creditflow_queue_depth", queue=settings.CELERY_TASK_DEFAULT_QUEUE) == 2
    assert after[("creditflow_metrics_source_up", (("source", "redis"),))] == 1


@pytest.mark.django_db
def test_metrics_report_waiting_postbacks_and_rollup_age(admin_client_logged_in):
    # given: no rollup yet, then a postback waiting ten minutes and rollups two minutes old
    empty = _scrape(admin_client_logged_in)
    network = cast(Network, NetworkFactory())
    now = timezone.now()
    Postback.objects.create(network=network, method="GET", query_string="click_id=abc")
    Postback.objects.filter(network=network).update(received_at=now - timedelta(minutes=10))
    RollupWatermark.objects.create(name="touched", scanned_until=now - timedelta(minutes=2))

    # when
    after = _scrape(admin_client_logged_in)

    # then
    assert ("creditflow_rollup_age_seconds", ()) not in empty
    assert after[("creditflow_postbacks_waiting", ())] == 1
    assert 600 <= after[("creditflow_postback_oldest_waiting_seconds", ())] < 660
    assert 120 <= after[("creditflow_rollup_age_seconds", ())] < 180


@pytest.mark.django_db
def test_metrics_still_answer_when_redis_is_down(admin_client_logged_in):
    # when
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        samples = _scrape(admin_client_logged_in)

    # then
    assert samples[("creditflow_metrics_source_up", (("source", "redis"),))] == 0
    assert samples[("creditflow_metrics_source_up", (("source", "database"),))] == 1


@pytest.mark.slow
def test_a_task_carries_the_request_id_to_the_worker_and_its_latency_is_measured(
    worker, admin_client_logged_in
):
    # given: a request (its id set as the middleware sets it) enqueues a task
    token = request_id_var.set("req-propagation-test-1")
    try:
        celery_app.send_task("reports.recompute_touched")
    finally:
        request_id_var.reset(token)

    # when: the worker runs it
    worker.wait_for("succeeded", timeout=30)
    deadline = time.monotonic() + 10
    while True:
        samples = _scrape(admin_client_logged_in)
        key = (
            "creditflow_task_duration_seconds_count",
            (("state", "SUCCESS"), ("task", "reports.recompute_touched")),
        )
        if samples.get(key) or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    # then: the worker's log line of that task carries the request's id
    task_lines = [line for line in worker.output().splitlines() if "succeeded" in line]
    assert any("[req-propagation-test-1]" in line for line in task_lines), worker.output()[-2000:]
    assert samples[key] >= 1
    wait_key = (
        "creditflow_task_queue_wait_seconds_count",
        (("task", "reports.recompute_touched"),),
    )
    assert samples[wait_key] >= 1


@pytest.mark.django_db
def test_decorated_views_count_what_they_answered(admin_client_logged_in, rf, settings, tmp_path):
    # given: the real redirect and postback views, decorated as the call sites are
    settings.CLICK_SPOOL_DIR = tmp_path / "spool"
    redirect_view = redirect  # decorated with count_redirect_answers where defined
    postback_view = postback_intake  # decorated with count_postback_answers where defined
    link = cast(Link, LinkFactory())
    network = cast(Network, NetworkFactory())
    before = _scrape(admin_client_logged_in)

    # when
    answers = [
        redirect_view(rf.get(f"/{link.code}"), code=link.code).status_code,
        redirect_view(rf.get("/nosuchcode"), code="nosuchcode").status_code,
        postback_view(
            rf.get(f"/postback/{network.slug}/?token=wrong"), network_slug=network.slug
        ).status_code,
        postback_view(rf.get("/postback/nobody/"), network_slug="nobody").status_code,
    ]
    spool_writer.close()
    after = _scrape(admin_client_logged_in)

    # then
    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert answers == [302, 404, 403, 404]
    assert delta("creditflow_redirects_total", outcome="redirect") == 1
    assert delta("creditflow_redirects_total", outcome="not_found") == 1
    assert delta("creditflow_postbacks_total", outcome="forbidden") == 1
    assert delta("creditflow_postbacks_total", outcome="unknown_network") == 1


@pytest.mark.django_db
def test_postbacks_through_the_intake_and_the_worker_show_in_metrics(
    admin_client_logged_in, client, settings
):
    # given: one postback for a known click, one for an unknown click, one malformed
    settings.CLICK_VISIBILITY_GRACE_SECONDS = 0
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    before = _scrape(admin_client_logged_in)
    url = f"/postback/{network.slug}/"
    answers = [
        client.get(url, {"token": TEST_POSTBACK_TOKEN, "click_id": click.click_id}),
        client.get(url, {"token": TEST_POSTBACK_TOKEN, "click_id": "no-such-click"}),
        client.get(url, {"token": "wrong", "click_id": click.click_id}),
    ]
    # Valid at the intake, refused by the worker: stored as received, then decided invalid.
    bad_payout = Postback.objects.create(
        network=network, method="GET", query_string="click_id=abc&payout=not-a-number"
    )

    # when: a worker's batch decides them
    postback_process(postback_id=answers[0].json()["postback_id"], batch_size=10)
    after = _scrape(admin_client_logged_in)

    # then
    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert [answer.status_code for answer in answers] == [200, 200, 403]
    assert Postback.objects.get(pk=bad_payout.pk).status == Postback.Status.INVALID
    assert delta("creditflow_postbacks_total", outcome="accepted") == 2
    assert delta("creditflow_postbacks_total", outcome="forbidden") == 1
    assert delta("creditflow_postbacks_processed_total", outcome="attributed") == 1
    assert delta("creditflow_postbacks_processed_total", outcome="unattributed") == 1
    assert delta("creditflow_postbacks_processed_total", outcome="invalid") == 1
