"""Sending deliveries: one endpoint at a time, at least once, in order per conversion.

A task names one endpoint. It checks the URL's address (DNS may have changed), claims a
batch of due deliveries with `FOR UPDATE SKIP LOCKED` by pushing their `next_attempt_at`
past its sending time (a lease: a worker that dies leaves them due again), POSTs them one
after the other over one kept-alive connection, and writes the attempts and outcomes
with two set-based statements. A delivery is only claimed when no earlier event of the
same conversion is still pending for that endpoint, so events arrive in order.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import urllib3
from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from redis.exceptions import RedisError
from standardwebhooks import Webhook

from config.redis_client import redis_client, redis_key
from webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    webhook_id_of,
)
from webhooks.services.addresses import Target, UnsafeUrl, webhook_target_resolve

logger = logging.getLogger(__name__)

DELIVER_TASK = "webhooks.deliver_endpoint"
RESPONSE_KEPT_CHARS = 500
# Read at most this much of an answer: a receiver cannot make us download a large body.
RESPONSE_READ_BYTES = 4096
USER_AGENT = "creditflow-webhooks/1.0"


@dataclass
class Sent:
    delivery_id: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_start: str = ""
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass
class RunOutcome:
    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    released: int = 0
    more_due: bool = False
    next_due_in: float | None = None
    disabled: bool = False
    errors: list[str] = field(default_factory=list)


# --- waking endpoint tasks -------------------------------------------------------


def _wakeup_key(endpoint_id: int) -> str:
    return redis_key(f"webhook-wakeup:{endpoint_id}")


def webhook_endpoint_wake(*, endpoint_id: int, countdown: float = 0) -> None:
    """Queue the endpoint's task unless one is queued already (a countdown always queues)."""
    if not countdown:
        try:
            first = redis_client().set(
                _wakeup_key(endpoint_id), 1, nx=True, ex=int(settings.WEBHOOK_RUN_SECONDS) + 60
            )
        except RedisError:
            first = True
        if not first:
            return
    current_app.send_task(DELIVER_TASK, args=(endpoint_id,), countdown=countdown or None)


def webhook_endpoint_wake_on_commit(*, endpoint_id: int) -> None:
    transaction.on_commit(lambda: webhook_endpoint_wake(endpoint_id=endpoint_id), robust=True)


def _wakeup_taken(endpoint_id: int) -> None:
    try:
        redis_client().delete(_wakeup_key(endpoint_id))
    except RedisError:
        logger.warning("could not clear the wake-up key of webhook endpoint %s", endpoint_id)


def webhook_endpoints_wake_due(*, now: datetime | None = None) -> int:
    """Beat: wake every enabled endpoint that has a due delivery."""
    now = now or timezone.now()
    endpoint_ids = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
        )
        .values_list("endpoint_id", flat=True)
        .distinct()
    )
    for endpoint_id in endpoint_ids:
        webhook_endpoint_wake(endpoint_id=endpoint_id)
    return len(endpoint_ids)


# --- the retry schedule ------------------------------------------------------------


