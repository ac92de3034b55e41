"""The dispatcher and the delivery run, called as a worker calls them, against a real receiver."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from attribution.models import ConversionEvent
from tests.factories import ConversionFactory, WebhookEndpointFactory
from tests.webhooks.conftest import Receiver
from webhooks.models import WebhookDelivery
from webhooks.services.delivery import webhook_endpoint_deliver
from webhooks.services.dispatch import conversion_events_dispatch

pytestmark = pytest.mark.django_db


def event(conversion, from_status: str, to_status: str) -> ConversionEvent:
    return ConversionEvent.objects.create(
        conversion=conversion,
        from_status=from_status,
        to_status=to_status,
        payout=conversion.payout,
        revenue_delta=Decimal(0),
    )


def endpoint_for(receiver: Receiver, events: list[str] | None = None):
    endpoint = WebhookEndpointFactory.create(url=receiver.url, events=events or ["*"])
    endpoint.created_at = timezone.now() - timedelta(minutes=1)
    endpoint.save()
    return endpoint


def deliver_all(endpoint) -> None:
    webhook_endpoint_deliver(endpoint_id=endpoint.pk)


def test_an_endpoint_gets_only_the_events_it_asked_for_and_none_from_before_it(
    receiver, private_hosts_allowed
):
    # given: an event from before the endpoints existed, then two after
    conversion = ConversionFactory.create()
    event(conversion, "", "approved")
    ConversionEvent.objects.update(created_at=timezone.now() - timedelta(hours=1))
    decided_only = endpoint_for(receiver, ["conversion.decided"])
    everything = endpoint_for(receiver)
    later = ConversionFactory.create()
    event(later, "", "pending")
    event(later, "pending", "approved")
    # when
    outcome = conversion_events_dispatch(batch_size=100)
    # then
    assert outcome.events == 3
    assert WebhookDelivery.objects.filter(endpoint=decided_only).count() == 1
    assert WebhookDelivery.objects.filter(endpoint=everything).count() == 2
    assert conversion_events_dispatch(batch_size=100).events == 0


def test_a_credit_change_is_an_update_with_the_conversion_as_the_api_shows_it(
    receiver, private_hosts_allowed, api_client
):
    # given: a decision, then a change of credit only (status unchanged)
    endpoint = endpoint_for(receiver)
    conversion = ConversionFactory.create(status="approved")
    event(conversion, "", "approved")
    event(conversion, "approved", "approved")
    conversion_events_dispatch(batch_size=100)
    # when
    deliver_all(endpoint)
    deliver_all(endpoint)
    # then
    bodies = [json.loads(got.body) for got in receiver.successes()]
    assert [body["type"] for body in bodies] == ["conversion.decided", "conversion.updated"]
    assert bodies[1]["data"] == api_client.get(f"/api/v1/conversions/{conversion.pk}/").json()


def test_a_later_event_waits_while_an_earlier_one_of_the_same_conversion_is_failing(
    receiver, private_hosts_allowed
):
    # given: the receiver refuses the first attempt
    endpoint = endpoint_for(receiver)
    conversion = ConversionFactory.create()
    event(conversion, "", "approved")
    event(conversion, "approved", "reversed")
    conversion_events_dispatch(batch_size=100)
    receiver.failures_left = 1
    # when
    deliver_all(endpoint)
    # then: only the decision was tried; the reversal waits behind it
    assert len(receiver.successes()) == 1
    # when: its retry is due
    with time_machine.travel(timezone.now() + timedelta(minutes=1)):
        deliver_all(endpoint)
        deliver_all(endpoint)
    types = [json.loads(got.body)["type"] for got in receiver.successes()]
    assert types == ["conversion.decided", "conversion.decided", "conversion.updated"]


def test_a_delivery_is_failed_after_the_last_retry_and_a_dead_endpoint_is_disabled(
    receiver, private_hosts_allowed, settings
):
    # given: a receiver that always answers 503, and a short schedule
    settings.WEBHOOK_RETRY_SCHEDULE_SECONDS = [10, 10]
    settings.WEBHOOK_DISABLE_AFTER_SECONDS = 25
    receiver.status = 503
    endpoint = endpoint_for(receiver)
    conversion = ConversionFactory.create()
    event(conversion, "", "approved")
    conversion_events_dispatch(batch_size=100)
    start = timezone.now()
    # when: the first attempt and both retries
    for seconds in (0, 15, 30):
        with time_machine.travel(start + timedelta(seconds=seconds)):
            deliver_all(endpoint)
    # then
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 3, 503)
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    assert "no successful delivery since" in endpoint.disabled_reason
    assert "answered 503" in endpoint.disabled_reason


def test_a_host_that_turned_private_is_refused_at_delivery_time(receiver, settings):
    # given: an endpoint saved while private hosts were allowed
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = True
    endpoint = endpoint_for(receiver)
    conversion = ConversionFactory.create()
    event(conversion, "", "approved")
    conversion_events_dispatch(batch_size=100)
    # when: they no longer are
    settings.WEBHOOK_ALLOW_PRIVATE_HOSTS = False
    deliver_all(endpoint)
    # then: nothing was sent; the attempt says why, and it will be retried
    assert receiver.successes() == []
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert "refused" in delivery.last_error and "loopback" in delivery.last_error
