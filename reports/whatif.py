"""What if: history credited under other configurations, and re-attribution applied.

`comparison_create` records a comparison and hands it to a worker; `comparison_run`
decides the range's approved and pending conversions under each configuration with
`attribution.services.recredit` (the live decision) in chunks, keeps a table by dimension
key and every conversion whose credit moves, and changes nothing recorded.

`reattribution_create` / `reattribution_run` decide an offer's conversions over a range
again under its current settings (`conversions_redecide`: every change kept as a
`CreditChange`), then recompute the rollups of the days that changed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import date, timedelta
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from attribution.models import Offer
from attribution.services.recredit import (
    Credit,
    CreditSettings,
    StoredConversion,
    conversion_ids_in_range,
    conversions_credit,
    conversions_redecide,
    conversions_stored_in_range,
    offer_credit_settings,
)
from config.enqueue import task_enqueue_on_commit, tasks_enqueue_on_commit
from reports.models import Comparison, ComparisonMove, Dimension, JobStatus, Reattribution
from reports.selectors import report_key_names
from reports.services import rollup_recompute_day

logger = logging.getLogger(__name__)

CHUNK = 5_000
REDECIDE_CHUNK = 1_000
SETTING_NAMES = (
    "attribution_model",
    "click_window_days",
    "sms_window_days",
    "email_window_days",
    "view_window_hours",
)
# A job whose worker died is taken again after this long.
STALE_AFTER = timedelta(hours=1)


class WhatIfInputError(ValueError):
    """A comparison or re-attribution that cannot be run, with the reason; `status` is the
    API's answer (404: an offer that does not exist, 409: two models under one name)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def comparison_create(
    *,
    start: date,
    end: date,
    dimension: str,
    offer_id: int | None,
    configurations: Sequence[dict[str, Any]],
    requested_by_id: int | None,
) -> Comparison:
    """Record a comparison and hand it to a worker once the row is committed."""
    start, end = _ordered(start, end)
    if dimension not in Dimension.values:
        raise WhatIfInputError(f"Unknown dimension {dimension!r}.")
    if not 2 <= len(configurations) <= 4:
        raise WhatIfInputError("Compare 2 to 4 configurations.")
    names = [str(configuration.get("name", "")) for configuration in configurations]
    if len(set(names)) != len(names) or not all(names):
        raise WhatIfInputError("Each configuration needs a name of its own.", status=409)
    if offer_id is not None and not Offer.objects.filter(pk=offer_id).exists():
        raise WhatIfInputError(f"No offer with id {offer_id}.", status=404)
    cleaned = [
        {"name": configuration["name"]}
        | {
            name: configuration[name]
            for name in SETTING_NAMES
            if configuration.get(name) is not None
        }
        for configuration in configurations
    ]
    comparison = Comparison.objects.create(
        start=start,
        end=end,
        dimension=dimension,
        offer_id=offer_id,
        configurations=cleaned,
        requested_by_id=requested_by_id,
    )
    task_enqueue_on_commit(name="reports.comparison_run", args=[comparison.pk])
    return comparison


def _ordered(start: date, end: date) -> tuple[date, date]:
    """Any length: the work is the conversions in the range, however many days it spans. The
    days between two dates are the same whichever is named first."""
    return (start, end) if start <= end else (end, start)


def _claim(model: type[Comparison] | type[Reattribution], pk: int) -> bool:
    """Take a queued job (or one whose worker died long ago)."""
    now = timezone.now()
    return bool(
        model.objects.filter(pk=pk, status=JobStatus.QUEUED).update(
            status=JobStatus.RUNNING, started_at=now, conversions_done=0
        )
        or model.objects.filter(
            pk=pk, status=JobStatus.RUNNING, started_at__lt=now - STALE_AFTER
        ).update(started_at=now, conversions_done=0)
    )


# Per key, under each of n configurations: n conversion counts, then n revenues in
# ten-thousandths (one flat list per key: a comparison by message can have 100,000 keys).
_Tallies = dict[int | None, list[int]]


def comparison_run(*, comparison_id: int) -> Comparison | None:
    """Compute a queued comparison; None when another worker has it or it is done."""
    if not _claim(Comparison, comparison_id):
        return None
    comparison = Comparison.objects.get(pk=comparison_id)
    try:
        _compare(comparison)
    except Exception as error:
        Comparison.objects.filter(pk=comparison_id).update(
            status=JobStatus.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    # Without its rows: they can be 100,000 keys, read only when asked for.
    return Comparison.objects.defer("rows").get(pk=comparison_id)


def comparison_settings(
    comparison: Comparison, offers: Sequence[Offer]
) -> dict[int, list[CreditSettings]]:
    """Each offer's settings with every configuration's own ones put over them."""
    return {
        offer.pk: [
            offer_credit_settings(offer).with_changes(
                **{name: configuration.get(name) for name in SETTING_NAMES}
            )
            for configuration in comparison.configurations
        ]
        for offer in offers
    }


def _compare(comparison: Comparison) -> None:
    names = [str(configuration["name"]) for configuration in comparison.configurations]
    conversions = conversions_stored_in_range(
        start=comparison.start,
        end=comparison.end,
        offer_id=comparison.offer_id,
        earning_only=True,
    )
    Comparison.objects.filter(pk=comparison.pk).update(conversions_total=len(conversions))
    settings_by_offer = comparison_settings(comparison, list(Offer.objects.all()))
    tallies: _Tallies = {}
    count = len(names)
    # Revenue in ten-thousandths (the payout column's four decimals): integers add and
    # compare several times faster than Decimals, and exactly.
    empty: list[int] = [0] * (2 * count)
    moved = 0
    ComparisonMove.objects.filter(comparison=comparison).delete()
    for done in range(0, len(conversions), CHUNK):
        stored = conversions[done : done + CHUNK]
        credits = conversions_credit(conversions=stored, settings_by_offer=settings_by_offer)
        keys_of = _dimension_keys(comparison.dimension, stored, credits)
        moves: list[tuple[int, int, str, str]] = []
        for conversion in stored:
            keys = keys_of[conversion.pk]
            units = int(conversion.payout.scaleb(4))
            for position, key in enumerate(keys):
                tally = tallies.get(key)
                if tally is None:
                    tally = tallies[key] = empty.copy()
                tally[position] += 1
                tally[count + position] += units
            per_configuration = credits[conversion.pk]
            first = _credit_identity(per_configuration[0])
            if any(_credit_identity(credit) != first for credit in per_configuration[1:]):
                moves.append(
                    (
                        comparison.pk,
                        conversion.pk,
                        _array_literal(keys),
                        "["
                        + ",".join([_credit_json(credit) for credit in per_configuration])
                        + "]",
                    )
                )
        _moves_store(moves)
        moved += len(moves)
        Comparison.objects.filter(pk=comparison.pk).update(
            conversions_done=done + len(stored), moved=moved
        )
    unattributed = tallies.pop(None, None)
    with connection.cursor() as cursor:
        # The rows as JSON text made here (PostgreSQL parses it): 150,000 keys of nested
        # dicts cost seconds to build and encode as Python objects.
        cursor.execute(
            f"UPDATE {Comparison._meta.db_table} SET rows = %s::jsonb WHERE id = %s",  # noqa: S608
            [_rows_json(comparison.dimension, names, tallies), comparison.pk],
        )
    Comparison.objects.filter(pk=comparison.pk).update(
        status=JobStatus.DONE,
        unattributed=_tally_json(names, unattributed) if unattributed else {},
        moved=moved,
        finished_at=timezone.now(),
    )


def _array_literal(keys: list[int | None]) -> str:
    """A PostgreSQL array in COPY's text form (psycopg's list dumper costs more per row)."""
    return "{" + ",".join("NULL" if key is None else str(key) for key in keys) + "}"


def _moves_store(moves: list[tuple[int, int, str, str]]) -> None:
    """COPY, not INSERT: a comparison of 100,000 conversions may move most of them."""
    if not moves:
        return
    columns = "comparison_id, conversion_id, keys, credits"
    table = ComparisonMove._meta.db_table
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for move in moves:
            copy.write_row(move)


def _credit_identity(credit: Credit) -> tuple[Any, ...]:
    """What "the credit moves" compares: the credited click (or view-through message)."""
    return (credit.click_pk, credit.message_id, credit.attribution_type)


def _json_int(value: int | None) -> str:
    return "null" if value is None else str(value)


def _credits_json(credits: Sequence[Credit]) -> str:
    # Configurations often agree with each other (not with the first: then nothing moves).
    texts: dict[Credit, str] = {}
    for credit in credits:
        if credit not in texts:
            texts[credit] = _credit_json(credit)
    return "[" + ",".join([texts[credit] for credit in credits]) + "]"


def _credit_json(credit: Credit) -> str:
    """`{"click", "message", "attribution_type", "reason", "why"}` as JSON text, made
    directly: `json.dumps` of a dict each was the largest cost of storing the moves."""
    return (
        f'{{"click": {_json_int(credit.click_pk)}, "message": {_json_int(credit.message_id)}, '
        f'"attribution_type": {_json_text(credit.attribution_type)}, '
        f'"reason": {encode_basestring_ascii(credit.decision.reason)}, '
        f'"why": {encode_basestring_ascii(credit.why())}}}'
    )


def _json_text(text: str) -> str:
    """A string as JSON, "" as null; `json.dumps`'s own quoting without its overhead."""
    return encode_basestring_ascii(text) if text else "null"


def _dimension_keys(
    dimension: str, stored: Sequence[StoredConversion], credits: dict[int, list[Credit]]
) -> dict[int, list[int | None]]:
    """Each conversion's key under each configuration, counted as the daily rollups do.

    A credited conversion counts under its message and the message's creative, campaign,
    offer and network; an unattributed one only under its own network (key None elsewhere).
    """
    if dimension == Dimension.NETWORK:
        return {c.pk: [c.network_id] * len(credits[c.pk]) for c in stored}
    if dimension == Dimension.MESSAGE:
        return {
            conversion.pk: [credit.message_id for credit in credits[conversion.pk]]
            for conversion in stored
        }
    message_ids = {
        credit.message_id
        for per_configuration in credits.values()
        for credit in per_configuration
        if credit.message_id is not None
    }
    column = {
        Dimension.CREATIVE: "creative_id",
        Dimension.CAMPAIGN: "campaign_id",
        Dimension.OFFER: "offer_id",
    }[Dimension(dimension)]
    key_of_message: dict[int, int] = {}
    if message_ids:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, {column} FROM tracking_message WHERE id = ANY(%s)",  # noqa: S608
                [list(message_ids)],
            )
            key_of_message = dict(cursor.fetchall())
    return {
        conversion.pk: [
            key_of_message[credit.message_id] if credit.message_id is not None else None
            for credit in credits[conversion.pk]
        ]
        for conversion in stored
    }


@lru_cache(maxsize=65_536)
def _money(units: int) -> str:
    """Ten-thousandths as the conversions API shows money: "-30.0000" (a comparison writes
    a million of them, mostly the same few amounts)."""
    whole, fraction = divmod(abs(units), 10_000)
    return f"{'-' if units < 0 else ''}{whole}.{fraction:04d}"


def _tally_json(names: Sequence[str], tally: Sequence[int]) -> dict[str, Any]:
    count = len(names)
    first_conversions, first_revenue = tally[0], tally[count]
    return {
        name: {
            "conversions": tally[position],
            "revenue": _money(tally[count + position]),
            "conversions_change": tally[position] - first_conversions,
            "revenue_change": _money(tally[count + position] - first_revenue),
        }
        for position, name in enumerate(names)
    }


def _rows_json(dimension: str, names: Sequence[str], tallies: _Tallies) -> str:
    """One row per key (`_tally_json` under each name), the biggest shift first, then by
    the first configuration's revenue; as JSON text."""
    count = len(names)

    def order(item: tuple[int | None, list[int]]) -> tuple[int, int, int]:
        key, tally = item
        first = tally[count]
        shift = max(abs(revenue - first) for revenue in tally[count:])
        return (-shift, -first, key or 0)

    ordered = sorted(((k, t) for k, t in tallies.items() if k is not None), key=order)
    label_of = report_key_names(dimension=dimension, keys=[key for key, _ in ordered])
    quoted = [json.dumps(name) for name in names]
    rows = []
    for key, tally in ordered:
        first_conversions, first_revenue = tally[0], tally[count]
        cells = [
            f'{quoted[position]}: {{"conversions": {tally[position]}, '
            f'"revenue": "{_money(tally[count + position])}", '
            f'"conversions_change": {tally[position] - first_conversions}, '
            f'"revenue_change": "{_money(tally[count + position] - first_revenue)}"}}'
            for position in range(count)
        ]
        rows.append(
            f'{{"key": {key}, "name": {json.dumps(label_of.get(key, ""))}, {", ".join(cells)}}}'
        )
    return "[" + ",".join(rows) + "]"


def comparison_moves(
    *, comparison: Comparison, key: int | None = None
) -> Any:  # QuerySet[ComparisonMove]
    """The moved conversions, all or those into or out of one key, oldest conversion first."""
    moves = ComparisonMove.objects.filter(comparison=comparison).select_related("conversion")
    if key is not None:
        moves = moves.filter(keys__contains=[key])
    return moves.order_by("conversion_id")


