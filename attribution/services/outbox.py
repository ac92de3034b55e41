"""Conversion events are the outbox of conversion news (see `ConversionEvent`).

Attribution does not know who reads them: it wakes the tasks named in
`CONVERSION_EVENT_SUBSCRIBER_TASKS` after the events commit. The wake-up only saves
time; each subscriber also runs on beat and reads the table, the source of truth.
"""

from __future__ import annotations

import logging

from celery import current_app
from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError

from config.redis_client import redis_client, redis_key

logger = logging.getLogger(__name__)


def conversion_events_wakeup_key(*, task_name: str) -> str:
    return redis_key(f"outbox-wakeup:{task_name}")


def conversion_events_announce_on_commit() -> None:
    """After commit, make sure each subscriber task is queued (at most one waits at a time).

    A subscriber deletes its key before it reads (see `conversion_events_wakeup_taken`),
    so events that found the key set were committed before that read could start.
    """

    def announce() -> None:
        for task_name in settings.CONVERSION_EVENT_SUBSCRIBER_TASKS:
            try:
                first = redis_client().set(
                    conversion_events_wakeup_key(task_name=task_name),
                    1,
                    nx=True,
                    ex=settings.CONVERSION_EVENT_WAKEUP_TTL_SECONDS,
                )
            except RedisError:
                first = True
            if first:
                current_app.send_task(task_name)

    # robust: the broker being down must not undo a decision; beat picks the events up.
    transaction.on_commit(announce, robust=True)


def conversion_events_wakeup_taken(*, task_name: str) -> None:
    """Called by a subscriber before it reads: events committed from now on wake another run."""
    try:
        redis_client().delete(conversion_events_wakeup_key(task_name=task_name))
    except RedisError:
        logger.warning("could not clear the %s wake-up key; it expires on its own", task_name)
