"""From stored postbacks to conversions, status events and attribution decisions.

A processing task names one postback; it takes that row and up to
`batch_size - 1` other waiting rows, all locked `FOR UPDATE SKIP LOCKED` inside
one transaction, and decides them together with a handful of set-based queries.
The row lock is the claim: a worker that dies mid-way loses its connection,
PostgreSQL rolls the transaction back and the rows are `received` again for the
sweeper. Everything a postback changes (its conversion, the events, its own
status) commits together, so each postback counts exactly once. What each
postback decides (credit, payout, status change) is in `decision.py`.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from attribution import metrics
from attribution.attribution_models import REASON_UNKNOWN_OFFER
from attribution.models import Conversion, Network, Postback
from attribution.services.batch import (
    ConversionKey,
    Credit,
    NamedClick,
    StoredPostback,
    Work,
    conversion_key,
    earlier_postbacks_waiting,
    insert_conversions,
    insert_events,
    lock_existing,
    mark_postbacks,
    named_clicks,
    person_key,
)
from attribution.services.decision import conversion_apply_postbacks, conversion_credits
from attribution.services.parsing import ParsedPostback, PostbackInvalid, postback_parse
from attribution.services.wakeup import (
    postback_enqueue_on_commit,
    postback_wake_worker,
    postback_wakeup_taken,
)
from tracking.selectors import click_spool_pending_since

logger = logging.getLogger(__name__)


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
    """Decide the claimed postbacks and store every decision, inside the claim's transaction."""
    now = timezone.now()
    works, invalid = _parse_claimed(ids)
    decided = postbacks_decide(works=works, invalid=invalid, claimed=ids, now=now)
    mark_postbacks(decided.done, invalid, now)
    if decided.deferred:
        deferred_ids = [work.postback.pk for work in decided.deferred]
        Postback.objects.filter(pk__in=deferred_ids).update(last_enqueued_at=now)
        postbacks_retry_on_commit(postback_ids=deferred_ids)
    outcome = ProcessOutcome(
        claimed=len(ids),
        processed=len(decided.done),
        invalid=len(invalid),
        deferred=len(decided.deferred),
    )
    # Only processed ones: a replay may send an invalid one round again.
    return outcome, [work.postback.pk for work in decided.done], decided.counted


def postbacks_retry_on_commit(*, postback_ids: list[int]) -> None:
    """Deferred postbacks (a click not visible yet) come round again after the commit."""
    postback_enqueue_on_commit(
        postback_ids=postback_ids,
        countdown=min(3.0, float(settings.CLICK_VISIBILITY_GRACE_SECONDS)),
    )


@dataclass
class Decided:
    """What `postbacks_decide` did: the postbacks decided (each with its conversion and
    note), the ones to try again later, and the outcomes for /metrics."""

    done: list[Work]
    deferred: list[Work]
    counted: Counter[str]


def postbacks_decide(
    *, works: list[Work], invalid: dict[int, str], claimed: list[int], now: datetime
) -> Decided:
    """Decide parsed postbacks together and store their conversions and events.

    Inside the caller's transaction; the postback rows themselves are the caller's to
    mark (processing updates the claimed rows, an import inserts them decided). A
    postback found invalid here is added to `invalid`. `claimed` are stored postbacks
    of this batch that no other worker can be deciding.
    """
    named = named_clicks({work.parsed.click_id for work in works if work.parsed.click_id})
    ready, deferred = _hold_back_unseen_clicks(works, named=named, now=now)

    groups: dict[ConversionKey, list[Work]] = defaultdict(list)
    for work in ready:
        groups[work.key].append(work)
    # Only a postback with a click id (or a person and an offer) can create a conversion;
    # one with a conversion id alone changes an existing one.
    firsts = {
        key: group[0]
        for key, group in groups.items()
        if group[0].parsed.click_id or group[0].parsed.person
    }
    credits = conversion_credits(firsts=list(firsts.values()), named=named)
    for key in _persons_clicks_maybe_spooled(firsts, credits):
        # As a click id waits for its click: the person's click may still be in the spool.
        deferred.extend(groups.pop(key))
        del firsts[key]
        del credits[key]
    inserted = insert_conversions(firsts, credits, now)
    existing = lock_existing([key for key in groups if key not in inserted])
    for key in [key for key in groups if key not in inserted and key not in existing]:
        group = groups.pop(key)
        if earlier_postbacks_waiting(group[0].postback, claimed=claimed):
            deferred.extend(group)
            continue
        for work in group:
            invalid[work.postback.pk] = "click_id is required (no conversion with this id)"
    applied = conversion_apply_postbacks(
        groups=groups, inserted=inserted, existing=existing, now=now
    )

    if applied.changed:
        Conversion.objects.bulk_update(
            [
                conversion
                if isinstance(conversion, Conversion)
                else Conversion(
                    pk=conversion.pk,
                    status=conversion.status,
                    payout=conversion.payout,
                    updated_at=conversion.updated_at,
                )
                for conversion in applied.changed.values()
            ],
            ["status", "payout", "updated_at"],
            batch_size=1000,
        )
    insert_events(applied.events, now)
    deferred_ids = {work.postback.pk for work in deferred}
    done = [
        work
        for work in ready
        if work.postback.pk not in invalid and work.postback.pk not in deferred_ids
    ]
    counted = applied.counted
    counted["invalid"] = len(invalid)
    counted["retried"] = len(deferred)
    return Decided(done=done, deferred=deferred, counted=counted)


def postback_work(*, postback: StoredPostback, parsed: ParsedPostback, network_id: int) -> Work:
    """A parsed postback keyed on the conversion it creates or changes."""
    key = conversion_key(
        network_id,
        parsed.conversion_id,
        parsed.click_id,
        person_key(offer_id=parsed.offer_id, person=parsed.person) if parsed.person else "",
    )
    return Work(postback=postback, parsed=parsed, key=key)


def _parse_claimed(ids: list[int]) -> tuple[list[Work], dict[int, str]]:
    """The claimed postbacks parsed, each keyed on its conversion; the unreadable ones apart."""
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
        works.append(postback_work(postback=postback, parsed=parsed, network_id=network.pk))
    return works, invalid


def _persons_clicks_maybe_spooled(
    firsts: dict[ConversionKey, Work], credits: dict[ConversionKey, Credit]
) -> list[ConversionKey]:
    """New conversions by person left without click-through credit while the click spool
    still holds a click from before their time: that click may be theirs, so they wait
    until the drainer has moved the spool past it (then they are decided as usual)."""
    unmatched = [
        key
        for key, work in firsts.items()
        if not work.parsed.click_id
        and work.parsed.person
        and not credits[key].decision.attributed
        and credits[key].decision.reason != REASON_UNKNOWN_OFFER
    ]
    if not unmatched:
        return []
    pending_since = click_spool_pending_since(directory=Path(settings.CLICK_SPOOL_DIR))
    if pending_since is None:
        return []
    return [
        key
        for key in unmatched
        if pending_since <= min(firsts[key].parsed.occurred_at, firsts[key].postback.received_at)
    ]


def _hold_back_unseen_clicks(
    works: list[Work], *, named: dict[str, NamedClick], now: datetime
) -> tuple[list[Work], list[Work]]:
    """Ready and deferred: a click younger than the grace may not be visible yet."""
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
    return ready, deferred
