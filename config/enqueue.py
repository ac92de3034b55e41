"""Enqueue Celery tasks only once the transaction that caused them has committed.

Every product module enqueues through here, by task name (`name=` on `@shared_task`):
a service never imports a `tasks` module, which imports services, so the import graph
stays acyclic; and a worker never starts on a row it cannot see yet.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from celery import current_app
from django.db import transaction

logger = logging.getLogger(__name__)


def tasks_enqueue_on_commit(
    *, name: str, args_each: Sequence[Sequence[Any]], countdown: float = 0
) -> None:
    """After the commit (at once outside a transaction): one task `name` per argument list.

    Robust: a broker that is down must not turn a committed request into a 500. The
    rows the task would work on are committed, and each caller keeps a way to find
    them again (a sweeper, a queued status an operator sees).
    """
    calls = [list(args) for args in args_each]
    if not calls:
        return

    def enqueue() -> None:
        for args in calls:
            current_app.send_task(name, args=args, countdown=countdown or None)

    transaction.on_commit(enqueue, robust=True)


def task_enqueue_on_commit(*, name: str, args: Sequence[Any] = (), countdown: float = 0) -> None:
    """One task `name` with `args`, after the commit (see `tasks_enqueue_on_commit`)."""
    tasks_enqueue_on_commit(name=name, args_each=[args], countdown=countdown)
