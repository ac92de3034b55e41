"""Celery tasks: take an id, call one service, return."""

from __future__ import annotations

import logging

import kombu.exceptions
import redis.exceptions
from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from attribution.services.import_run import conversion_import_run
from attribution.services.processing import postback_process
from attribution.services.recovery import postback_sweep

logger = logging.getLogger(__name__)

# Only what can recover by waiting: the database or the broker being unavailable
# (a deadlock between two batches is an OperationalError too). Bad data is marked
# on its row by the service and never retried.
RECOVERABLE = (
    OperationalError,
    InterfaceError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


@shared_task(
    name="attribution.process_postback",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RECOVERABLE,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=10,
    soft_time_limit=100,
    time_limit=120,
)
def process_postback(postback_id: int) -> dict[str, int]:
    outcome = postback_process(postback_id=postback_id, batch_size=settings.POSTBACK_BATCH_SIZE)
    return {
        "claimed": outcome.claimed,
        "processed": outcome.processed,
        "invalid": outcome.invalid,
        "deferred": outcome.deferred,
        "failed": outcome.failed,
    }


@shared_task(
    name="attribution.sweep_postbacks",
    acks_late=True,
    autoretry_for=RECOVERABLE,
    retry_backoff=5,
    max_retries=3,
    soft_time_limit=50,
    time_limit=60,
)
def sweep_postbacks() -> dict[str, int]:
    outcome = postback_sweep()
    if outcome.enqueued or outcome.given_up:
        logger.info(
            "postback sweep: %s enqueued again, %s given up", outcome.enqueued, outcome.given_up
        )
    return {"enqueued": outcome.enqueued, "given_up": outcome.given_up}


@shared_task(
    name="attribution.run_conversion_import",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=RECOVERABLE,
    retry_backoff=5,
    max_retries=5,
    soft_time_limit=1700,
    time_limit=1800,
)
def run_conversion_import(import_id: int) -> dict[str, int]:
    conversion_import = conversion_import_run(import_id=import_id)
    if conversion_import is None:
        return {}
    return {"accepted": conversion_import.accepted, "rejected": conversion_import.rejected}
