"""What the postbacks of one batch decide about their conversions.

Three questions, each answered on its own:
- Attribution choice (`conversion_credits`): which click, if any, a new conversion credits.
- Payout (`conversion_payout`): what a new conversion pays.
- Status transitions (`conversion_transition`, `conversion_apply_postbacks`): what each later
  postback does to its conversion, every change kept as an event with its revenue delta.

`processing.py` claims the batch and stores what these functions decide.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from attribution.attribution_models import (
    REASON_NO_CLICK_ID,
    REASON_OFFER_MISMATCH,
    REASON_UNKNOWN_CLICK,
    REASON_UNKNOWN_OFFER,
    REASON_UNKNOWN_PERSON,
    VIEW_THROUGH_REASONS,
    CandidateClick,
    CandidateSend,
    Decision,
    OfferWindows,
    attribution_decide,
    attribution_decide_person,
    view_through_decide,
)
from attribution.models import Conversion, ConversionStatus, Offer
from attribution.services.batch import (
    ConversionKey,
    Credit,
    NamedClick,
    NewConversion,
    Work,
    candidate_clicks,
    clicked_before,
    fill_creative_and_campaign,
    latest_sends,
)
from tracking.services.contacts import contact_ids_by_identifier

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


# Attribution choice


def conversion_credits(
    *, firsts: list[Work], named: dict[str, NamedClick]
) -> dict[ConversionKey, Credit]:
    """The attribution decision (and payout) for every conversion this batch may create.

    `firsts` holds the first postback of each new conversion; `named` the clicks their
    click ids name. Candidate clicks are loaded in one query for the whole batch.
    """
    credits: dict[ConversionKey, Credit] = {}
    wanted: list[tuple[ConversionKey, NamedClick, datetime]] = []
    by_key: dict[ConversionKey, Work] = {}
    by_person: list[Work] = []
    for work in firsts:
        by_key[work.key] = work
        if not work.parsed.click_id and work.parsed.person:
            by_person.append(work)
            continue
        click = named.get(work.parsed.click_id) if work.parsed.click_id else None
        early = _early_credit(work=work, click=click)
        if early is not None:
            credits[work.key] = early
        elif click is not None:
            wanted.append((work.key, click, work.parsed.occurred_at))
    people = _people(by_person, credits)
    wanted.extend(people)

    candidates = candidate_clicks(wanted)
    person_keys = {key for key, _, _ in people}
    for key, click, occurred_at in wanted:
        work = by_key[key]
        rows = candidates.get(key, [])
        if key in person_keys:
            decision = attribution_decide_person(
                model=click.model,
                clicks=[row["candidate"] for row in rows],
                windows=click.windows,
                occurred_at=occurred_at,
                received_at=work.postback.received_at,
                clicked_before=bool(rows)
                or clicked_before(
                    contact_id=click.contact_id, offer_id=click.offer_id, before=occurred_at
                ),
            )
        else:
            decision = attribution_decide(
                model=click.model,
                named_click=_candidate(click),
                clicks=[row["candidate"] for row in rows],
                windows=click.windows,
                occurred_at=occurred_at,
                received_at=work.postback.received_at,
            )
        chosen = next((row for row in rows if row["candidate"].id == decision.click_id), {})
        credits[key] = Credit(
            decision,
            click.model,
            dict(chosen) if chosen else _known(click, key in person_keys),
            conversion_payout(reported=work.parsed.payout, offer_default=click.payout),
        )
    _credit_view_through(credits, wanted)
    fill_creative_and_campaign(credits)
    return credits


def _known(click: NamedClick, by_person: bool) -> dict[str, Any]:
    """An unattributed conversion keeps the person and offer it named (a click id that
    named a click keeps nothing, as before: its click's row says who it was)."""
    if not by_person:
        return {}
    return {"contact_id": click.contact_id, "offer_id": click.offer_id}


def _people(
    works: list[Work], credits: dict[ConversionKey, Credit]
) -> list[tuple[ConversionKey, NamedClick, datetime]]:
    """Conversions naming a person and an offer, as if they named a click of theirs: the
    same candidates, models and windows follow. Unknown people and offers get their credit
    (none) here."""
    if not works:
        return []
    offers = {
        offer.pk: offer
        for offer in Offer.objects.filter(pk__in={work.parsed.offer_id for work in works})
    }
    contacts = contact_ids_by_identifier(
        keys={identifier for work in works for identifier in work.parsed.person}
    )
    wanted: list[tuple[ConversionKey, NamedClick, datetime]] = []
    for work in works:
        parsed = work.parsed
        offer = offers.get(parsed.offer_id or 0)
        if offer is None or offer.network_id != work.postback.network_id:
            credits[work.key] = Credit(
                Decision(None, REASON_UNKNOWN_OFFER),
                payout=conversion_payout(reported=parsed.payout, offer_default=None),
            )
            continue
        payout = conversion_payout(reported=parsed.payout, offer_default=offer.payout)
        contact_id = next(
            (contacts[identifier] for identifier in parsed.person if identifier in contacts), None
        )
        if contact_id is None:
            credits[work.key] = Credit(
                Decision(None, REASON_UNKNOWN_PERSON),
                offer.attribution_model,
                {"offer_id": offer.pk},
                payout,
            )
            continue
        person = NamedClick(
            id=0,
            occurred_at=parsed.occurred_at,
            contact_id=contact_id,
            offer_id=offer.pk,
            channel="",
            is_bot=False,
            is_preview=False,
            network_id=offer.network_id,
            windows=OfferWindows(
                click_window_days=offer.click_window_days,
                sms_window_days=offer.sms_window_days,
                email_window_days=offer.email_window_days,
            ),
            model=offer.attribution_model,
            payout=offer.payout,
            view_window_hours=offer.view_window_hours,
        )
        wanted.append((work.key, person, parsed.occurred_at))
    return wanted


def _credit_view_through(
    credits: dict[ConversionKey, Credit], wanted: list[tuple[ConversionKey, NamedClick, datetime]]
) -> None:
    """No click-through credit, a known person, an offer with a view window: the latest
    send of that offer to that person within the window gets the credit (one query)."""
    eligible = [
        (key, click, occurred_at)
        for key, click, occurred_at in wanted
        if click.view_window_hours > 0
        and not credits[key].decision.attributed
        and credits[key].decision.reason in VIEW_THROUGH_REASONS
    ]
    sends = latest_sends(
        [
            (key, click.contact_id, click.offer_id, click.view_window_hours, t)
            for key, click, t in eligible
        ]
    )
    for key, click, occurred_at in eligible:
        send = view_through_decide(
            sends=[CandidateSend(message_id=pk, sent_at=at) for pk, at in sends.get(key, [])],
            view_window_hours=click.view_window_hours,
            occurred_at=occurred_at,
        )
        if send is None:
            continue
        credit = credits[key]
        credits[key] = Credit(
            Decision(None, ""),
            credit.model,
            {
                "message_id": send.message_id,
                "contact_id": click.contact_id,
                "offer_id": click.offer_id,
            },
            credit.payout,
            view_through=True,
        )


def _early_credit(*, work: Work, click: NamedClick | None) -> Credit | None:
    """The credit when no candidate query is needed (no click, or an impossible one)."""
    parsed = work.parsed
    unpaid = conversion_payout(reported=parsed.payout, offer_default=None)
    if not parsed.click_id:
        return Credit(Decision(None, REASON_NO_CLICK_ID), payout=unpaid)
    if click is not None and (
        click.network_id != work.postback.network_id
        or (parsed.offer_id is not None and parsed.offer_id != click.offer_id)
    ):
        return Credit(Decision(None, REASON_OFFER_MISMATCH), payout=unpaid)
    # Without the click, or with an impossible time, the decision needs no candidates.
    early = attribution_decide(
        model="",
        named_click=None,
        clicks=[],
        windows=OfferWindows(),
        occurred_at=parsed.occurred_at,
        received_at=work.postback.received_at,
    )
    if click is None or early.reason != REASON_UNKNOWN_CLICK:
        return Credit(early, click.model if click else "", payout=unpaid)
    return None


def _candidate(click: NamedClick) -> CandidateClick:
    return CandidateClick(
        id=click.id,
        occurred_at=click.occurred_at,
        channel=click.channel,
        is_bot=click.is_bot,
        is_preview=click.is_preview,
    )


# Payout


def conversion_payout(*, reported: Decimal | None, offer_default: Decimal | None) -> Decimal:
    """The payout the postback reported; else the offer's default, when its click was found."""
    if reported is not None:
        return reported
    return offer_default or Decimal(0)


# Status transitions and events


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


@dataclass
class Applied:
    """What a batch's postbacks did to their conversions, ready to be stored."""

    events: list[dict[str, Any]] = field(default_factory=list)
    # Conversions that existed before this batch and whose status or payout it changed.
    changed: dict[int, Conversion | NewConversion] = field(default_factory=dict)
    # For /metrics: every decided postback under one outcome.
    counted: Counter[str] = field(default_factory=Counter)


def conversion_apply_postbacks(
    *,
    groups: dict[ConversionKey, list[Work]],
    inserted: dict[ConversionKey, NewConversion],
    existing: dict[ConversionKey, Conversion],
    now: datetime,
) -> Applied:
    """Each group's postbacks, in order, applied to its conversion.

    A conversion this batch inserted took its first postback already (its creation
    event); every other postback is a possible status transition. Each work is
    given its conversion and a note for its postback row.
    """
    applied = Applied()
    for key, group in groups.items():
        conversion: Conversion | NewConversion
        if key in inserted:
            conversion = inserted[key]
            _record_creation(applied, work=group[0], conversion=conversion)
            later = group[1:]
        else:
            conversion = existing[key]
            later = group
        for work in later:
            _apply_later_postback(applied, work=work, conversion=conversion, now=now)
    return applied


def _outcome(conversion: Conversion | NewConversion) -> str:
    return "attributed" if conversion.attributed else "unattributed"


def _record_creation(
    applied: Applied, *, work: Work, conversion: Conversion | NewConversion
) -> None:
    work.conversion_id = conversion.pk
    work.note = f"new conversion ({conversion.status})"
    applied.counted[_outcome(conversion)] += 1
    applied.events.append(
        {
            "conversion_id": conversion.pk,
            "postback_id": work.postback.pk,
            "from_status": "",
            "to_status": conversion.status,
            "payout": str(conversion.payout),
            "revenue_delta": str(revenue_of(conversion.status, conversion.payout)),
        }
    )


def _apply_later_postback(
    applied: Applied, *, work: Work, conversion: Conversion | NewConversion, now: datetime
) -> None:
    step = conversion_transition(
        status=conversion.status,
        payout=conversion.payout,
        new_status=work.parsed.status,
        new_payout=work.parsed.payout,
    )
    work.conversion_id = conversion.pk
    work.note = step.note
    if not step.changed:
        applied.counted[_outcome(conversion)] += 1
        return
    applied.counted["status_changed"] += 1
    delta = revenue_of(step.status, step.payout) - revenue_of(conversion.status, conversion.payout)
    applied.events.append(
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
    applied.changed[conversion.pk] = conversion