def retry_delay_seconds(*, failed_attempts: int) -> float | None:
    """How long after the n-th failed attempt the next one goes; None: give up."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE_SECONDS
    if failed_attempts > len(schedule):
        return None
    delay = float(schedule[failed_attempts - 1])
    if failed_attempts == 1:
        # The first retry stays within its promise (30 s by default): jitter only shortens it.
        return delay * random.uniform(0.8, 1.0)  # noqa: S311 (jitter, not a secret)
    return delay * random.uniform(0.8, 1.2)  # noqa: S311


def _schedule_span() -> timedelta:
    return timedelta(seconds=sum(settings.WEBHOOK_RETRY_SCHEDULE_SECONDS) * 1.2)


# --- signing and sending -----------------------------------------------------------


class Signer:
    """Standard Webhooks signatures; during a rotation, one per valid secret, space-separated."""

    def __init__(self, endpoint: WebhookEndpoint, now: datetime):
        secrets = [endpoint.secret]
        if (
            endpoint.previous_secret
            and endpoint.previous_secret_valid_until
            and endpoint.previous_secret_valid_until > now
        ):
            secrets.append(endpoint.previous_secret)
        self.webhooks = [Webhook(secret) for secret in secrets]

    def headers(self, *, message_id: int, body: bytes, at: datetime) -> dict[str, str]:
        webhook_id = webhook_id_of(message_id)
        signature = " ".join(
            webhook.sign(msg_id=webhook_id, timestamp=at, data=body) for webhook in self.webhooks
        )
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
        }


# Connection pools kept across task runs in this worker process, one per endpoint and
# checked address: keep-alive connections are what makes hundreds of deliveries a second.
_pools: dict[tuple[int, str, str, int, str], urllib3.HTTPConnectionPool] = {}


def _pool(endpoint_id: int, target: Target) -> urllib3.HTTPConnectionPool:
    key = (endpoint_id, target.scheme, target.host, target.port, target.address)
    pool = _pools.get(key)
    if pool is not None:
        return pool
    for old_key in [old for old in _pools if old[0] == endpoint_id]:
        _pools.pop(old_key).close()
    timeout = urllib3.Timeout(total=settings.WEBHOOK_TIMEOUT_SECONDS)
    if target.scheme == "https":
        # Connect to the checked address; the certificate and SNI still name the host.
        pool = urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            maxsize=1,
            timeout=timeout,
            retries=False,
            server_hostname=target.host,
            assert_hostname=target.host,
            cert_reqs="CERT_REQUIRED",
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            target.address, target.port, maxsize=1, timeout=timeout, retries=False
        )
    _pools[key] = pool
    return pool


def _post(
    pool: urllib3.HTTPConnectionPool, target: Target, body: bytes, headers: dict[str, str]
) -> tuple[int | None, str, str]:
    """(status, start of the answer, error). Redirects are answers, never followed."""
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
    except urllib3.exceptions.HTTPError as error:
        return None, "", _error_text(error)
    try:
        start = response.read(RESPONSE_READ_BYTES, decode_content=False)
        rest = response.read(1, decode_content=False) if start else b""
    except urllib3.exceptions.HTTPError as error:
        response.close()
        return response.status, "", _error_text(error)
    if rest:
        # A long answer: drop the connection rather than read it all.
        response.close()
    else:
        response.release_conn()
    return response.status, start.decode("utf-8", "replace")[:RESPONSE_KEPT_CHARS], ""


def _error_text(error: Exception) -> str:
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return f"no answer within {settings.WEBHOOK_TIMEOUT_SECONDS:g} s"
    reason = getattr(error, "reason", None) or error
    return f"{type(error).__name__}: {reason}"[:RESPONSE_KEPT_CHARS]


# --- one run for one endpoint ------------------------------------------------------

_CLAIM = """
    WITH firsts AS (
        -- The first pending event of each conversion: later ones wait behind it. One sort
        -- of the endpoint's pending rows, whatever the planner's statistics say (a
        -- correlated NOT EXISTS became an anti join that, on a table that had just grown
        -- by thousands of rows, scanned every pending row for each row: 10 s a claim).
        SELECT DISTINCT ON (conversion_id) id, next_attempt_at
          FROM {table}
         WHERE endpoint_id = %(endpoint)s AND status = 'pending'
         ORDER BY conversion_id, sequence
    ), due AS (
        SELECT d.id FROM {table} d
         WHERE d.id IN (SELECT id FROM firsts WHERE next_attempt_at <= %(now)s)
           AND d.status = 'pending' AND d.next_attempt_at <= %(now)s
         ORDER BY d.sequence
         LIMIT %(limit)s
         FOR UPDATE SKIP LOCKED
    )
    UPDATE {table} d SET next_attempt_at = %(lease)s FROM due WHERE d.id = due.id
    RETURNING d.id, d.message_id, d.attempts, d.created_at
