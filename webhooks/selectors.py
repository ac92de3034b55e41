"""Reads of the webhooks app that are more than a `.get()`."""

from __future__ import annotations

from django.db.models import QuerySet

from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


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
