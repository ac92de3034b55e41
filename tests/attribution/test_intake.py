"""`/postback/<slug>/` over HTTP: who may call, what is kept, what is answered."""

import base64
import json
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
import redis
from django.conf import settings as django_settings
from django.db import transaction
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.models import Network, Postback
from attribution.services.intake import (
    IncomingPostback,
    network_cache_invalidate,
    postback_receive,
    token_hash,
)
from attribution.services.wakeup import PROCESS_POSTBACK_TASK, postback_wakeup_taken
from tests.factories import TEST_POSTBACK_TOKEN, NetworkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def network():
    return NetworkFactory.create(slug="acme")


def url(network) -> str:
    return f"/postback/{network.slug}/"


def test_a_get_postback_is_stored_before_it_is_accepted(client, network):
    # when
    before = timezone.now()
    response = client.get(
        url(network),
        {"token": TEST_POSTBACK_TOKEN, "click_id": "abc123", "payout": "4.20"},
        HTTP_USER_AGENT="NetworkBot/1.0",
    )
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "accepted"
    postback = Postback.objects.get(pk=body["postback_id"])
    assert postback.status == Postback.Status.RECEIVED
    assert postback.method == "GET"
    assert parse_qs(postback.query_string) == {"click_id": ["abc123"], "payout": ["4.20"]}
    assert postback.source_ip == "127.0.0.1"
    assert postback.headers["User-Agent"] == "NetworkBot/1.0"
    assert postback.network == network
    assert before <= postback.received_at <= timezone.now()
    assert (postback.reason, postback.attempts, postback.conversion) == ("", 0, None)
    assert postback.processed_at is None


def test_a_form_post_is_accepted(client, network):
    response = client.post(
        url(network), {"security_token": TEST_POSTBACK_TOKEN, "subid": "abc", "amount": "3"}
    )
    assert response.status_code == 200
    postback = Postback.objects.get()
    assert postback.method == "POST"
    assert parse_qs(postback.body) == {"subid": ["abc"], "amount": ["3"]}


def test_a_multipart_post_is_stored_as_a_form(client, network):
    response = client.post(
        url(network),
        {"key": TEST_POSTBACK_TOKEN, "aff_sub": "abc", "sum": "3"},
        format="multipart",
    )
    assert response.status_code == 200
    assert parse_qs(Postback.objects.get().body) == {"aff_sub": ["abc"], "sum": ["3"]}


def test_a_json_post_is_accepted_and_its_token_is_not_stored(client, network):
    response = client.post(
        url(network),
        json.dumps({"verification_token": TEST_POSTBACK_TOKEN, "cid": "abc", "revenue": 7}),
        content_type="application/json",
    )
    assert response.status_code == 200
    postback = Postback.objects.get()
    assert json.loads(postback.body) == {"cid": "abc", "revenue": 7}
    assert TEST_POSTBACK_TOKEN not in postback.body


@pytest.mark.parametrize("name", ["token", "security_token", "verification_token", "key"])
def test_every_token_alias_is_accepted_and_stripped(client, network, name):
    response = client.get(url(network), {name: TEST_POSTBACK_TOKEN, "click_id": "c1"})
    assert response.status_code == 200
    assert TEST_POSTBACK_TOKEN not in Postback.objects.get().query_string


def test_the_token_header_is_accepted_and_not_stored(client, network):
    response = client.get(
        url(network), {"click_id": "c1"}, HTTP_X_POSTBACK_TOKEN=TEST_POSTBACK_TOKEN
    )
    assert response.status_code == 200
    headers = Postback.objects.get().headers
    assert TEST_POSTBACK_TOKEN not in json.dumps(headers)


@pytest.mark.parametrize("token", [None, "", "wrong-token", TEST_POSTBACK_TOKEN + "x"])
def test_a_wrong_or_missing_token_is_forbidden_and_not_stored(client, network, token):
    params = {"click_id": "c1"} if token is None else {"click_id": "c1", "token": token}
    response = client.get(url(network), params)
    assert response.status_code == 403
    assert "token" in response.json()["error"]
    assert not Postback.objects.exists()


def test_an_unknown_network_is_404(client):
    response = client.get("/postback/nobody/", {"token": TEST_POSTBACK_TOKEN, "click_id": "c"})
    assert response.status_code == 404
    assert response.json() == {"error": "unknown network"}


def test_an_address_outside_the_allowlist_is_forbidden(client):
    network = NetworkFactory.create(allowed_ips=["203.0.113.0/24"])
    params = {"token": TEST_POSTBACK_TOKEN, "click_id": "c1"}
    # when
    foreign = client.get(url(network), params, REMOTE_ADDR="198.51.100.9")
    allowed = client.get(url(network), params, REMOTE_ADDR="203.0.113.77")
    # then
    assert foreign.status_code == 403
    assert "address" in foreign.json()["error"]
    assert allowed.status_code == 200
    assert Postback.objects.count() == 1


