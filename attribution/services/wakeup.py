"""Waking a worker for stored postbacks: one processing task per postback, or one for many.

Intake, processing (a deferred postback, a full batch) and the sweeper all enqueue
through here. The intake hands its ids to a thread of its process
(`postback_wake_worker_soon`), so no request waits for a Redis round trip.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from redis.exceptions import RedisError

from config.enqueue import tasks_enqueue_on_commit
from config.logging import request_id_var
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
    if settings.POSTBACK_COALESCE_WAKEUPS and _wakeup_already_queued(postback_id=postback_id):
        return
    postback_enqueue_on_commit(postback_ids=[postback_id])


def _wakeup_already_queued(*, postback_id: int) -> bool:
    """Set the wake-up key unless it is set; True when it was (a task is queued)."""
    try:
        return not redis_client().set(
            redis_key(WAKEUP_KEY), postback_id, nx=True, ex=settings.POSTBACK_WAKEUP_TTL_SECONDS
        )
    except RedisError:
        return False


def postback_wake_worker_soon(*, postback_id: int) -> None:
    """`postback_wake_worker`, done by this process's wake-up thread after the commit.

    For the intake: the request answers without waiting for Redis. The thread wakes a
    worker for every postback handed over since its last wake-up, at most every
    `POSTBACK_WAKEUP_GATHER_SECONDS`, so under load one Redis round trip serves many
    postbacks. The rows are committed before the thread sees their ids, so the
    argument of `postback_wake_worker` holds; if the process dies before the thread
    ran, the rows are committed and `received`, and the sweeper enqueues them.
    """
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _waker.add(postback_id, request_id=request_id_var.get()))
    else:
        # Committed already (autocommit, as the intake stores): what `on_commit` would
        # do at once, without its cost on every postback.
        _waker.add(postback_id, request_id=request_id_var.get())


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


class _Waker:
    """The wake-up thread of one process, started on first use (and again after a fork)."""

    def __init__(self) -> None:
        self._start_over()
        os.register_at_fork(after_in_child=self._start_over)
        atexit.register(self.flush)

    def _start_over(self) -> None:
        self._lock = threading.Lock()
        self._ready = threading.Event()
        # (postback id, the id of the request that stored it, for the task's log lines)
        self._waiting: list[tuple[int, str | None]] = []
        self._thread: threading.Thread | None = None

    def add(self, postback_id: int, *, request_id: str | None) -> None:
        with self._lock:
            self._waiting.append((postback_id, request_id))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="postback-wakeup", daemon=True
                )
                self._thread.start()
        # Set already: the thread has not cleared it yet, and flushes after it does.
        if not self._ready.is_set():
            self._ready.set()

    def _run(self) -> None:
        while True:
            self._ready.wait()
            # Postbacks arriving meanwhile share this wake-up.
            time.sleep(settings.POSTBACK_WAKEUP_GATHER_SECONDS)
            self._ready.clear()
            self.flush()

    def flush(self) -> None:
        """Wake a worker for every id handed over so far (also at exit)."""
        with self._lock:
            waiting, self._waiting = self._waiting, []
        if not waiting:
            return
        try:
            _wake(waiting)
        except Exception:
            # The rows are committed and `received`: the sweeper enqueues them.
            logger.exception("could not wake a worker for %d postbacks", len(waiting))


def _wake(waiting: list[tuple[int, str | None]]) -> None:
    if settings.POSTBACK_COALESCE_WAKEUPS:
        if _wakeup_already_queued(postback_id=waiting[0][0]):
            return
        waiting = waiting[:1]
    with current_app.producer_or_acquire() as producer:
        for postback_id, request_id in waiting:
            # The task logs under the id of the request that stored its postback.
            token = request_id_var.set(request_id)
            try:
                current_app.send_task(PROCESS_POSTBACK_TASK, args=[postback_id], producer=producer)
            finally:
                request_id_var.reset(token)


_waker = _Waker()
