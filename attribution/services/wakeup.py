"""Waking a worker for stored postbacks: one processing task per postback, or one for many.

Intake, processing (a deferred postback, a full batch) and the sweeper all enqueue
through here.
"""

from __future__ import annotations

import logging

from django.conf import settings
from redis.exceptions import RedisError

from config.enqueue import tasks_enqueue_on_commit
from config.redis_client import redis_client, redis_key

logger = logging.getLogger(__name__)

# The name of `attribution.tasks.process_postback`.
PROCESS_POSTBACK_TASK = "attribution.process_postback"
WAKEUP_KEY = "attribution:postbacks-wakeup"


def postback_wake_worker(*, postback_id: int) -> None:
    """Make sure a processing task will look at this (committed) postback.

    With `POSTBACK_COALESCE_WAKEUPS`, one queued task serves every postback that
    arrives before a worker starts it: the intake enqueues `process_postback(id)`
    only when it sets the wake-up key (SET NX); a task deletes the key before it
    claims its batch. So a postback whose intake found the key set was committed
    before that delete, and the claim after it sees the row. A full batch wakes
    the next task itself; the key expires if its task is lost, and the sweeper
    catches whatever is left. Without the setting: one task per postback.
    """
    if settings.POSTBACK_COALESCE_WAKEUPS:
        try:
            queued = not redis_client().set(
                redis_key(WAKEUP_KEY), postback_id, nx=True, ex=settings.POSTBACK_WAKEUP_TTL_SECONDS
            )
        except RedisError:
            queued = False
        if queued:
            return
    postback_enqueue_on_commit(postback_ids=[postback_id])


def postback_wakeup_taken() -> None:
    """Called by a task before it claims: postbacks arriving from now on wake another one."""
    if not settings.POSTBACK_COALESCE_WAKEUPS:
        return
    try:
        redis_client().delete(redis_key(WAKEUP_KEY))
    except RedisError:
        logger.warning("could not clear the postback wake-up key; it expires on its own")


def postback_enqueue_on_commit(*, postback_ids: list[int], countdown: float = 0) -> None:
    """Put one processing task per postback on the queue once the transaction commits.

    A broker that is down loses nothing: the rows stay `received` and the sweeper
    enqueues them again.
    """
    tasks_enqueue_on_commit(
        name=PROCESS_POSTBACK_TASK,
        args_each=[(postback_id,) for postback_id in postback_ids],
        countdown=countdown,
    )
