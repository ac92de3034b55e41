import os
import time
from typing import Any

from celery import Celery, Task, signals

from config.logging import request_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("creditflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Message headers that carry the request id and the publish time from the process that
# enqueued a task to the worker that runs it.
REQUEST_ID_HEADER = "creditflow_request_id"
PUBLISHED_AT_HEADER = "creditflow_published_at"
STARTED_AT_ATTRIBUTE = "creditflow_started_at"


@signals.before_task_publish.connect
def _stamp_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    request_id = request_id_var.get()
    if request_id is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)
    headers.setdefault(PUBLISHED_AT_HEADER, time.time())


@signals.task_prerun.connect
def _restore_request_id(task: Task | None = None, **_: Any) -> None:
    if task is None:
        return
    request_id = task.request.get(REQUEST_ID_HEADER)
    # A task enqueued outside a request (beat, a command) gets its own id for its log lines.
    request_id_var.set(request_id if isinstance(request_id, str) else f"task-{task.request.id}")
    setattr(task.request, STARTED_AT_ATTRIBUTE, time.monotonic())
    published_at = task.request.get(PUBLISHED_AT_HEADER)
    if isinstance(published_at, int | float):
        from config import metrics

        metrics.task_queue_wait(task=task.name, seconds=max(0.0, time.time() - published_at))


@signals.task_postrun.connect
def _forget_request_id(task: Task | None = None, state: str | None = None, **_: Any) -> None:
    request_id_var.set(None)
    if task is None:
        return
    started_at = task.request.get(STARTED_AT_ATTRIBUTE)
    if isinstance(started_at, float):
        from config import metrics

        metrics.task_finished(
            task=task.name, state=state or "UNKNOWN", seconds=time.monotonic() - started_at
        )


@signals.task_prerun.connect
@signals.task_postrun.connect
def _close_old_database_connections(task: Task | None = None, **_: Any) -> None:
    """Django's rule for a connection between two uses, as around a request: closed when
    it errored and fails its health check, or is older than `CONN_MAX_AGE`; otherwise the
    next task reuses it (see `CELERY_DB_REUSE_MAX`). Not for a task applied in-process
    (`apply()`): that runs inside its caller's connection and transaction."""
    if task is not None and task.request.is_eager:
        return
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_init.connect
def _yield_the_cpu_to_the_web(**_: Any) -> None:
    """Deciding postbacks is throughput work that catches up when the web is idle; the
    intake's answers wait for the CPU. The pool's processes, forked after this, inherit
    the niceness (`WORKER_NICE`)."""
    from django.conf import settings

    from config.priority import process_lower_priority

    process_lower_priority(settings.WORKER_NICE, what="worker")
