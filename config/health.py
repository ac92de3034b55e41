"""`/healthz`: is the database reachable, is Redis reachable, are the queues moving.

- `503` with `"status": "unavailable"` when PostgreSQL or Redis cannot be reached.
- `200` with `"status": "degraded"` and `"queues": {"stuck": true, "reasons": [...]}` when
  work is piling up: a postback still `received` after `HEALTH_POSTBACK_STUCK_SECONDS`
  (default 300), a Celery queue deeper than `HEALTH_QUEUE_DEPTH_MAX` (default 10,000), or
  clicks left in the spool for longer than `HEALTH_CLICK_SPOOL_STUCK_SECONDS` (default 60).
  Still 200, so a load balancer keeps sending traffic (the web tier itself is fine, and
  taking it away would lose clicks and postbacks); alert on `stuck`.
- `?strict=1` answers `503` for "degraded" too, for monitors that only read status codes.
"""

import time

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from redis import RedisError

from config.probes import probe_list
from config.redis_client import redis_client


def _check_database() -> dict[str, object]:
    started = time.monotonic()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}


def _check_redis() -> dict[str, object]:
    started = time.monotonic()
    try:
        client = redis_client()
        client.ping()
        depth = client.llen(settings.REDIS_KEY_PREFIX + settings.CELERY_TASK_DEFAULT_QUEUE)
    except RedisError as error:
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1), "queue_depth": depth}


def _check_queues(*, sources_down: set[str]) -> dict[str, object]:
    """Every registered probe (`config.probes`) whose source is up."""
    reasons: list[str] = []
    report: dict[str, object] = {}
    for probe in probe_list():
        if not probe.in_health or probe.source in sources_down:
            continue
        try:
            reading = probe.read()
        except probe.errors as error:
            report[f"{probe.name}_error"] = type(error).__name__
            continue
        report.update(reading.health)
        reasons.extend(reading.stuck)
    return {"stuck": bool(reasons), "reasons": reasons, **report}


def healthz(request: HttpRequest) -> JsonResponse:
    database = _check_database()
    redis_check = _check_redis()
    sources_down = {
        name for name, check in (("database", database), ("redis", redis_check)) if not check["ok"]
    }
    queues = _check_queues(sources_down=sources_down)
    if not (database["ok"] and redis_check["ok"]):
        status = "unavailable"
    elif queues["stuck"]:
        status = "degraded"
    else:
        status = "ok"
    strict = request.GET.get("strict") in {"1", "true", "yes"}
    failing = status == "unavailable" or (strict and status == "degraded")
    return JsonResponse(
        {"status": status, "database": database, "redis": redis_check, "queues": queues},
        status=503 if failing else 200,
    )