"""


def _claim(endpoint_id: int, now: datetime, lease: datetime, limit: int) -> list[tuple[Any, ...]]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _CLAIM.format(table=WebhookDelivery._meta.db_table),
            {"endpoint": endpoint_id, "now": now, "lease": lease, "limit": limit},
        )
        return sorted(cursor.fetchall(), key=lambda row: row[0])


def webhook_endpoint_deliver(*, endpoint_id: int) -> RunOutcome:
    """Send what is due to one endpoint, for up to WEBHOOK_RUN_SECONDS. Safe to run twice."""
    _wakeup_taken(endpoint_id)
    outcome = RunOutcome()
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).first()
    if endpoint is None:
        return outcome
    deadline = time.monotonic() + settings.WEBHOOK_RUN_SECONDS
    lease_seconds = settings.WEBHOOK_RUN_SECONDS + settings.WEBHOOK_TIMEOUT_SECONDS + 30
    while time.monotonic() < deadline:
        now = timezone.now()
        claimed = _claim(
            endpoint_id,
            now,
            now + timedelta(seconds=lease_seconds),
            settings.WEBHOOK_DELIVERY_BATCH_SIZE,
        )
        if not claimed:
            break
        unreachable = _send_batch(endpoint, claimed, deadline, outcome)
        if unreachable or outcome.disabled:
            break
    else:
        outcome.more_due = True
    _wake_later(endpoint_id, outcome)
    return outcome


def _send_batch(
    endpoint: WebhookEndpoint, claimed: list[tuple[Any, ...]], deadline: float, outcome: RunOutcome
) -> bool:
    """Send the claimed deliveries; True when the endpoint could not be reached at all."""
    bodies = dict(
        WebhookMessage.objects.filter(pk__in=[row[1] for row in claimed]).values_list("pk", "body")
    )
    sent: list[Sent] = []
    unreachable = False
    try:
        target = webhook_target_resolve(url=endpoint.url)
    except UnsafeUrl as error:
        # Nothing is sent, but it counts as a failed attempt of the first one: an endpoint
        # whose host turned private fails, retries and is disabled like any dead one.
        sent.append(Sent(claimed[0][0], timezone.now(), None, 0, error=f"refused: {error}"))
        unreachable = True
    else:
        pool = _pool(endpoint.pk, target)
        signer = Signer(endpoint, timezone.now())
        base_headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        for delivery_id, message_id, _attempts, _created_at in claimed:
            if time.monotonic() >= deadline:
                break
            body = bodies[message_id].encode()
            at = timezone.now()
            headers = base_headers | signer.headers(message_id=message_id, body=body, at=at)
            started = time.perf_counter()
            status_code, start, failure = _post(pool, target, body, headers)
            latency_ms = int((time.perf_counter() - started) * 1000)
            sent.append(Sent(delivery_id, at, status_code, latency_ms, start, failure))
            if status_code is None:
                # No answer at all (refused, timed out): the rest would only wait as long.
                unreachable = True
                break
    _record(endpoint, claimed, sent, outcome)
    return unreachable


_UPDATE = """
    UPDATE {table} d
       SET status = x.status, attempts = x.attempts, next_attempt_at = x.next_attempt_at,
           last_attempt_at = COALESCE(x.last_attempt_at, d.last_attempt_at),
           last_status_code = COALESCE(x.last_status_code, d.last_status_code),
           last_error = COALESCE(x.last_error, d.last_error), delivered_at = x.delivered_at
      FROM jsonb_to_recordset(%s::jsonb) AS x(
           id bigint, status varchar, attempts integer, next_attempt_at timestamptz,
           last_attempt_at timestamptz, last_status_code integer, last_error varchar,
           delivered_at timestamptz)
     WHERE d.id = x.id AND d.status = 'pending'
