"""Prometheus metrics, shared by every process of a deployment (multiprocess mode).

granian runs several worker processes and Celery forks its pool, so each process writes
its counters to a file in `PROMETHEUS_MULTIPROC_DIR` and `/metrics` adds them up. Gauges
that describe shared state (click spool, queue depth, postbacks waiting, rollup age) are
read when `/metrics` is scraped from the probes the apps registered (`config.probes`), not
kept by any one process.

Each app owns its counters and makes them from the `Counter` imported here (which puts
prometheus_client in multiprocess mode first): `tracking.metrics` counts redirect answers,
`attribution.metrics` postback answers and decisions. Task latency is recorded by the
Celery signals in `config/celery_app.py`.
"""

from __future__ import annotations

import atexit
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from config.probes import probe_list


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


class BatchedOutcomes:
    """Counts in a plain dict, written to the shared counters every `every` calls or
    `seconds` (and before each scrape): a Prometheus increment (lock, pid check, mmap
    write) costs about as much as a tenth of a bare redirect. A killed process loses at
    most one batch. An outcome not in `counters` counts as `fallback`."""

    def __init__(
        self,
        counters: dict[str, Any],
        *,
        fallback: str = "error",
        every: int = 64,
        seconds: float = 1.0,
    ):
        self._counters = counters
        self._fallback = fallback
        self._every = every
        self._seconds = seconds
        self._lock = threading.Lock()
        self._start_over()
        os.register_at_fork(after_in_child=self._start_over)
        atexit.register(self.flush)
        _batches.append(self)

    def _start_over(self) -> None:
        self._pending = dict.fromkeys(self._counters, 0)
        self._calls = 0
        self._flushed_at = time.monotonic()

    def add(self, outcome: str) -> None:
        if outcome not in self._pending:
            outcome = self._fallback
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


_batches: list[BatchedOutcomes] = []


def outcome_counters(counter: Counter, outcomes: Iterable[str]) -> dict[str, Any]:
    """One child per outcome, made once: `.labels()` per call costs more than the increment."""
    return {outcome: counter.labels(outcome) for outcome in outcomes}


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


def task_finished(*, task: str, state: str, seconds: float) -> None:
    TASK_DURATION.labels(task, state).observe(seconds)


def task_queue_wait(*, task: str, seconds: float) -> None:
    TASK_QUEUE_WAIT.labels(task).observe(seconds)


# --- computed at scrape time ----------------------------------------------------


class StateCollector(Collector):
    """Gauges of the registered probes (`config.probes`), read at scrape time.

    A probe that cannot be read is left out and its source counted in
    `creditflow_metrics_source_up{source}` = 0, so a scrape never fails as a whole.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        sources: dict[str, int] = {}
        for probe in probe_list():
            try:
                reading = probe.read()
            except probe.errors:
                sources[probe.source] = 0
                continue
            sources.setdefault(probe.source, 1)
            for gauge in reading.gauges:
                family = GaugeMetricFamily(
                    gauge.name, gauge.documentation, labels=list(gauge.label_names)
                )
                for labels, value in gauge.samples.items():
                    family.add_metric(list(labels), value)
                yield family
        up = GaugeMetricFamily(
            "creditflow_metrics_source_up",
            "1 when a metrics source could be read",
            labels=["source"],
        )
        for source, value in sources.items():
            up.add_metric([source], value)
        yield up


def metrics_render() -> tuple[bytes, str]:
    """The exposition text for every process of this deployment, and its content type."""
    for batch in _batches:
        batch.flush()
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
