"""Nothing is lost: the sweeper and replay put stored postbacks back on the queue.

The database row is the source of truth. Redis may drop queued messages and a
worker may die mid-task (its transaction rolls back); either way the postback
stays `received`, and the sweeper enqueues it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from attribution.models import Postback
from attribution.services.recredit import conversions_redecide
from attribution.services.wakeup import postback_enqueue_on_commit

SWEEP_LIMIT = 10_000


@dataclass(frozen=True)
class SweepOutcome:
    enqueued: int
    given_up: int


def postback_sweep(
    *, now: datetime | None = None, older_than: timedelta | None = None, limit: int = SWEEP_LIMIT
) -> SweepOutcome:
    """Enqueue again every postback still `received` that has waited longer than `older_than`.

    Rows a worker holds right now are skipped (`SKIP LOCKED`); a row that has
    been tried `POSTBACK_MAX_ATTEMPTS` times is marked failed for an operator.
    """
    now = now or timezone.now()
    older_than = (
        older_than
        if older_than is not None
        else timedelta(seconds=settings.POSTBACK_SWEEP_AFTER_SECONDS)
    )
    cutoff = now - older_than
    waited_long = Q(last_enqueued_at__lt=cutoff) | Q(
        last_enqueued_at__isnull=True, received_at__lt=cutoff
    )
    table = Postback._meta.db_table
    with transaction.atomic():
        given_up = Postback.objects.filter(
            waited_long,
            status=Postback.Status.RECEIVED,
            attempts__gte=settings.POSTBACK_MAX_ATTEMPTS,
        ).update(
            status=Postback.Status.FAILED,
            reason=f"gave up after {settings.POSTBACK_MAX_ATTEMPTS} attempts",
            processed_at=now,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {table} SET last_enqueued_at = %s
                 WHERE id IN (
                    SELECT id FROM {table}
                     WHERE status = %s AND COALESCE(last_enqueued_at, received_at) < %s
                     ORDER BY received_at LIMIT %s FOR UPDATE SKIP LOCKED)
                RETURNING id
                """,  # noqa: S608
                [now, Postback.Status.RECEIVED, cutoff, limit],
            )
            ids = sorted(row[0] for row in cursor.fetchall())
        postback_enqueue_on_commit(postback_ids=ids)
    return SweepOutcome(enqueued=len(ids), given_up=given_up)


@dataclass(frozen=True)
class ReplayOutcome:
    enqueued: int
    already_processed: int
    # Of the already processed ones' conversions: how many were decided again, and how
    # many of those now credit another click (each kept as a `CreditChange`).
    redecided: int = 0
    credit_changed: int = 0


def postback_replay(
    *, postback_ids: Sequence[int], replayed_by_id: int | None = None
) -> ReplayOutcome:
    """Process these postbacks again. Idempotent.

    Invalid and failed ones go back to `received` (a fixed alias or status map
    may make them valid now) and are enqueued with the waiting ones. A postback
    already processed has counted its status once and does not again; its conversion
    is decided again under its offer's current settings, as a re-attribution does
    (late clicks, merged contacts, changed settings).
    """
    now = timezone.now()
    with transaction.atomic():
        Postback.objects.filter(
            pk__in=postback_ids, status__in=[Postback.Status.INVALID, Postback.Status.FAILED]
        ).update(status=Postback.Status.RECEIVED, reason="", attempts=0, last_enqueued_at=now)
        waiting = list(
            Postback.objects.filter(
                pk__in=postback_ids, status=Postback.Status.RECEIVED
            ).values_list("pk", flat=True)
        )
        Postback.objects.filter(pk__in=waiting).update(last_enqueued_at=now)
        postback_enqueue_on_commit(postback_ids=sorted(waiting))
        processed = list(
            Postback.objects.filter(
                pk__in=postback_ids, status=Postback.Status.PROCESSED
            ).values_list("pk", "conversion_id")
        )
        conversion_ids = sorted({pk for _, pk in processed if pk is not None})
        redecided = conversions_redecide(
            conversion_ids=conversion_ids,
            changed_by_id=replayed_by_id,
            why=f"replay of postback{'s' if len(processed) > 1 else ''} "
            + ", ".join(f"#{pk}" for pk, _ in processed[:10])
            + (" ..." if len(processed) > 10 else ""),
        )
    return ReplayOutcome(
        enqueued=len(waiting),
        already_processed=len(processed),
        redecided=redecided.decided,
        credit_changed=redecided.changed,
    )
