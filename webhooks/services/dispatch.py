"""From the conversion-event outbox to one delivery per (event, endpoint).

Attribution writes a `ConversionEvent` in the transaction of every decision and every
later change, unpublished. The dispatcher takes the unpublished ones in id order, fixes
each one's body once (a `WebhookMessage`), adds a delivery for every enabled endpoint
that wants it, and marks the events published, all in one transaction: an event is
either still unpublished or fanned out, whatever crashes in between.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from attribution.apis import ConversionSerializer
from attribution.models import ConversionEvent
from attribution.selectors import conversion_list
from webhooks.models import EventType, WebhookDelivery, WebhookEndpoint, WebhookMessage

# One dispatcher at a time: events of one conversion then become deliveries in the order
# they happened (a later dispatcher could otherwise add event 2 while another still holds 1).
DISPATCH_LOCK_KEY = 0x7765_6268_6F6F_6B  # "webhook"


@dataclass(frozen=True)
class DispatchOutcome:
    events: int = 0
    deliveries: int = 0
    endpoint_ids: tuple[int, ...] = ()
    busy: bool = False


def event_type_of(from_status: str) -> str:
    """A conversion's first event is its decision; every later one is a change."""
    return EventType.CONVERSION_DECIDED if not from_status else EventType.CONVERSION_UPDATED


def conversion_events_dispatch(*, batch_size: int) -> DispatchOutcome:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [DISPATCH_LOCK_KEY])
            if not cursor.fetchone()[0]:
                return DispatchOutcome(busy=True)
        events: list[dict[str, Any]] = [
            dict(row)
            for row in ConversionEvent.objects.filter(published=False)
            .order_by("id")
            .values("id", "conversion_id", "from_status", "to_status", "payout", "created_at")[
                :batch_size
            ]
        ]
        if not events:
            return DispatchOutcome()
        endpoints = list(WebhookEndpoint.objects.filter(enabled=True).order_by("id"))
        targets: dict[int, list[WebhookEndpoint]] = {}
        for event in events:
            kind = event_type_of(event["from_status"])
            # An endpoint hears of what happened after it was created, not before.
            wanting = [
                endpoint
                for endpoint in endpoints
                if endpoint.wants(kind) and endpoint.created_at <= event["created_at"]
            ]
            if wanting:
                targets[event["id"]] = wanting
        deliveries = _fan_out([event for event in events if event["id"] in targets], targets)
        ConversionEvent.objects.filter(pk__in=[event["id"] for event in events]).update(
            published=True
        )
    return DispatchOutcome(
        events=len(events),
        deliveries=len(deliveries),
        endpoint_ids=tuple(sorted({delivery.endpoint_id for delivery in deliveries})),
    )


def _fan_out(
    events: list[dict[str, Any]], targets: dict[int, list[WebhookEndpoint]]
) -> list[WebhookDelivery]:
    if not events:
        return []
    conversions = conversion_list().filter(pk__in={event["conversion_id"] for event in events})
    shown = {row["id"]: row for row in ConversionSerializer(conversions, many=True).data}
    payout_field = ConversionSerializer().fields["payout"]
    messages: list[WebhookMessage] = []
    for event in events:
        data = dict(shown[event["conversion_id"]])
        # As of this event: a decision and its reversal dispatched together still show
        # the status and payout each of them set.
        data["status"] = event["to_status"]
        data["payout"] = payout_field.to_representation(event["payout"])
        kind = event_type_of(event["from_status"])
        messages.append(
            WebhookMessage(
                event_id=event["id"],
                event_type=kind,
                conversion_id=event["conversion_id"],
                body=_body(kind, event["created_at"], data),
                created_at=event["created_at"],
            )
        )
    WebhookMessage.objects.bulk_create(messages, batch_size=1000)
    deliveries = [
        WebhookDelivery(
            endpoint_id=endpoint.pk,
            message_id=message.pk,
            conversion_id=message.conversion_id,
            sequence=message.event_id,
            event_type=message.event_type,
            next_attempt_at=message.created_at,
            created_at=message.created_at,
        )
        for message in messages
        for endpoint in targets[message.event_id]
    ]
    WebhookDelivery.objects.bulk_create(deliveries, batch_size=1000)
    return deliveries


def _body(kind: str, at: datetime, data: dict[str, Any]) -> str:
    return json.dumps(
        {"type": kind, "timestamp": at.isoformat().replace("+00:00", "Z"), "data": data},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )
