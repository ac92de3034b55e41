"""Creating messages, their contacts and their tracked links, one or ten thousand at a time.

Everything is set-based and the whole call is one transaction. `_create_bulk` runs the
steps in order, each a function of its own:
- input checks (`_check_items`) and the catalog (`_resolve_catalog`): one query each for
  campaigns, creatives and offers;
- idempotency by `external_id` (`_split_by_external_id`): a message already stored under
  its external id is returned as it is, with its links, and nothing is created for it;
- contact resolution (`_resolve_contacts`, upserting and merging the set in `contacts.py`);
- message rows (`_message_rows`, inserted by `message_rows.py`) and link rows (`links.py`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NoReturn, cast

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, OperationalError, models, transaction
from django.db.models import Q
from django.utils import timezone
from psycopg.errors import DeadlockDetected

from tracking.models import Campaign, Channel, ContactConflict, Creative, Link, Message
from tracking.services.contacts import (
    EXTERNAL_ID_MAX_LENGTH,
    ContactResolution,
    ContactSpec,
    contact_resolve_bulk,
    contact_spec_normalize,
)
from tracking.services.links import LINKS_PER_MESSAGE_MAX, link_create_bulk
from tracking.services.message_rows import message_insert_bulk
from tracking.services.rows import collector_paused, row_instance

logger = logging.getLogger(__name__)

ERRORS_REPORTED_MAX = 50
# Two calls with the same new external ids at the same moment: the loser's insert
# fails on the unique constraint once the winner commits, and its retry finds them.
ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class MessageSpec:
    contact: ContactSpec
    channel: str
    campaign: str
    creative: str
    offer: int
    sent_at: datetime
    external_id: str | None = None
    links: int = 1


@dataclass(slots=True)
class MessageResult:
    message: Message
    links: list[Link] = field(default_factory=list)
    created: bool = True


def message_create(
    *,
    contact: ContactSpec,
    channel: str,
    campaign: str,
    creative: str,
    offer: int,
    sent_at: datetime,
    external_id: str | None = None,
    links: int = 1,
    requested_by_id: int | None = None,
) -> MessageResult:
    """One message; ValidationError keys name the field (`contact.phone`, `offer`, ...)."""
    spec = MessageSpec(
        contact=contact,
        channel=channel,
        campaign=campaign,
        creative=creative,
        offer=offer,
        sent_at=sent_at,
        external_id=external_id,
        links=links,
    )
    try:
        return message_create_bulk(items=[spec], requested_by_id=requested_by_id)[0]
    except ValidationError as error:
        raise ValidationError(
            {key.removeprefix("0."): items for key, items in error.error_dict.items()}
        ) from error


def message_create_bulk(
    *, items: Sequence[MessageSpec], requested_by_id: int | None = None
) -> list[MessageResult]:
    """One result per item, in order. ValidationError keys are `<index>.<field>`.

    Nothing is written unless every item is valid.
    """
    if len(items) > settings.MESSAGES_BULK_MAX:
        raise ValidationError(
            {"items": f"At most {settings.MESSAGES_BULK_MAX} messages per call, got {len(items)}."}
        )
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with collector_paused(), transaction.atomic():
                return _create_bulk(items, requested_by_id)
        except (IntegrityError, OperationalError) as error:
            # A deadlock between two calls merging the same contacts: one is retried.
            if isinstance(error, OperationalError) and not isinstance(
                error.__cause__, DeadlockDetected
            ):
                raise
            if attempt == ATTEMPTS:
                raise
            logger.info("message_create_bulk: concurrent insert, retrying (attempt %d)", attempt)
    raise AssertionError("unreachable")


def _create_bulk(items: Sequence[MessageSpec], requested_by_id: int | None) -> list[MessageResult]:
    errors = _Errors()
    contacts = _check_items(items, errors)
    if errors.unstorable:  # PostgreSQL cannot even compare such a value: stop before any lookup
        errors.raise_()
    catalog = _resolve_catalog(items)
    _check_catalog(items, catalog, errors)
    if errors:
        errors.raise_()

    split = _split_by_external_id(items)
    resolution = _resolve_contacts(
        items=items,
        indexes=split.new_indexes,
        contacts=contacts,
        requested_by_id=requested_by_id,
    )
    contact_ids = resolution.ids

    new_messages = _message_rows(
        items=items, indexes=split.new_indexes, contact_ids=contact_ids, catalog=catalog
    )
    message_insert_bulk(messages=new_messages)
    for position, conflict_id in resolution.conflicts.items():
        ContactConflict.objects.filter(pk=conflict_id, message__isnull=True).update(
            message_id=new_messages[position].pk
        )
    created_links = link_create_bulk(
        wanted=[
            (message, items[index].links)
            for index, message in zip(split.new_indexes, new_messages, strict=True)
        ]
    )
    logger.info("messages created: %d of %d", len(new_messages), len(items))
    return _results(
        items=items, split=split, new_messages=new_messages, created_links=created_links
    )


class _Errors:
    """Validation errors keyed `<index>.<field>`, as `message_create_bulk` raises them."""

    def __init__(self) -> None:
        self.by_key: dict[str, list[ValidationError]] = defaultdict(list)
        # A value PostgreSQL cannot store or compare (a NUL character).
        self.unstorable = False

    def __bool__(self) -> bool:
        return bool(self.by_key)

    def add(self, index: int, key: str, message: str, code: str = "invalid") -> None:
        # The code travels to the API: `does_not_exist` answers 404 there, not 400.
        self.by_key[f"{index}.{key}"].append(ValidationError(message, code=code))

    def raise_(self) -> NoReturn:
        """At most `ERRORS_REPORTED_MAX` fields: ten thousand copies of one mistake help nobody."""
        shown = dict(list(self.by_key.items())[:ERRORS_REPORTED_MAX])
        if len(self.by_key) > ERRORS_REPORTED_MAX:
            more = f"{len(self.by_key) - ERRORS_REPORTED_MAX} more invalid fields not shown."
            shown["items"] = [ValidationError(more, code="invalid")]
        raise ValidationError(shown)


# Input checks and the catalog


def _check_items(items: Sequence[MessageSpec], errors: _Errors) -> list[ContactSpec | None]:
    """Each item's own fields checked; its contact normalized (None when invalid)."""
    contacts: list[ContactSpec | None] = []
    channels = set(Channel.values)
    for index, item in enumerate(items):
        try:
            contacts.append(contact_spec_normalize(spec=item.contact))
        except ValidationError as error:
            contacts.append(None)
            if hasattr(error, "error_dict"):
                for name, texts in error.message_dict.items():
                    for text in texts:
                        errors.add(index, f"contact.{name}", text)
            else:
                for text in error.messages:
                    errors.add(index, "contact", text)
        for name in ("campaign", "creative", "external_id"):
            if "\x00" in (getattr(item, name) or ""):
                errors.add(index, name, "Null characters are not allowed.")
                errors.unstorable = True
        if item.channel not in channels:
            errors.add(index, "channel", f"Must be one of: {', '.join(sorted(channels))}.")
        if timezone.is_naive(item.sent_at):
            errors.add(index, "sent_at", "Give a time zone, e.g. 2026-01-31T12:00:00Z.")
        if item.external_id is not None and not (
            0 < len(item.external_id) <= EXTERNAL_ID_MAX_LENGTH
        ):
            errors.add(index, "external_id", f"Between 1 and {EXTERNAL_ID_MAX_LENGTH} characters.")
        if not 1 <= item.links <= LINKS_PER_MESSAGE_MAX:
            errors.add(index, "links", f"Between 1 and {LINKS_PER_MESSAGE_MAX} links per message.")
    return contacts


