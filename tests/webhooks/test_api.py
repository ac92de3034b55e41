"""`/api/v1/webhooks/`: endpoints, secrets shown once, refusals, staff only."""

from __future__ import annotations

import base64

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import WebhookAttemptFactory, WebhookEndpointFactory
from webhooks.models import WebhookDelivery
from webhooks.services.resend import webhook_resend_run

pytestmark = pytest.mark.django_db


def test_creating_an_endpoint_answers_its_id_and_a_secret_once(api_client, private_hosts_allowed):
    # when
    response = api_client.post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/hook", "events": ["conversion.decided"]},
        format="json",
    )
    # then
    assert response.status_code == 201
    created = response.json()
    assert created["id"] and created["enabled"] is True
    assert created["events"] == ["conversion.decided"]
    prefix, key = created["secret"].split("_", 1)
    assert prefix == "whsec" and len(base64.b64decode(key)) == 32
    detail = api_client.get(f"/api/v1/webhooks/{created['id']}/").json()
    listed = api_client.get("/api/v1/webhooks/").json()["results"]
    assert "secret" not in detail and all("secret" not in row for row in listed)
    assert detail["url"] == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8000/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_a_url_on_a_private_address_is_refused(api_client, url):
    # when
    response = api_client.post("/api/v1/webhooks/", {"url": url, "events": ["*"]}, format="json")
    # then
    assert response.status_code == 400
    assert "url" in response.json()["fields"]
    assert "public" in response.json()["error"]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "not a url"])
def test_only_http_urls_are_accepted(api_client, url):
    response = api_client.post("/api/v1/webhooks/", {"url": url, "events": ["*"]}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()["fields"]


def test_unknown_events_are_refused(api_client, private_hosts_allowed):
    response = api_client.post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/", "events": ["conversion.eaten"]},
        format="json",
    )
    assert response.status_code == 400
    assert "events" in response.json()["fields"]


def test_patch_changes_url_events_and_enabled(api_client, private_hosts_allowed):
    # given
    endpoint = WebhookEndpointFactory.create(url="http://127.0.0.1:9/a")
    # when
    response = api_client.patch(
        f"/api/v1/webhooks/{endpoint.pk}/",
        {"url": "http://127.0.0.1:9/b", "events": ["conversion.updated"], "enabled": False},
        format="json",
    )
    # then
    assert response.status_code == 200, response.content
    shown = api_client.get(f"/api/v1/webhooks/{endpoint.pk}/").json()
    assert shown["url"] == "http://127.0.0.1:9/b"
    assert shown["events"] == ["conversion.updated"]
    assert shown["enabled"] is False
    assert shown["disabled_reason"] == "disabled by an operator"
    # when: enabled again
    api_client.patch(f"/api/v1/webhooks/{endpoint.pk}/", {"enabled": True}, format="json")
    # then
    shown = api_client.get(f"/api/v1/webhooks/{endpoint.pk}/").json()
    assert shown["enabled"] is True and shown["disabled_reason"] == ""


def test_patch_to_a_private_address_is_refused(api_client):
    endpoint = WebhookEndpointFactory.create(url="https://hooks.example.com/a")
    response = api_client.patch(
        f"/api/v1/webhooks/{endpoint.pk}/", {"url": "http://10.0.0.1/"}, format="json"
    )
    assert response.status_code == 400
    endpoint.refresh_from_db()
    assert endpoint.url == "https://hooks.example.com/a"


def test_the_delivery_log_lists_attempts_of_that_endpoint_only(api_client):
    # given
    attempt = WebhookAttemptFactory.create(status_code=502, succeeded=False, response_start="bad")
    WebhookAttemptFactory.create()
    # when
    response = api_client.get(f"/api/v1/webhooks/{attempt.endpoint_id}/deliveries/")
    # then
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["status"] == 502 and row["succeeded"] is False
    assert row["response_start"] == "bad"
    assert row["webhook_id"] == f"msg_{attempt.delivery.message_id}"
    assert api_client.get("/api/v1/webhooks/999999/deliveries/").status_code == 404


def test_resend_by_id_and_by_range_makes_deliveries_due_again(api_client):
    # given: a delivered delivery
    attempt = WebhookAttemptFactory.create()
    delivery = attempt.delivery
    delivery.status = "delivered"
    delivery.save()
    url = f"/api/v1/webhooks/{delivery.endpoint_id}/resend/"
    # when
    by_id = api_client.post(url, {"delivery_ids": [delivery.pk]}, format="json")
    delivery.refresh_from_db()
    # then
    assert by_id.status_code == 202
    assert by_id.json() == {"status": "done", "resent": 1, "resend_id": None}
    assert delivery.status == "pending" and delivery.attempts == 0
    # when: a range, which a worker carries out
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    in_range = api_client.post(
        url,
        {
            "since": (delivery.created_at.replace(microsecond=0)).isoformat(),
            "until": "2999-01-01T00:00:00Z",
        },
        format="json",
    )
    assert in_range.status_code == 202 and in_range.json()["status"] == "queued"
    job_url = f"/api/v1/webhooks/{delivery.endpoint_id}/resends/{in_range.json()['resend_id']}/"
    assert api_client.get(job_url).json()["status"] == "queued"
    webhook_resend_run(resend_id=in_range.json()["resend_id"])  # as the worker does
    # then
    assert api_client.get(job_url).json()["status"] == "done"
    assert api_client.get(job_url).json()["resent"] == 1
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    # an empty request says what it needs
    empty = api_client.post(url, {}, format="json")
    assert empty.status_code == 400 and empty.json()["error"]


def test_the_webhooks_api_is_staff_only(db):
    # given
    endpoint = WebhookEndpointFactory.create()
    user = get_user_model().objects.create_user(username="customer", password="x" * 12)
    member = APIClient()
    member.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    # then
    for client in (APIClient(), member):
        assert client.get("/api/v1/webhooks/").status_code in (401, 403)
        assert client.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries/").status_code in (401, 403)
        answer = client.post(
            "/api/v1/webhooks/", {"url": "https://a.example.com", "events": ["*"]}, format="json"
        )
        assert answer.status_code in (401, 403)
        assert client.post(f"/api/v1/webhooks/{endpoint.pk}/rotate-secret/").status_code in (
            401,
            403,
        )
