"""A contact's journey: what was sent to them, what they clicked, what converted,
and which click got the credit. Read-only; used by the admin journey page."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Prefetch, Q

from attribution.models import Conversion, ConversionEvent
from tracking.models import Click, Contact, ContactConflict, ContactMerge, Link, Message

# Largest value a PostgreSQL bigint primary key can hold: anything above is no contact.
MAX_ID = 2**63 - 1

# A journey page shows at most this many rows of each kind, newest first.
JOURNEY_ROW_LIMIT = 500


@dataclass(frozen=True)
class JourneyClick:
    click: Click
    # The conversions this click got the credit for (empty for most clicks).
    credited_for: list[Conversion] = field(default_factory=list)

    @property
    def is_credited(self) -> bool:
        return bool(self.credited_for)


@dataclass(frozen=True)
class ContactJourney:
    contact: Contact
    messages: list[Message]
    clicks: list[JourneyClick]
    conversions: list[Conversion]
    # True when a list was cut at JOURNEY_ROW_LIMIT.
    truncated: bool
    # The contacts merged into this one, and conflicts of identifiers naming it.
    merges: list[ContactMerge] = field(default_factory=list)
    conflicts: list[ContactConflict] = field(default_factory=list)


def contact_journey_get(
    *, contact_id: int, limit: int = JOURNEY_ROW_LIMIT
) -> ContactJourney | None:
    """The journey of one contact, or None when there is no such contact.

    Conversions are the contact's attributed ones plus unattributed ones whose
    click id names one of the contact's clicks (those never got a contact).
    """
    if not 0 < contact_id <= MAX_ID:
        return None
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        return None

    messages = list(
        Message.objects.filter(contact_id=contact_id)
        .select_related("campaign", "creative", "offer", "offer__network")
        .prefetch_related(Prefetch("links", queryset=Link.objects.order_by("pk")))
        .order_by("-sent_at", "-pk")[: limit + 1]
    )
    clicks = list(
        Click.objects.filter(contact_id=contact_id)
        .select_related("link", "message", "message__campaign", "offer")
        .order_by("-occurred_at", "-pk")[: limit + 1]
    )
    click_id_strings = [click.click_id for click in clicks[:limit]]
    conversions = list(
        Conversion.objects.filter(Q(contact_id=contact_id) | Q(click_id__in=click_id_strings))
        .select_related("network", "offer", "credited_click", "message")
        .prefetch_related(
            Prefetch("events", queryset=ConversionEvent.objects.order_by("created_at", "pk"))
        )
        .order_by("-occurred_at", "-pk")[: limit + 1]
    )
    truncated = any(len(rows) > limit for rows in (messages, clicks, conversions))

    credited: dict[int, list[Conversion]] = {}
    for conversion in conversions[:limit]:
        if conversion.attributed and conversion.credited_click_id is not None:
            credited.setdefault(conversion.credited_click_id, []).append(conversion)
    merges = list(
        ContactMerge.objects.filter(survivor_id=contact_id)
        .select_related("requested_by")
        .order_by("-created_at", "-pk")[:limit]
    )
    conflicts = list(
        ContactConflict.objects.filter(
            Q(contact_id=contact_id) | Q(other_contact_ids__contains=[contact_id])
        ).order_by("-created_at", "-pk")[:limit]
    )
    return ContactJourney(
        contact=contact,
        messages=messages[:limit],
        clicks=[JourneyClick(click=c, credited_for=credited.get(c.pk, [])) for c in clicks[:limit]],
        conversions=conversions[:limit],
        truncated=truncated,
        merges=merges,
        conflicts=conflicts,
    )
