"""Prometheus metrics, shared by every process of a deployment (multiprocess mode).

granian runs several worker processes and Celery forks its pool, so each process writes
its counters to a file in `PROMETHEUS_MULTIPROC_DIR` and `/metrics` adds them up. Gauges
that describe shared state (click spool, queue depth, postbacks waiting, rollup age) are
computed when `/metrics` is scraped, not kept by any one process.

Call sites (cheap: no I/O; redirect counts are batched in-process):
    @metrics.count_redirect_answers             # on tracking.views.redirect
    @metrics.count_postback_answers             # on attribution.views.postback_intake
    metrics.postback_processed("attributed")    # attribution worker, per decided postback
or, by hand, `metrics.redirect_outcome("redirect")` / `metrics.postback_outcome("accepted")`.
Task latency is recorded by the Celery signals in `config/celery_app.py`.
"""

from __future__ import annotations

import atexit
import functools
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.views.decorators.http import require_safe


def multiprocess_directory() -> Path:
    """`PROMETHEUS_MULTIPROC_DIR`, else one directory per Redis key prefix under `.run/`,
    so two deployments (or two test runs) on one machine never add up each other's counters."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or getattr(
        settings, "PROMETHEUS_MULTIPROC_DIR", ""
    )
    if configured:
        return Path(configured)
    prefix = re.sub(r"[^A-Za-z0-9_-]+", "-", settings.REDIS_KEY_PREFIX).strip("-") or "default"
    return Path(settings.BASE_DIR) / ".run" / "prometheus" / prefix


_directory = multiprocess_directory()
_directory.mkdir(parents=True, exist_ok=True)
# prometheus_client picks single- or multi-process mode when it is first imported.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(_directory))

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

logger = logging.getLogger(__name__)

if not getattr(values.ValueClass, "_multiprocess", False):
    # Something imported prometheus_client before the directory was set; the metrics below
    # read `values.ValueClass` when they are made, so switching it here is enough.
    values.ValueClass = values.MultiProcessValue()

REDIRECT_OUTCOMES = frozenset({"redirect", "fallback", "not_found", "gone", "error"})
POSTBACK_OUTCOMES = frozenset(
    {"accepted", "duplicate", "invalid", "forbidden", "unknown_network", "rate_limited", "error"}
)
POSTBACK_PROCESSED_OUTCOMES = frozenset(
    {"attributed", "unattributed", "status_changed", "invalid", "failed", "retried"}
)

REDIRECTS = Counter("creditflow_redirects", "Requests to short links, by outcome", ["outcome"])
POSTBACKS = Counter("creditflow_postbacks", "Postbacks received, by answer", ["outcome"])
POSTBACKS_PROCESSED = Counter(
    "creditflow_postbacks_processed", "Postbacks decided by a worker, by outcome", ["outcome"]
)
TASK_DURATION = Histogram(
    "creditflow_task_duration_seconds",
    "Time a Celery task ran, by task and final state",
    ["task", "state"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
TASK_QUEUE_WAIT = Histogram(
    "creditflow_task_queue_wait_seconds",
    "Time from enqueue to the start of a Celery task",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)

# Children made once: `.labels()` per call costs more than the increment itself.
_redirect_counters = {outcome: REDIRECTS.labels(outcome) for outcome in REDIRECT_OUTCOMES}
_postback_counters = {outcome: POSTBACKS.labels(outcome) for outcome in POSTBACK_OUTCOMES}
_processed_counters = {
    outcome: POSTBACKS_PROCESSED.labels(outcome) for outcome in POSTBACK_PROCESSED_OUTCOMES
}


class _BatchedOutcomes:
    """Counts in a plain dict, written to the shared counter every `every` calls or
    `seconds`: a Prometheus increment (lock, pid check, mmap write) costs about as
    much as a tenth of a bare redirect. A killed process loses at most one batch."""

    def __init__(self, counters: dict[str, Any], *, every: int = 64, seconds: float = 1.0):
        self._counters = counters
        self._every = every
        self._seconds = seconds
        self._lock = threading.Lock()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.flush)

    def _reset(self) -> None:
        self._pending = dict.fromkeys(self._counters, 0)
        self._calls = 0
        self._flushed_at = time.monotonic()

    def add(self, outcome: str) -> None:
        if outcome not in self._pending:
            outcome = "error"
        with self._lock:
            self._pending[outcome] += 1
            self._calls += 1
            due = self._calls >= self._every
        if due or time.monotonic() - self._flushed_at > self._seconds:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, dict.fromkeys(self._counters, 0)
            self._calls = 0
            self._flushed_at = time.monotonic()
        for outcome, count in pending.items():
            if count:
                self._counters[outcome].inc(count)


_redirect_batch = _BatchedOutcomes(_redirect_counters)


def redirect_outcome(outcome: str) -> None:
    """Count one answered short-link request: redirect, fallback, not_found, gone or error."""
    _redirect_batch.add(outcome)


def postback_outcome(outcome: str) -> None:
    """Count one answered postback: accepted, duplicate, invalid, forbidden,
    unknown_network, rate_limited or error."""
    counter = _postback_counters.get(outcome)
    if counter is None:
        counter = _postback_counters["error"]
    counter.inc()


def postback_processed(outcome: str, count: int = 1) -> None:
    """Count postbacks a worker decided: attributed, unattributed, status_changed,
    invalid, failed or retried (`count` of them at once, for a batch)."""
    if count <= 0:
        return
    counter = _processed_counters.get(outcome)
    if counter is None:
        counter = _processed_counters["failed"]
    counter.inc(count)


_REDIRECT_STATUSES = {302: "redirect", 404: "not_found", 410: "gone"}
_POSTBACK_STATUSES = {
    200: "accepted",
    400: "invalid",
    403: "forbidden",
    404: "unknown_network",
    405: "invalid",
    413: "invalid",
    429: "rate_limited",
}

View = Callable[..., HttpResponseBase]


def count_redirect_answers(view: View) -> View:
    """Decorate the redirect view: each answer counted by outcome (302 to
    `LINK_FALLBACK_URL` as "fallback"; 405 and 5xx as "error")."""

    @functools.wraps(view)
    def counted(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        outcome = _REDIRECT_STATUSES.get(response.status_code, "error")
        if (
            outcome == "redirect"
            and settings.LINK_FALLBACK_URL
            and response.get("Location") == settings.LINK_FALLBACK_URL
        ):
            outcome = "fallback"
        _redirect_batch.add(outcome)
        return response

    return counted


def count_postback_answers(view: View) -> View:
    """Decorate the postback intake: each answer counted by outcome."""

    @functools.wraps(view)
    def counted(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = view(request, *args, **kwargs)
        postback_outcome(_POSTBACK_STATUSES.get(response.status_code, "error"))
        return response

    return counted


def task_finished(*, task: str, state: str, seconds: float) -> None:
    TASK_DURATION.labels(task, state).observe(seconds)


def task_queue_wait(*, task: str, seconds: float) -> None:
    TASK_QUEUE_WAIT.labels(task).observe(seconds)


# --- computed at scrape time ----------------------------------------------------


@dataclass(frozen=True)
class SpoolBacklog:
    files: int
    pending_bytes: int
    # Time since the last write to the stalest file that still has undrained bytes: a
    # lower bound on the age of the oldest click not yet in PostgreSQL.
    oldest_pending_seconds: float


def click_spool_backlog(directory: Path) -> SpoolBacklog:
    """What the drainer has not moved into PostgreSQL yet: spool files and their bytes
    past the drained offset (the whole file when the database cannot be read)."""
    from django.apps import apps
    from django.db import DatabaseError

    from tracking.services.spool import spool_files

    paths = spool_files(directory=directory)
    offsets: dict[str, int] = {}
    if paths:
        offset_model = apps.get_model("tracking", "ClickSpoolOffset")
        try:
            offsets = dict(
                offset_model.objects.filter(
                    file_name__in=[path.name for path in paths]
                ).values_list("file_name", "offset")
            )
        except DatabaseError:
            offsets = {}
    now = time.time()
    pending_bytes = 0
    oldest = 0.0
    files = 0
    for path in paths:
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        files += 1
        pending = max(0, status.st_size - offsets.get(path.name, 0))
        if pending:
            pending_bytes += pending
            oldest = max(oldest, now - status.st_mtime)
    return SpoolBacklog(files=files, pending_bytes=pending_bytes, oldest_pending_seconds=oldest)


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
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        with client.pipeline(transaction=False) as pipe:
            names = celery_queue_names()
            for name in names:
                pipe.llen(settings.REDIS_KEY_PREFIX + name)
            return dict(zip(names, (int(depth) for depth in pipe.execute()), strict=True))
    finally:
        client.close()


def postbacks_waiting() -> tuple[int, float | None]:
    """(count, age in seconds of the oldest) of postbacks received but not yet processed."""
    from django.apps import apps
    from django.db.models import Count, Min
    from django.utils import timezone

    postback = apps.get_model("attribution", "Postback")
    waiting = postback.objects.filter(status="received").aggregate(
        count=Count("id"), oldest=Min("received_at")
    )
    oldest = waiting["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest is not None else None
    return int(waiting["count"]), age


def rollup_age_seconds() -> float | None:
    """Seconds since the reports last caught up: the rollup watermark when there is one,
    else the newest rollup row; None when no rollup was ever computed."""
    from django.apps import apps
    from django.db.models import Max
    from django.utils import timezone

    newest = None
    if apps.is_installed("reports"):
        try:
            watermark = apps.get_model("reports", "RollupWatermark")
            newest = (
                watermark.objects.filter(name="touched")
                .values_list("scanned_until", flat=True)
                .first()
            )
        except LookupError:
            newest = None
        if newest is None:
            rollup = apps.get_model("reports", "DailyRollup")
            newest = rollup.objects.aggregate(newest=Max("computed_at"))["newest"]
    if newest is None:
        return None
    return max(0.0, (timezone.now() - newest).total_seconds())


class StateCollector(Collector):
    """Gauges read from the spool directory, Redis and PostgreSQL at scrape time.

    A source that cannot be read is left out and counted in
    `creditflow_metrics_source_up{source}` = 0, so a scrape never fails as a whole.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError
        from redis import RedisError

        up = GaugeMetricFamily(
            "creditflow_metrics_source_up",
            "1 when a metrics source could be read",
            labels=["source"],
        )

        try:
            backlog = click_spool_backlog(Path(settings.CLICK_SPOOL_DIR))
        except OSError:
            up.add_metric(["click_spool"], 0)
        else:
            up.add_metric(["click_spool"], 1)
            yield GaugeMetricFamily(
                "creditflow_click_spool_files", "Click spool files present", value=backlog.files
            )
            yield GaugeMetricFamily(
                "creditflow_click_spool_bytes",
                "Click spool bytes not yet drained into PostgreSQL",
                value=backlog.pending_bytes,
            )
            yield GaugeMetricFamily(
                "creditflow_click_spool_oldest_pending_seconds",
                "Seconds since the last write to the stalest file with undrained clicks",
                value=backlog.oldest_pending_seconds,
            )

        try:
            depths = celery_queue_depths()
        except RedisError:
            up.add_metric(["redis"], 0)
        else:
            up.add_metric(["redis"], 1)
            queue_depth = GaugeMetricFamily(
                "creditflow_queue_depth", "Tasks waiting in a Celery queue", labels=["queue"]
            )
            for name, depth in depths.items():
                queue_depth.add_metric([name], depth)
            yield queue_depth

        try:
            waiting, oldest_age = postbacks_waiting()
            rollup_age = rollup_age_seconds()
        except DatabaseError:
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            yield GaugeMetricFamily(
                "creditflow_postbacks_waiting",
                "Postbacks received, not yet processed",
                value=waiting,
            )
            yield GaugeMetricFamily(
                "creditflow_postback_oldest_waiting_seconds",
                "Age of the oldest postback not yet processed (0 when none waits)",
                value=oldest_age or 0.0,
            )
            if rollup_age is not None:
                yield GaugeMetricFamily(
                    "creditflow_rollup_age_seconds",
                    "Seconds since the daily rollups last caught up with new rows",
                    value=rollup_age,
                )
        yield up


def metrics_render() -> tuple[bytes, str]:
    """The exposition text for every process of this deployment, and its content type."""
    _redirect_batch.flush()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=os.environ["PROMETHEUS_MULTIPROC_DIR"])
    registry.register(StateCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _bearer_token_matches(request: HttpRequest) -> bool:
    expected = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, presented = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not presented:
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """`GET /metrics`: for a staff session, or `Authorization: Bearer $METRICS_TOKEN`."""
    user = getattr(request, "user", None)
    is_staff = bool(user is not None and user.is_authenticated and user.is_staff)
    if not (is_staff or _bearer_token_matches(request)):
        return JsonResponse(
            {"error": "staff login or 'Authorization: Bearer <METRICS_TOKEN>' required"},
            status=403,
        )
    body, content_type = metrics_render()
    return HttpResponse(body, content_type=content_type)
