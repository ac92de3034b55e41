"""From stored postbacks to conversions, status events and attribution decisions.

A processing task names one postback; it takes that row and up to
`batch_size - 1` other waiting rows, all locked `FOR UPDATE SKIP LOCKED` inside
one transaction, and decides them together with a handful of set-based queries.
The row lock is the claim: a worker that dies mid-way loses its connection,
PostgreSQL rolls the transaction back and the rows are `received` again for the
sweeper. Everything a postback changes (its conversion, the events, its own
status) commits together, so each postback counts exactly once.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from attribution.attribution_models import (
    REASON_NO_CLICK_ID,
    REASON_OFFER_MISMATCH,
    REASON_UNKNOWN_CLICK,
    CandidateClick,
    Decision,
    OfferWindows,
    attribution_decide,
)
from attribution.models import Conversion, ConversionStatus, Network, Postback
from attribution.services.batch import (
    ConversionKey,
    Credit,
    NamedClick,
    StoredPostback,
    Work,
    candidate_clicks,
    earlier_postbacks_waiting,
    fill_creative_and_campaign,
    insert_conversions,
    insert_events,
    lock_existing,
    mark_postbacks,
    named_clicks,
)
from attribution.services.intake import (
    postback_enqueue_on_commit,
    postback_wake_worker,
    postback_wakeup_taken,
)
from attribution.services.parsing import PostbackInvalid, postback_parse
from config import metrics

logger = logging.getLogger(__name__)

APPROVED = ConversionStatus.APPROVED.value
PENDING = ConversionStatus.PENDING.value
REJECTED = ConversionStatus.REJECTED.value
REVERSED = ConversionStatus.REVERSED.value

# Which status may follow which. A reversal is final; a rejection may be
# overturned on review; an approval never goes back to pending (a late,
# out-of-order "pending" is ignored rather than taking the money out).
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, REVERSED}),
    APPROVED: frozenset({REJECTED, REVERSED}),
    REJECTED: frozenset({APPROVED}),
    REVERSED: frozenset(),
}
# Reports count approved and pending conversions as revenue.
EARNING_STATUSES = frozenset({APPROVED, PENDING})


def revenue_of(status: str, payout: Decimal) -> Decimal:
    return payout if status in EARNING_STATUSES else Decimal(0)


@dataclass(frozen=True)
class Transition:
    status: str
    payout: Decimal
    changed: bool
    note: str


def conversion_transition(
    *, status: str, payout: Decimal, new_status: str, new_payout: Decimal | None
) -> Transition:
    """What a later postback does to a conversion: a new status, a new payout, or nothing."""
    target_payout = payout if new_payout is None else new_payout
    if new_status != status and new_status not in TRANSITIONS[status]:
        return Transition(status, payout, False, f"ignored: {status} -> {new_status} not allowed")
    if new_status == status and target_payout == payout:
        return Transition(status, payout, False, "no change (duplicate)")
    return Transition(new_status, target_payout, True, f"{status} -> {new_status}")


@dataclass(frozen=True)
class ProcessOutcome:
    claimed: int = 0
    processed: int = 0
    invalid: int = 0
    deferred: int = 0
    failed: int = 0


def postback_process(*, postback_id: int, batch_size: int = 1) -> ProcessOutcome:
    """Process one postback and up to `batch_size - 1` other waiting ones. Safe to repeat.

    With a batch, the task claims other waiting postbacks even when its own is done
    already: it may be the wake-up task they count on (see `postback_wake_worker`).
    """
    postback_wakeup_taken()
    own_waiting = (
        postback_id not in _recently_decided
        and Postback.objects.filter(pk=postback_id, status=Postback.Status.RECEIVED).update(
            attempts=F("attempts") + 1
        )
        > 0
    )
    if not own_waiting and batch_size <= 1:
        return ProcessOutcome()
    try:
        outcome = _process_claimed(
            own_id=postback_id if own_waiting else None, batch_size=batch_size
        )
    except (DataError, IntegrityError):
        logger.warning("postback batch of %s failed; deciding one by one", postback_id)
        return _process_alone(postback_id) if own_waiting else ProcessOutcome()
    if batch_size > 1 and outcome.claimed >= batch_size:
        # More are waiting than one batch takes: the next task goes on the queue now.
        postback_wake_worker(postback_id=postback_id)
    return outcome


def _process_alone(postback_id: int) -> ProcessOutcome:
    """After a batch failed on bad data: each postback on its own, failures marked."""
    outcome = ProcessOutcome()
    try:
        outcome = _process_claimed(own_id=postback_id, batch_size=1)
    except (DataError, IntegrityError) as error:
        Postback.objects.filter(pk=postback_id, status=Postback.Status.RECEIVED).update(
            status=Postback.Status.FAILED,
            reason=f"could not be stored: {type(error).__name__}: {error}"[:500],
            processed_at=timezone.now(),
        )
        metrics.postback_processed("failed")
        return ProcessOutcome(failed=1)
    return outcome


def _claim(*, own_id: int | None, batch_size: int) -> list[int]:
    """Lock this task's own postback (if still waiting) and other waiting ones."""
    table = Postback._meta.db_table
    ids: list[int] = []
    with connection.cursor() as cursor:
        if own_id is not None:
            cursor.execute(
                f"SELECT id FROM {table} WHERE id = %s AND status = %s "  # noqa: S608
                "FOR UPDATE SKIP LOCKED",
                [own_id, Postback.Status.RECEIVED],
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids or batch_size <= 1:
                return ids
        cursor.execute(
            f"SELECT id FROM {table} WHERE status = %s AND id <> %s "  # noqa: S608
            "ORDER BY received_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
            [Postback.Status.RECEIVED, own_id or 0, batch_size - len(ids)],
        )
        ids.extend(row[0] for row in cursor.fetchall())
    return ids


def _process_claimed(*, own_id: int | None, batch_size: int) -> ProcessOutcome:
    with transaction.atomic():
        ids = _claim(own_id=own_id, batch_size=batch_size)
        if not ids:
            return ProcessOutcome()
        if settings.POSTBACK_TEST_SLEEP_AFTER_CLAIM_SECONDS:
            time.sleep(settings.POSTBACK_TEST_SLEEP_AFTER_CLAIM_SECONDS)
        outcome, decided, counted = _decide(ids)
    # Committed (a task runs in autocommit): only now do the decisions count in /metrics.
    for name, count in counted.items():
        metrics.postback_processed(name, count=count)
    _remember_decided(decided)
    return outcome


# Postbacks this process decided (and committed) lately. The tasks of the other
# postbacks a batch took along arrive later, one per postback; they end here
# without a query. Only ever a shortcut: a miss goes to the database.
_recently_decided: OrderedDict[int, None] = OrderedDict()
RECENTLY_DECIDED_MAX = 200_000


def _remember_decided(ids: list[int]) -> None:
    for postback_id in ids:
        _recently_decided[postback_id] = None
    while len(_recently_decided) > RECENTLY_DECIDED_MAX:
        _recently_decided.popitem(last=False)


def _decide(ids: list[int]) -> tuple[ProcessOutcome, list[int], Counter[str]]:
    now = timezone.now()
    postbacks = [
        StoredPostback(**row)
        for row in Postback.objects.filter(pk__in=ids)
        .order_by("id")
        .values("pk", "network_id", "received_at", "query_string", "body", "content_type")
    ]
    networks = Network.objects.in_bulk({postback.network_id for postback in postbacks})
    works: list[Work] = []
    invalid: dict[int, str] = {}
    for postback in postbacks:
        network = networks[postback.network_id]
        try:
            parsed = postback_parse(
                query_string=postback.query_string,
                body=postback.body,
                content_type=postback.content_type,
                received_at=postback.received_at,
                parameter_aliases=network.parameter_aliases,
                status_map=network.status_map,
                default_currency=network.currency,
            )
        except PostbackInvalid as error:
            invalid[postback.pk] = str(error)
            continue
        key: ConversionKey = (
            (network.pk, "conversion", parsed.conversion_id)
            if parsed.conversion_id
            else (network.pk, "click", parsed.click_id)
        )
        works.append(Work(postback=postback, parsed=parsed, key=key))

    named = named_clicks({work.parsed.click_id for work in works if work.parsed.click_id})
    grace = timedelta(seconds=settings.CLICK_VISIBILITY_GRACE_SECONDS)
    deferred: list[Work] = []
    blocked_keys: set[ConversionKey] = set()
    ready: list[Work] = []
    for work in works:
        too_young = (
            work.parsed.click_id
            and work.parsed.click_id not in named
            and now - work.postback.received_at < grace
        )
        # Later postbacks of the same conversion wait too, so their order holds.
        if too_young or work.key in blocked_keys:
            deferred.append(work)
            blocked_keys.add(work.key)
        else:
            ready.append(work)

    by_key: dict[ConversionKey, list[Work]] = defaultdict(list)
    for work in ready:
        by_key[work.key].append(work)
    # Only a postback with a click id can create a conversion; one with a conversion
    # id alone changes an existing one.
    firsts = {key: group[0] for key, group in by_key.items() if group[0].parsed.click_id}
    credits = _credits(list(firsts.values()), named)

    inserted = insert_conversions(firsts, credits, now)
    existing = lock_existing([key for key in by_key if key not in inserted])
    for key in [key for key in by_key if key not in inserted and key not in existing]:
        group = by_key.pop(key)
        if earlier_postbacks_waiting(group[0].postback, claimed=ids):
            deferred.extend(group)
            continue
        for work in group:
            invalid[work.postback.pk] = "click_id is required (no conversion with this id)"
    events: list[dict[str, Any]] = []
    changed: dict[int, Conversion] = {}
    # For /metrics: every decided postback under one outcome.
    counted: Counter[str] = Counter()
    for key, group in by_key.items():
        if key in inserted:
            conversion = inserted[key]
            first = group[0]
            first.conversion_id = conversion.pk
            first.note = f"new conversion ({conversion.status})"
            counted["attributed" if conversion.attributed else "unattributed"] += 1
            events.append(
                {
                    "conversion_id": conversion.pk,
                    "postback_id": first.postback.pk,
                    "from_status": "",
                    "to_status": conversion.status,
                    "payout": str(conversion.payout),
                    "revenue_delta": str(revenue_of(conversion.status, conversion.payout)),
                }
            )
            rest = group[1:]
        else:
            conversion = existing[key]
            rest = group
        for work in rest:
            step = conversion_transition(
                status=conversion.status,
                payout=conversion.payout,
                new_status=work.parsed.status,
                new_payout=work.parsed.payout,
            )
            work.conversion_id = conversion.pk
            work.note = step.note
            if not step.changed:
                counted["attributed" if conversion.attributed else "unattributed"] += 1
                continue
            counted["status_changed"] += 1
            delta = revenue_of(step.status, step.payout) - revenue_of(
                conversion.status, conversion.payout
            )
            events.append(
                {
                    "conversion_id": conversion.pk,
                    "postback_id": work.postback.pk,
                    "from_status": conversion.status,
                    "to_status": step.status,
                    "payout": str(step.payout),
                    "revenue_delta": str(delta),
                }
            )
            conversion.status = step.status
            conversion.payout = step.payout
            conversion.updated_at = now
            changed[conversion.pk] = conversion

    if changed:
        Conversion.objects.bulk_update(
            list(changed.values()), ["status", "payout", "updated_at"], batch_size=1000
        )
    insert_events(events, now)
    deferred_ids = {work.postback.pk for work in deferred}
    done = [
        work
        for work in ready
        if work.postback.pk not in invalid and work.postback.pk not in deferred_ids
    ]
    mark_postbacks(done, invalid, now)
    if deferred:
        Postback.objects.filter(pk__in=[work.postback.pk for work in deferred]).update(
            last_enqueued_at=now
        )
        postback_enqueue_on_commit(
            postback_ids=[work.postback.pk for work in deferred],
            countdown=min(3.0, float(settings.CLICK_VISIBILITY_GRACE_SECONDS)),
        )
    outcome = ProcessOutcome(
        claimed=len(ids), processed=len(done), invalid=len(invalid), deferred=len(deferred)
    )
    counted["invalid"] = len(invalid)
    counted["retried"] = len(deferred)
    # Only processed ones: a replay may send an invalid one round again.
    return outcome, [work.postback.pk for work in done], counted


def _credits(firsts: list[Work], named: dict[str, NamedClick]) -> dict[ConversionKey, Credit]:
    """The attribution decision for every conversion this batch may create."""
    credits: dict[ConversionKey, Credit] = {}
    wanted: list[tuple[ConversionKey, NamedClick, datetime]] = []
    received: dict[ConversionKey, datetime] = {}
    for work in firsts:
        parsed = work.parsed
        received[work.key] = work.postback.received_at
        click = named.get(parsed.click_id) if parsed.click_id else None
        if not parsed.click_id:
            credits[work.key] = Credit(Decision(None, REASON_NO_CLICK_ID))
            continue
        if click is not None and (
            click.network_id != work.postback.network_id
            or (parsed.offer_id is not None and parsed.offer_id != click.offer_id)
        ):
            credits[work.key] = Credit(Decision(None, REASON_OFFER_MISMATCH))
            continue
        # Without the click, or with an impossible time, no candidate query is needed.
        early = attribution_decide(
            model="",
            named_click=None,
            clicks=[],
            windows=OfferWindows(),
            occurred_at=parsed.occurred_at,
            received_at=work.postback.received_at,
        )
        if click is None or early.reason != REASON_UNKNOWN_CLICK:
            credits[work.key] = Credit(early, click.model if click else "")
            continue
        wanted.append((work.key, click, parsed.occurred_at))

    candidates = candidate_clicks(wanted)
    for key, click, occurred_at in wanted:
        rows = candidates.get(key, [])
        decision = attribution_decide(
            model=click.model,
            named_click=_candidate(click),
            clicks=[row["candidate"] for row in rows],
            windows=click.windows,
            occurred_at=occurred_at,
            received_at=received[key],
        )
        chosen = next((row for row in rows if row["candidate"].id == decision.click_id), {})
        credits[key] = Credit(decision, click.model, dict(chosen), click.payout)
    fill_creative_and_campaign(credits)
    return credits


def _candidate(click: NamedClick) -> CandidateClick:
    return CandidateClick(
        id=click.id,
        occurred_at=click.occurred_at,
        channel=click.channel,
        is_bot=click.is_bot,
        is_preview=click.is_preview,
    )