@dataclass(frozen=True)
class _Catalog:
    campaigns: dict[str, Campaign]
    creatives: dict[tuple[int, str], Creative]
    offers: set[int]

    def creative_of(self, item: MessageSpec) -> Creative:
        return self.creatives[(self.campaigns[item.campaign].pk, item.creative)]


def _check_catalog(items: Sequence[MessageSpec], catalog: _Catalog, errors: _Errors) -> None:
    for index, item in enumerate(items):
        if item.campaign not in catalog.campaigns:
            errors.add(
                index, "campaign", f"No campaign with slug {item.campaign!r}.", "does_not_exist"
            )
        elif (catalog.campaigns[item.campaign].pk, item.creative) not in catalog.creatives:
            errors.add(
                index,
                "creative",
                f"No creative {item.creative!r} in campaign {item.campaign!r}.",
                "does_not_exist",
            )
        if item.offer not in catalog.offers:
            errors.add(index, "offer", f"No offer with id {item.offer}.", "does_not_exist")


def _resolve_catalog(items: Sequence[MessageSpec]) -> _Catalog:
    campaign_slugs = {item.campaign for item in items}
    campaigns = {c.slug: c for c in Campaign.objects.filter(slug__in=campaign_slugs)}
    creative_keys = {
        (campaigns[item.campaign].pk, item.creative) for item in items if item.campaign in campaigns
    }
    condition = Q()
    for campaign_id in {campaign_id for campaign_id, _ in creative_keys}:
        condition |= Q(
            campaign_id=campaign_id,
            slug__in=[slug for owner, slug in creative_keys if owner == campaign_id],
        )
    creatives = (
        {(c.campaign_id, c.slug): c for c in Creative.objects.filter(condition)}
        if creative_keys
        else {}
    )
    # `tracking` does not import `attribution`: reach the offer table through the foreign key.
    offer_model = cast(type[models.Model], Message._meta.get_field("offer").related_model)
    offer_ids = {item.offer for item in items}
    offers = set(offer_model._default_manager.filter(pk__in=offer_ids).values_list("pk", flat=True))
    return _Catalog(campaigns=campaigns, creatives=creatives, offers=offers)