"""


def _record(
    endpoint: WebhookEndpoint,
    claimed: list[tuple[Any, ...]],
    sent: list[Sent],
    outcome: RunOutcome,
) -> None:
    """Attempts in one INSERT, deliveries in one UPDATE, the endpoint's health last."""
    now = timezone.now()
    results = {attempt.delivery_id: attempt for attempt in sent}
    first_failure: Sent | None = next((s for s in sent if not s.succeeded), None)
    retry_at = now
    rows: list[dict[str, Any]] = []
    for delivery_id, _message_id, attempts, created_at in claimed:
        attempt = results.get(delivery_id)
        if attempt is not None and attempt.succeeded:
            outcome.delivered += 1
            rows.append(
                {
                    "id": delivery_id,
                    "status": DeliveryStatus.DELIVERED,
                    "attempts": attempts + 1,
                    "next_attempt_at": now.isoformat(),
                    "last_attempt_at": attempt.attempted_at.isoformat(),
                    "last_status_code": attempt.status_code,
                    "last_error": "",
                    "delivered_at": now.isoformat(),
                }
            )
            continue
        if attempt is not None:
            outcome.failed_attempts += 1
            failed = attempts + 1
            delay = retry_delay_seconds(failed_attempts=failed)
            reason = attempt.error or f"answered {attempt.status_code}"
        else:
            # Claimed but not sent (the endpoint was unreachable, or time ran out): it goes
            # again with the failed one, and no attempt is counted for it.
            failed = attempts
            delay = max(0.0, (retry_at - now).total_seconds()) if first_failure else 0.0
            reason = ""
            outcome.released += 1
        give_up = delay is None or (attempt is not None and now - created_at > _schedule_span())
        if give_up:
            outcome.given_up += 1
        next_at = now + timedelta(seconds=delay or 0)
        if attempt is not None and attempt is first_failure:
            retry_at = next_at
        rows.append(
            {
                "id": delivery_id,
                "status": DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING,
                "attempts": failed,
                "next_attempt_at": next_at.isoformat(),
                "last_attempt_at": attempt.attempted_at.isoformat() if attempt else None,
                "last_status_code": attempt.status_code if attempt else None,
                "last_error": reason[:500] if attempt else None,
                "delivered_at": None,
            }
        )
        if not give_up and (outcome.next_due_in is None or (delay or 0) < outcome.next_due_in):
            outcome.next_due_in = delay or 0.0
    with transaction.atomic():
        WebhookAttempt.objects.bulk_create(
            [
                WebhookAttempt(
                    delivery_id=attempt.delivery_id,
                    endpoint_id=endpoint.pk,
                    attempted_at=attempt.attempted_at,
                    status_code=attempt.status_code,
                    succeeded=attempt.succeeded,
                    latency_ms=attempt.latency_ms,
                    response_start=attempt.response_start,
                    error=attempt.error,
                )
                for attempt in sent
            ],
            batch_size=1000,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                _UPDATE.format(table=WebhookDelivery._meta.db_table),
                [json.dumps(rows)],
            )
        _endpoint_health(endpoint, sent, now, outcome)


def _endpoint_health(
    endpoint: WebhookEndpoint, sent: list[Sent], now: datetime, outcome: RunOutcome
) -> None:
    if not sent:
        return
    if any(attempt.succeeded for attempt in sent):
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            endpoint.failing_since = None
        return
    if endpoint.failing_since is None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
            failing_since=now
        )
        endpoint.failing_since = now
        return
    if now - endpoint.failing_since >= timedelta(seconds=settings.WEBHOOK_DISABLE_AFTER_SECONDS):
        last = sent[-1]
        reason = (
            f"disabled {now:%Y-%m-%d %H:%M} UTC: no successful delivery since "
            f"{endpoint.failing_since:%Y-%m-%d %H:%M} UTC (last: "
            f"{last.error or f'answered {last.status_code}'})"
        )[:500]
        WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_reason=reason
        )
        outcome.disabled = True
        logger.warning("webhook endpoint %s disabled: failing since %s", endpoint.pk, now)


def _wake_later(endpoint_id: int, outcome: RunOutcome) -> None:
    if outcome.disabled:
        return
    if outcome.more_due:
        webhook_endpoint_wake(endpoint_id=endpoint_id)
    elif (
        outcome.next_due_in is not None
        and outcome.next_due_in <= settings.WEBHOOK_WAKE_COUNTDOWN_MAX_SECONDS
    ):
        # Retries further out are woken by beat (webhooks.deliver_due).
        webhook_endpoint_wake(endpoint_id=endpoint_id, countdown=max(outcome.next_due_in, 0.5))
