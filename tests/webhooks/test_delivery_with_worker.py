"""With a real worker and a real HTTP receiver: what a customer's server sees."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from attribution.models import Postback
from tests.factories import TEST_POSTBACK_TOKEN, ClickFactory
from tests.webhooks.conftest import Receiver, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def send_postback(client, network, **params) -> int:
    response = client.get(f"/postback/{network.slug}/", {"token": TEST_POSTBACK_TOKEN, **params})
    assert response.status_code == 200, response.content
    return int(response.json()["postback_id"])


def processed(postback_id: int) -> bool:
    return Postback.objects.filter(pk=postback_id, status=Postback.Status.PROCESSED).exists()


def register(api_client, receiver: Receiver, events: list[str] | None = None) -> dict:
    response = api_client.post(
        "/api/v1/webhooks/", {"url": receiver.url, "events": events or ["*"]}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def verified(secret: str, received) -> dict:
    return Webhook(secret).verify(received.body, received.headers)


def test_a_conversion_and_its_reversal_arrive_signed_and_in_order(
    webhook_worker, receiver, client, api_client
):
    # given
    endpoint = register(api_client, receiver)
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(minutes=30))
    network = click.offer.network
    # when: a conversion, then its reversal once the first is decided
    first = send_postback(client, network, click_id=click.click_id, txid="WH-1", payout="12.5")
    wait_until(lambda: processed(first), what="the decision")
    send_postback(client, network, txid="WH-1", status="reversed")
    wait_until(lambda: len(receiver.successes()) >= 2, what="both events at the receiver")
    # then: each is signed with the endpoint's secret, decided before updated
    decided, updated = (verified(endpoint["secret"], got) for got in receiver.successes())
    assert [decided["type"], updated["type"]] == ["conversion.decided", "conversion.updated"]
    assert decided["data"]["status"] == "approved"
    assert decided["data"]["payout"] == "12.5000"
    assert decided["data"]["attributed"] is True
    assert decided["data"]["click_id"] == click.click_id
    # the data is the conversion as the conversions API shows it
    shown = api_client.get(f"/api/v1/conversions/{updated['data']['id']}/").json()
    assert updated["data"] == shown
    assert shown["status"] == "reversed"
    first_headers, second_headers = (got.headers for got in receiver.successes())
    assert first_headers["webhook-id"] != second_headers["webhook-id"]
    assert abs(int(first_headers["webhook-timestamp"]) - time.time()) < 60
    assert receiver.successes()[0].path == "/hooks/creditflow"


def test_a_failed_delivery_is_retried_under_the_same_webhook_id(
    webhook_worker, receiver, client, api_client
):
    # given: a receiver whose first answer is a 500
    endpoint = register(api_client, receiver, events=["conversion.decided"])
    receiver.failures_left = 1
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(minutes=30))
    # when
    send_postback(client, click.offer.network, click_id=click.click_id, txid="RETRY-1")
    wait_until(lambda: len(receiver.successes()) >= 2, what="the retry")
    # then: the same message twice, both verifiable
    failed, retried = receiver.successes()
    assert failed.headers["webhook-id"] == retried.headers["webhook-id"]
    assert failed.body == retried.body
    assert verified(endpoint["secret"], retried)["type"] == "conversion.decided"
    # and the delivery log shows both attempts, newest first
    wait_until(
        lambda: (
            api_client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries/").json()["count"] == 2
        ),
        what="both attempts in the log",
    )
    log = api_client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries/").json()["results"]
    assert [row["status"] for row in log] == [200, 500]
    assert [row["succeeded"] for row in log] == [True, False]
    assert log[1]["response_start"] == "temporarily broken"
    assert log[0]["response_start"] == '{"ok":true}'
    assert log[0]["webhook_id"] == retried.headers["webhook-id"]
    assert log[0]["delivery_status"] == "delivered"
    assert all(row["latency_ms"] >= 0 and row["attempted_at"] for row in log)
    # the first retry came within the promised 30 seconds (here: the shortened schedule)
    gap = json.loads(retried.body)  # same body: its timestamp is the event's, not the attempt's
    assert gap["timestamp"] == json.loads(failed.body)["timestamp"]


def test_a_receiver_down_for_a_while_gets_every_event_afterwards(
    webhook_worker, receiver, client, api_client
):
    # given: a registered receiver that goes down
    register(api_client, receiver)
    receiver.stop()
    # when: conversions keep coming while it is down, and some of them are reversed
    conversion_ids, networks = [], []
    for number in range(12):
        click = ClickFactory.create(occurred_at=timezone.now() - timedelta(minutes=5))
        send_postback(client, click.offer.network, click_id=click.click_id, txid=f"DOWN-{number}")
        conversion_ids.append(f"DOWN-{number}")
        networks.append(click.offer.network)
        time.sleep(0.3)
    for number in range(0, 12, 3):
        send_postback(client, networks[number], txid=f"DOWN-{number}", status="reversed")
    time.sleep(3)
    receiver.start()
    # then: every event arrives, each conversion's decision before its change
    wait_until(lambda: len(receiver.successes()) >= 16, timeout=60, what="every event")
    time.sleep(1)
    events = [json.loads(got.body) for got in receiver.successes()]
    assert len(events) == 16
    by_conversion: dict[str, list[str]] = {}
    for event in events:
        by_conversion.setdefault(event["data"]["conversion_id"], []).append(event["type"])
    assert sorted(by_conversion) == sorted(conversion_ids)
    for number, conversion_id in enumerate(conversion_ids):
        expected = ["conversion.decided"] + (["conversion.updated"] if number % 3 == 0 else [])
        assert by_conversion[conversion_id] == expected


def test_during_a_rotation_both_secrets_sign(webhook_worker, receiver, client, api_client):
    # given
    endpoint = register(api_client, receiver)
    rotated = api_client.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret/")
    assert rotated.status_code == 200
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != endpoint["secret"]
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(minutes=30))
    # when
    send_postback(client, click.offer.network, click_id=click.click_id, txid="ROT-1")
    wait_until(lambda: len(receiver.successes()) >= 1, what="the event")
    # then: a receiver with either secret accepts it
    [got] = receiver.successes()
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert verified(new_secret, got)["type"] == "conversion.decided"
    assert verified(endpoint["secret"], got)["type"] == "conversion.decided"
