"""How many tasks wait in each Celery queue: a probe (see `config.probes`) of the broker."""

from __future__ import annotations

from django.conf import settings

from config.probes import Gauge, Reading
from config.redis_client import redis_client


def celery_queue_names() -> list[str]:
    names = {settings.CELERY_TASK_DEFAULT_QUEUE}
    for route in (getattr(settings, "CELERY_TASK_ROUTES", None) or {}).values():
        if isinstance(route, dict) and isinstance(route.get("queue"), str):
            names.add(route["queue"])
    for queue in getattr(settings, "CELERY_TASK_QUEUES", None) or []:
        name = getattr(queue, "name", queue)
        if isinstance(name, str):
            names.add(name)
    return sorted(names)


def celery_queue_depths() -> dict[str, int]:
    """LLEN of each Celery queue list (kombu prefixes its keys with REDIS_KEY_PREFIX)."""
    names = celery_queue_names()
    with redis_client().pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(settings.REDIS_KEY_PREFIX + name)
        return dict(zip(names, (int(depth) for depth in pipe.execute()), strict=True))


def queues_probe_read() -> Reading:
    depths = celery_queue_depths()
    return Reading(
        gauges=(
            Gauge(
                name="creditflow_queue_depth",
                documentation="Tasks waiting in a Celery queue",
                samples={(name,): depth for name, depth in depths.items()},
                label_names=("queue",),
            ),
        ),
        health={"queue_depths": depths},
        stuck=tuple(
            f"queue {name!r} holds {depth} tasks"
            for name, depth in depths.items()
            if depth > settings.HEALTH_QUEUE_DEPTH_MAX
        ),
    )
