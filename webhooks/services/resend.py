"""Sending deliveries again on an operator's request."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from config.enqueue import task_enqueue_on_commit
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookResend
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


RESEND_TASK = "webhooks.resend_range"


def webhook_resend_request(
    *, endpoint_id: int, since: datetime | None = None, until: datetime | None = None
) -> WebhookResend:
    """Queue a resend of a time range; `webhook_resend_run` does it on a worker."""
    resend = WebhookResend.objects.create(endpoint_id=endpoint_id, since=since, until=until)
    task_enqueue_on_commit(name=RESEND_TASK, args=[resend.pk])
    return resend


def webhook_resend_run(*, resend_id: int) -> WebhookResend | None:
    """Carry out a queued resend once: the deliveries and the job's status commit together."""
    with transaction.atomic():
        resend = (
            WebhookResend.objects.select_for_update(skip_locked=True)
            .filter(pk=resend_id)
            .exclude(status=WebhookResend.Status.DONE)
            .first()
        )
        if resend is None:
            return None
        WebhookResend.objects.filter(pk=resend.pk).update(status=WebhookResend.Status.RUNNING)
        count = webhook_deliveries_resend(
            endpoint_id=resend.endpoint_id, since=resend.since, until=resend.until
        )
        resend.status = WebhookResend.Status.DONE
        resend.resent = count
        resend.finished_at = timezone.now()
        resend.save(update_fields=["status", "resent", "finished_at"])
    return resend