def test_a_forwarded_header_counts_only_when_a_trusted_proxy_header_is_configured(client, settings):
    network = NetworkFactory.create(allowed_ips=["203.0.113.0/24"])
    params = {"token": TEST_POSTBACK_TOKEN, "click_id": "c1"}
    forwarded = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1, 203.0.113.5"}
    # when: no proxy configured, the spoofable header is ignored
    settings.TRUSTED_PROXY_COUNT = 0
    ignored = client.get(url(network), params, **forwarded)
    # when: our proxy writes X-Forwarded-For; its last hop is the client
    settings.TRUSTED_PROXY_COUNT = 1
    honoured = client.get(url(network), params, **forwarded)
    spoofed = client.get(
        url(network),
        params,
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.1",
    )
    # then
    assert ignored.status_code == 403
    assert honoured.status_code == 200
    assert spoofed.status_code == 403
    assert Postback.objects.get().source_ip == "203.0.113.5"


def test_the_previous_token_works_until_its_grace_ends(client):
    network = NetworkFactory.create(
        postback_token_hash=token_hash("brand-new-token-abcdefgh"),
        previous_token_hash=token_hash(TEST_POSTBACK_TOKEN),
        previous_token_valid_until=timezone.now() + timedelta(hours=1),
    )
    params = {"token": TEST_POSTBACK_TOKEN, "click_id": "c1"}
    assert client.get(url(network), params).status_code == 200
    assert (
        client.get(url(network), {**params, "token": "brand-new-token-abcdefgh"}).status_code == 200
    )
    Network.objects.filter(pk=network.pk).update(
        previous_token_valid_until=timezone.now() - timedelta(seconds=1)
    )
    network_cache_invalidate()
    assert client.get(url(network), params).status_code == 403


def test_a_text_network_is_answered_success_true(client):
    network = NetworkFactory.create(response_format=Network.ResponseFormat.TEXT)
    response = client.get(url(network), {"token": TEST_POSTBACK_TOKEN, "click_id": "c1"})
    assert response.status_code == 200
    assert response.content == b"success=true;"


