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
from pathlib import Path

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse


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
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
        )
        client.ping()
        queue_key = settings.REDIS_KEY_PREFIX + settings.CELERY_TASK_DEFAULT_QUEUE
        depth = client.llen(queue_key)
    except redis.RedisError as error:
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1), "queue_depth": depth}


def _check_queues(*, database_ok: bool, redis_ok: bool) -> dict[str, object]:
    from config.metrics import celery_queue_depths, click_spool_backlog, postbacks_waiting

    reasons: list[str] = []
    report: dict[str, object] = {}
    if database_ok:
        try:
            waiting, oldest = postbacks_waiting()
        except DatabaseError as error:
            report["postbacks_error"] = type(error).__name__
        else:
            report["postbacks_waiting"] = waiting
            report["oldest_postback_seconds"] = round(oldest or 0.0, 1)
            if oldest is not None and oldest > settings.HEALTH_POSTBACK_STUCK_SECONDS:
                reasons.append(f"a postback has waited {int(oldest)} s for a worker")
    if redis_ok:
        try:
            depths = celery_queue_depths()
        except redis.RedisError as error:
            report["queues_error"] = type(error).__name__
        else:
            report["queue_depths"] = depths
            for name, depth in depths.items():
                if depth > settings.HEALTH_QUEUE_DEPTH_MAX:
                    reasons.append(f"queue {name!r} holds {depth} tasks")
    try:
        backlog = click_spool_backlog(Path(settings.CLICK_SPOOL_DIR))
    except OSError as error:
        report["click_spool_error"] = type(error).__name__
    else:
        report["click_spool_bytes"] = backlog.pending_bytes
        report["click_spool_oldest_pending_seconds"] = round(backlog.oldest_pending_seconds, 1)
        if backlog.oldest_pending_seconds > settings.HEALTH_CLICK_SPOOL_STUCK_SECONDS:
            reasons.append(
                f"clicks have waited {int(backlog.oldest_pending_seconds)} s in the spool"
            )
    return {"stuck": bool(reasons), "reasons": reasons, **report}


def healthz(request: HttpRequest) -> JsonResponse:
    database = _check_database()
    redis_check = _check_redis()
    queues = _check_queues(database_ok=bool(database["ok"]), redis_ok=bool(redis_check["ok"]))
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