# Idempotency by external id


@dataclass(frozen=True)
class _Split:
    """Which items create a message, and which return one stored or given earlier."""

    new_indexes: list[int]
    # Messages already stored, by external id.
    stored: dict[str, Message]
    # For an external id repeated in this call: the index of its first occurrence.
    first_index_of: dict[str, int]


def _split_by_external_id(items: Sequence[MessageSpec]) -> _Split:
    wanted_external_ids = {item.external_id for item in items if item.external_id}
    stored = {
        message.external_id: message
        for message in Message.objects.filter(external_id__in=wanted_external_ids).select_related(
            "campaign", "creative"
        )
        if message.external_id
    }
    new_indexes: list[int] = []
    first_index_of: dict[str, int] = {}
    for index, item in enumerate(items):
        if item.external_id and item.external_id in stored:
            continue
        if item.external_id:
            if item.external_id in first_index_of:
                continue
            first_index_of[item.external_id] = index
        new_indexes.append(index)
    return _Split(new_indexes=new_indexes, stored=stored, first_index_of=first_index_of)


def _results(
    *,
    items: Sequence[MessageSpec],
    split: _Split,
    new_messages: list[Message],
    created_links: dict[int, list[Link]],
) -> list[MessageResult]:
    """One result per item, in order: created, stored before, or repeated in this call."""
    stored_links: dict[int, list[Link]] = defaultdict(list)
    for link in Link.objects.filter(message__in=split.stored.values()).order_by("id"):
        stored_links[link.message_id].append(link)
    by_index = dict(zip(split.new_indexes, new_messages, strict=True))
    results: list[MessageResult] = []
    for index, item in enumerate(items):
        if index in by_index:
            message = by_index[index]
            results.append(MessageResult(message=message, links=created_links[message.pk]))
        elif item.external_id in split.stored:
            message = split.stored[item.external_id]
            results.append(
                MessageResult(message=message, links=stored_links[message.pk], created=False)
            )
        else:  # repeated in this very call: the same message as its first occurrence
            first = results[split.first_index_of[item.external_id or ""]]
            results.append(MessageResult(message=first.message, links=first.links, created=False))
    return results


# Contact resolution


def _resolve_contacts(
    *,
    items: Sequence[MessageSpec],
    indexes: list[int],
    contacts: list[ContactSpec | None],
    requested_by_id: int | None,
) -> ContactResolution:
    """The contact of each item that creates a message (upserted and merged as one set).

    Identifiers that conflict do not refuse a message: it goes to the contact its
    channel's address names and the conflict waits for an operator.
    """
    specs = [contacts[index] for index in indexes]
    return contact_resolve_bulk(
        specs=[spec for spec in specs if spec is not None],
        channels=[items[index].channel for index in indexes],
        requested_by_id=requested_by_id,
    )


# Message rows


def _message_rows(
    *,
    items: Sequence[MessageSpec],
    indexes: list[int],
    contact_ids: list[int],
    catalog: _Catalog,
) -> list[Message]:
    rows: list[Message] = []
    for index, contact_id in zip(indexes, contact_ids, strict=True):
        item = items[index]
        campaign = catalog.campaigns[item.campaign]
        creative = catalog.creative_of(item)
        rows.append(
            row_instance(
                Message,
                {
                    "id": None,
                    "contact_id": contact_id,
                    "campaign_id": campaign.pk,
                    "creative_id": creative.pk,
                    "offer_id": item.offer,
                    "channel": item.channel,
                    "sent_at": item.sent_at,
                    "delivered_at": None,
                    "external_id": item.external_id,
                    "created_at": None,
                },
                campaign=campaign,
                creative=creative,
            )
        )
    return rows