def reattribution_create(
    *, start: date, end: date, offer_id: int, requested_by_id: int | None
) -> Reattribution:
    """Record a re-attribution and hand it to a worker once the row is committed."""
    start, end = _ordered(start, end)
    offer = Offer.objects.filter(pk=offer_id).first()
    if offer is None:
        raise WhatIfInputError(f"No offer with id {offer_id}.", status=404)
    job = Reattribution.objects.create(
        start=start,
        end=end,
        offer=offer,
        requested_by_id=requested_by_id,
    )
    task_enqueue_on_commit(name="reports.reattribution_run", args=[job.pk])
    return job


def reattribution_run(*, reattribution_id: int) -> Reattribution | None:
    """Run a queued re-attribution; None when another worker has it or it is done."""
    if not _claim(Reattribution, reattribution_id):
        return None
    job = Reattribution.objects.select_related("offer").get(pk=reattribution_id)
    try:
        _reattribute(job)
    except Exception as error:
        Reattribution.objects.filter(pk=reattribution_id).update(
            status=JobStatus.FAILED, error=str(error)[:2000], finished_at=timezone.now()
        )
        raise
    job.refresh_from_db()
    return job


def _reattribute(job: Reattribution) -> None:
    offer = job.offer
    applied = offer_credit_settings(offer)
    Reattribution.objects.filter(pk=job.pk).update(
        settings_applied={name: getattr(applied, name) for name in SETTING_NAMES}
    )
    why = (
        f"re-attribution #{job.pk} of offer {offer.pk} ({job.start} to {job.end}) under "
        f"{applied.attribution_model}, {applied.click_window_days}-day window"
    )
    changed = 0
    days: set[date] = set()
    done = 0
    seen: set[int] = set()
    # Twice: a conversion the live worker decided under the old settings while the first
    # pass ran (its batch read the offer before the change) is caught by the second.
    for _ in range(2):
        ids = [
            pk
            for pk in conversion_ids_in_range(
                start=job.start, end=job.end, offer_id=offer.pk, earning_only=False
            )
            if pk not in seen
        ]
        seen.update(ids)
        Reattribution.objects.filter(pk=job.pk).update(conversions_total=len(seen))
        for position in range(0, len(ids), REDECIDE_CHUNK):
            outcome = conversions_redecide(
                conversion_ids=ids[position : position + REDECIDE_CHUNK],
                changed_by_id=job.requested_by_id,
                why=why,
            )
            changed += outcome.changed
            days.update(outcome.days)
            done += outcome.decided
            Reattribution.objects.filter(pk=job.pk).update(conversions_done=done, changed=changed)
    for day in sorted(days):
        rollup_recompute_day(day=day)
    Reattribution.objects.filter(pk=job.pk).update(
        status=JobStatus.DONE,
        changed=changed,
        days_recomputed=len(days),
        finished_at=timezone.now(),
    )
    logger.info(
        "re-attribution done",
        extra={"reattribution_id": job.pk, "changed": changed, "days": len(days)},
    )


# A queued job nobody took this long (the broker was down when it was asked for) is
# enqueued again by the every-minute sweep.
SWEEP_QUEUED_AFTER = timedelta(minutes=2)


def _stranded(model: type[Comparison] | type[Reattribution]) -> list[int]:
    now = timezone.now()
    return list(
        model.objects.filter(
            Q(status=JobStatus.QUEUED, created_at__lt=now - SWEEP_QUEUED_AFTER)
            | Q(status=JobStatus.RUNNING, started_at__lt=now - STALE_AFTER)
        ).values_list("pk", flat=True)
    )


def whatif_jobs_sweep() -> int:
    """Enqueue again the comparisons and re-attributions that are stranded: queued and not
    taken for `SWEEP_QUEUED_AFTER`, or running with no progress past `STALE_AFTER` (their
    worker died). Running a job twice is safe: a worker claims it first. Returns how many."""
    comparisons = _stranded(Comparison)
    reattributions = _stranded(Reattribution)
    tasks_enqueue_on_commit(name="reports.comparison_run", args_each=[[pk] for pk in comparisons])
    tasks_enqueue_on_commit(
        name="reports.reattribution_run", args_each=[[pk] for pk in reattributions]
    )
    enqueued = len(comparisons) + len(reattributions)
    return enqueued


__all__ = [
    "WhatIfInputError",
    "comparison_create",
    "comparison_moves",
    "comparison_run",
    "comparison_settings",
    "reattribution_create",
    "reattribution_run",
    "whatif_jobs_sweep",
]
