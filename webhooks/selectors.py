"""Reads of the webhooks app that are more than a `.get()`."""

from __future__ import annotations

from django.db.models import Count, Min, QuerySet
from django.utils import timezone

from webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint


def webhook_endpoint_list() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.order_by("id")


def webhook_attempt_list(*, endpoint_id: int) -> QuerySet[WebhookAttempt]:
    """The endpoint's delivery log: every attempt, newest first, with its delivery."""
    return (
        WebhookAttempt.objects.filter(endpoint_id=endpoint_id)
        .select_related("delivery")
        .order_by("-attempted_at", "-id")
    )


def webhook_delivery_list(*, endpoint_id: int) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(endpoint_id=endpoint_id).order_by("-id")


def webhook_backlog_get() -> tuple[int, float | None]:
    """Deliveries due now to enabled endpoints, and how long the oldest has been due (s)."""
    now = timezone.now()
    due = WebhookDelivery.objects.filter(
        status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
    ).aggregate(count=Count("id"), oldest=Min("next_attempt_at"))
    oldest = due["oldest"]
    return due["count"], (now - oldest).total_seconds() if oldest is not None else None
