"""Sending deliveries again on an operator's request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from webhooks.models import DeliveryStatus, WebhookDelivery
from webhooks.services.delivery import webhook_endpoint_wake_on_commit


def webhook_deliveries_resend(
    *,
    endpoint_id: int,
    delivery_ids: Sequence[int] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Make the chosen deliveries of one endpoint due now, with a fresh retry schedule.

    One set-based UPDATE, however large the range: the sending itself happens on the
    endpoint's worker, and each delivery keeps its `webhook-id`, so a receiver that had
    it already can tell. The earlier attempts stay in the log.
    """
    deliveries = WebhookDelivery.objects.filter(endpoint_id=endpoint_id)
    if delivery_ids:
        deliveries = deliveries.filter(pk__in=delivery_ids)
    if since is not None:
        deliveries = deliveries.filter(created_at__gte=since)
    if until is not None:
        deliveries = deliveries.filter(created_at__lt=until)
    with transaction.atomic():
        count = deliveries.update(
            status=DeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=timezone.now(),
            delivered_at=None,
        )
        if count:
            webhook_endpoint_wake_on_commit(endpoint_id=endpoint_id)
    return count