def test_the_same_postback_twice_is_accepted_twice(client, network):
    params = {"token": TEST_POSTBACK_TOKEN, "click_id": "c1", "txid": "T-1"}
    first = client.get(url(network), params)
    second = client.get(url(network), params)
    assert first.status_code == second.status_code == 200


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "click_id"),
        ({"click_id": "c1", "payout": "-1"}, "payout"),
        ({"click_id": "c1", "amount": "ten"}, "amount"),
        ({"click_id": "c1", "payout": "NaN"}, "payout"),
        ({"click_id": "c1", "payout": "1e20"}, "payout"),
        ({"click_id": "c1", "payout": "1e999999"}, "payout"),
        ({"click_id": "c1", "payout": "99999999.99999"}, "payout"),
        ({"click_id": "c1", "timestamp": "yesterday"}, "timestamp"),
        ({"click_id": "c1", "occurred_at": "2026-02-30T10:00:00Z"}, "occurred_at"),
        ({"click_id": "c1", "datetime": "99999999999999999999"}, "datetime"),
        ({"click_id": "c1", "status": "maybe"}, "status"),
        ({"click_id": "c1", "currency": "dollars"}, "currency"),
        ({"click_id": "x" * 300}, "click_id"),
        ({"txid": "never-seen"}, "click_id"),
        # Digits to str.isdigit() that int() refuses (superscript one): was a 500.
        ({"email": "a@example.com", "offer_id": "\u00b9"}, "offer_id"),
    ],
)
def test_a_malformed_postback_is_400_naming_the_field_and_kept_invalid(
    client, network, params, named
):
    # when
    response = client.get(url(network), {"token": TEST_POSTBACK_TOKEN, **params})
    # then
    assert response.status_code == 400
    error = response.json()["error"]
    assert named in error
    postback = Postback.objects.get()
    assert postback.status == Postback.Status.INVALID
    assert postback.reason == error


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("[1, 2, 3]", "object"),
        ('"just a string"', "object"),
        ("{not json", "JSON"),
        ('{"click_id": {"nested": 1}}', "click_id"),
        ('{"click_id": "c", "payout": [1]}', "payout"),
        ('{"click_id": "c", "payout": true}', "payout"),
        ("[" * 5000 + "]" * 5000, "JSON"),
    ],
)
def test_a_json_body_that_is_not_a_usable_object_is_400(client, network, body, named):
    response = client.post(
        f"{url(network)}?token={TEST_POSTBACK_TOKEN}", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert named in response.json()["error"]
    assert Postback.objects.get().status == Postback.Status.INVALID


def test_binary_junk_and_nul_bytes_never_cause_a_5xx(client, network):
    # when
    junk = client.post(
        f"{url(network)}?token={TEST_POSTBACK_TOKEN}&click_id=c%00d",
        bytes(range(256)) * 4,
        content_type="application/octet-stream",
        HTTP_X_JUNK="a\x00b",
    )
    # then: the click id is readable, the junk is kept as text
    assert junk.status_code == 200
    postback = Postback.objects.get()
    assert "\x00" not in postback.body
    assert "\x00" not in postback.query_string


def test_unicode_everywhere_is_kept(client, network):
    response = client.post(
        f"{url(network)}?token={TEST_POSTBACK_TOKEN}",
        json.dumps({"click_id": "клик-🙂", "conversion_id": "заказ"}, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 200
    assert "клик-🙂" in Postback.objects.get().body


def test_a_body_over_the_upload_limit_is_400_and_kept_invalid(client, network, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = client.post(
        f"{url(network)}?token={TEST_POSTBACK_TOKEN}&click_id=c1",
        "a=" + "x" * 5000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert "larger" in response.json()["error"]
    assert Postback.objects.get().status == Postback.Status.INVALID


@pytest.mark.parametrize("slug", ["x" * 500, "a%00b", "ü", "..%2F"])
def test_odd_network_slugs_are_404(client, slug):
    response = client.get(f"/postback/{slug}/", {"token": TEST_POSTBACK_TOKEN})
    assert response.status_code == 404


def test_other_methods_are_405(client, network):
    response = client.put(url(network), "{}", content_type="application/json")
    assert response.status_code == 405
    assert "error" in response.json()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["click_id", "txid", "payout", "currency", "status", "timestamp", "offer_id", "x"]
        ),
        st.text(max_size=40),
        max_size=6,
    ),
    as_json=st.booleans(),
)
def test_any_field_values_get_a_200_or_a_4xx_never_a_5xx(client, network, params, as_json):
    if as_json:
        response = client.post(
            f"{url(network)}?token={TEST_POSTBACK_TOKEN}",
            json.dumps(params),
            content_type="application/json",
        )
    else:
        response = client.get(url(network), {"token": TEST_POSTBACK_TOKEN, **params})
    assert response.status_code in (200, 400)
    assert response.json()


def _queued_processing_tasks() -> list[list[int]]:
    """The arguments of every `process_postback` task waiting on this run's queue."""
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    queue_key = f"{django_settings.REDIS_KEY_PREFIX}{django_settings.CELERY_TASK_DEFAULT_QUEUE}"
    messages = [json.loads(raw) for raw in broker.lrange(queue_key, 0, -1)]
    return [
        json.loads(base64.b64decode(message["body"]))[0]
        for message in messages
        if message["headers"]["task"] == PROCESS_POSTBACK_TASK
    ]


def _settled(read: Callable[[], list[list[int]]], *, expected: int) -> list[list[int]]:
    """What `read` gives once `expected` items are there and the wake-up thread had its
    time to add more (it gathers for POSTBACK_WAKEUP_GATHER_SECONDS)."""
    deadline = time.monotonic() + 5
    while len(read()) < expected and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(django_settings.POSTBACK_WAKEUP_GATHER_SECONDS * 5)
    return read()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("coalesce", "tasks"), [(True, 1), (False, 3)])
def test_postbacks_arriving_together_share_one_wake_up_task(settings, coalesce, tasks):
    # given
    settings.POSTBACK_COALESCE_WAKEUPS = coalesce
    network = NetworkFactory.create(slug="acme")
    client = Client()
    # when: three postbacks arrive before any worker took the first task
    ids = []
    for n in range(3):
        response = client.get(url(network), {"token": TEST_POSTBACK_TOKEN, "click_id": f"c{n}"})
        ids.append(response.json()["postback_id"])
    # then: the answers did not wait for the queue; the tasks follow at once
    queued = _settled(_queued_processing_tasks, expected=tasks)
    assert len(queued) == tasks
    assert {postback_id for [postback_id] in queued} <= set(ids)
    assert Postback.objects.filter(status=Postback.Status.RECEIVED).count() == 3


@pytest.mark.django_db(transaction=True)
def test_a_postback_after_its_wake_up_was_taken_queues_another(settings):
    # given: one postback, its wake-up queued
    network = NetworkFactory.create(slug="acme")
    client = Client()
    client.get(url(network), {"token": TEST_POSTBACK_TOKEN, "click_id": "c1"})
    assert len(_settled(_queued_processing_tasks, expected=1)) == 1
    # when: a worker starts that task (it clears the key before it claims), and another
    # postback arrives
    postback_wakeup_taken()
    client.get(url(network), {"token": TEST_POSTBACK_TOKEN, "click_id": "c2"})
    # then: the new postback does not count on the started task
    assert len(_settled(_queued_processing_tasks, expected=2)) == 2


@pytest.mark.django_db(transaction=True)
def test_a_postback_stored_inside_a_transaction_wakes_a_worker_only_once_committed():
    # given
    NetworkFactory.create(slug="acme")
    incoming = IncomingPostback(
        method="GET",
        query_string=f"token={TEST_POSTBACK_TOKEN}&click_id=c1",
        body="",
        content_type="",
        headers={},
        client_ip="127.0.0.1",
    )
    # when: the intake runs inside a caller's transaction
    with transaction.atomic():
        answer = postback_receive(network_slug="acme", incoming=incoming)
        # then: no task may look for the row before it is committed
        time.sleep(django_settings.POSTBACK_WAKEUP_GATHER_SECONDS * 5)
        assert _queued_processing_tasks() == []
    assert _settled(_queued_processing_tasks, expected=1) == [[answer.postback_id]]
