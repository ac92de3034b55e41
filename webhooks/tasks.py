"""Celery tasks: take an id, call one service, return."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from attribution.services.outbox import conversion_events_wakeup_taken
from attribution.tasks import RECOVERABLE
from webhooks.services.delivery import (
    webhook_endpoint_deliver,
    webhook_endpoint_wake,
    webhook_endpoints_wake_due,
)
from webhooks.services.dispatch import conversion_events_dispatch
from webhooks.services.resend import RESEND_TASK, webhook_resend_run

logger = logging.getLogger(__name__)

DISPATCH_TASK = "webhooks.dispatch"


@shared_task(
    name=DISPATCH_TASK,
    acks_late=True,
    autoretry_for=RECOVERABLE,
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
    soft_time_limit=50,
    time_limit=60,
)
def dispatch() -> dict[str, int]:
    conversion_events_wakeup_taken(task_name=DISPATCH_TASK)
    events = deliveries = 0
    # Up to a few batches per run; then the next run (queued below, or beat) goes on.
    for _ in range(10):
        outcome = conversion_events_dispatch(batch_size=settings.WEBHOOK_DISPATCH_BATCH_SIZE)
        events += outcome.events
        deliveries += outcome.deliveries
        for endpoint_id in outcome.endpoint_ids:
            webhook_endpoint_wake(endpoint_id=endpoint_id)
        if outcome.busy:
            # Another run holds the lock and may have read before our events committed.
            dispatch.apply_async(countdown=1)
            break
        if outcome.events < settings.WEBHOOK_DISPATCH_BATCH_SIZE:
            break
    else:
        dispatch.delay()
    return {"events": events, "deliveries": deliveries}


@shared_task(
    name="webhooks.deliver_endpoint",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RECOVERABLE,
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=5,
    soft_time_limit=100,
    time_limit=120,
)
def deliver_endpoint(endpoint_id: int) -> dict[str, int]:
    outcome = webhook_endpoint_deliver(endpoint_id=endpoint_id)
    return {
        "delivered": outcome.delivered,
        "failed_attempts": outcome.failed_attempts,
        "given_up": outcome.given_up,
        "released": outcome.released,
    }


@shared_task(
    name="webhooks.deliver_due",
    acks_late=True,
    autoretry_for=RECOVERABLE,
    max_retries=2,
    soft_time_limit=20,
    time_limit=30,
)
def deliver_due() -> int:
    return webhook_endpoints_wake_due()


@shared_task(
    name=RESEND_TASK,
    acks_late=True,
    autoretry_for=RECOVERABLE,
    retry_backoff=5,
    max_retries=5,
    soft_time_limit=240,
    time_limit=300,
)
def resend_range(resend_id: int) -> int | None:
    resend = webhook_resend_run(resend_id=resend_id)
    return resend.resent if resend is not None else None
