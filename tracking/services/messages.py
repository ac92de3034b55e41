"""Creating messages, their contacts and their tracked links, one or ten thousand at a time.

Everything is set-based: campaigns, creatives and offers are resolved with one
query each, contacts are upserted as a set (`contact_resolve_bulk`), messages and
links are inserted with `bulk_create`. A message `external_id` makes a call
idempotent: a message already stored under it is returned as it is, with its
links, and nothing is created for it. The whole call is one transaction.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn, TypeVar, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, models, transaction
from django.db.models import Q
from django.db.models.base import ModelState
from django.utils import timezone

from tracking.models import Campaign, Channel, Creative, Link, Message
from tracking.services.contacts import (
    EXTERNAL_ID_MAX_LENGTH,
    ContactSpec,
    contact_resolve_bulk,
    contact_spec_normalize,
)

logger = logging.getLogger(__name__)

_Model = TypeVar("_Model", bound=models.Model)

# URL-safe and unambiguous when read aloud or copied by hand: no 0/O/o, 1/l/I.
LINK_CODE_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
LINK_CODE_MIN_LENGTH = 7
LINKS_PER_MESSAGE_MAX = 20
BATCH_SIZE = 5000
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


# Random bytes below this bound map onto the alphabet without bias (byte % 56); the rest
# are dropped, as `secrets.choice` would redraw them.
_UNBIASED_BYTE_BOUND = 256 - 256 % len(LINK_CODE_ALPHABET)
_BYTE_TO_CHARACTER = b"".join(
    LINK_CODE_ALPHABET[byte % len(LINK_CODE_ALPHABET)].encode()
    if byte < _UNBIASED_BYTE_BOUND
    else b"-"
    for byte in range(256)
)


def link_codes_generate(*, count: int) -> list[str]:
    """`count` random codes from a cryptographic source, drawn in one go.

    Same distribution as `secrets.choice` per character, at a fraction of its
    cost: one `secrets.token_bytes` call for the lot, mapped through a table.
    """
    length = settings.LINK_CODE_LENGTH
    if length < LINK_CODE_MIN_LENGTH:
        raise ImproperlyConfigured(f"LINK_CODE_LENGTH must be at least {LINK_CODE_MIN_LENGTH}")
    needed = count * length
    characters = ""
    while len(characters) < needed:
        # About 12.5% of bytes are dropped; draw a little more than needed.
        drawn = secrets.token_bytes((needed - len(characters)) * 9 // 8 + 16)
        characters += drawn.translate(_BYTE_TO_CHARACTER).decode().replace("-", "")
    return [characters[start : start + length] for start in range(0, needed, length)]


def link_code_generate() -> str:
    return link_codes_generate(count=1)[0]


def link_short_url(*, code: str) -> str:
    return f"{settings.SHORT_LINK_BASE_URL.rstrip('/')}/{code}"


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
        return message_create_bulk(items=[spec])[0]
    except ValidationError as error:
        raise ValidationError(
            {key.removeprefix("0."): messages for key, messages in error.message_dict.items()}
        ) from error


def message_create_bulk(*, items: Sequence[MessageSpec]) -> list[MessageResult]:
    """One result per item, in order. ValidationError keys are `<index>.<field>`.

    Nothing is written unless every item is valid.
    """
    if len(items) > settings.MESSAGES_BULK_MAX:
        raise ValidationError(
            {"items": f"At most {settings.MESSAGES_BULK_MAX} messages per call, got {len(items)}."}
        )
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _create_bulk(items)
        except IntegrityError:
            if attempt == ATTEMPTS:
                raise
            logger.info("message_create_bulk: concurrent insert, retrying (attempt %d)", attempt)
    raise AssertionError("unreachable")


def _create_bulk(items: Sequence[MessageSpec]) -> list[MessageResult]:
    errors: dict[str, list[str]] = defaultdict(list)

    def fail(index: int, key: str, message: str) -> None:
        errors[f"{index}.{key}"].append(message)

    contacts: list[ContactSpec | None] = []
    channels = set(Channel.values)
    unstorable = False
    for index, item in enumerate(items):
        try:
            contacts.append(contact_spec_normalize(spec=item.contact))
        except ValidationError as error:
            contacts.append(None)
            if hasattr(error, "error_dict"):
                for name, texts in error.message_dict.items():
                    for text in texts:
                        fail(index, f"contact.{name}", text)
            else:
                for text in error.messages:
                    fail(index, "contact", text)
        for name in ("campaign", "creative", "external_id"):
            if "\x00" in (getattr(item, name) or ""):
                fail(index, name, "Null characters are not allowed.")
                unstorable = True
        if item.channel not in channels:
            fail(index, "channel", f"Must be one of: {', '.join(sorted(channels))}.")
        if timezone.is_naive(item.sent_at):
            fail(index, "sent_at", "Give a time zone, e.g. 2026-01-31T12:00:00Z.")
        if item.external_id is not None and not (
            0 < len(item.external_id) <= EXTERNAL_ID_MAX_LENGTH
        ):
            fail(index, "external_id", f"Between 1 and {EXTERNAL_ID_MAX_LENGTH} characters.")
        if not 1 <= item.links <= LINKS_PER_MESSAGE_MAX:
            fail(index, "links", f"Between 1 and {LINKS_PER_MESSAGE_MAX} links per message.")

    if unstorable:  # PostgreSQL cannot even compare such a value: stop before any lookup
        _raise(errors)
    campaigns, creatives, offers = _resolve_catalog(items)
    for index, item in enumerate(items):
        if item.campaign not in campaigns:
            fail(index, "campaign", f"No campaign with slug {item.campaign!r}.")
        elif (campaigns[item.campaign].pk, item.creative) not in creatives:
            fail(index, "creative", f"No creative {item.creative!r} in campaign {item.campaign!r}.")
        if item.offer not in offers:
            fail(index, "offer", f"No offer with id {item.offer}.")
    if errors:
        _raise(errors)

    # Idempotency: items whose external id is already stored, or repeated in this call.
    wanted_external_ids = {item.external_id for item in items if item.external_id}
    stored = {
        message.external_id: message
        for message in Message.objects.filter(external_id__in=wanted_external_ids).select_related(
            "campaign", "creative"
        )
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

    new_specs = [contacts[index] for index in new_indexes]
    contact_ids = contact_resolve_bulk(specs=[spec for spec in new_specs if spec is not None])
    resolved_ids: list[int] = []
    for index, contact_id in zip(new_indexes, contact_ids, strict=True):
        if isinstance(contact_id, ValidationError):
            for text in contact_id.messages:
                fail(index, "contact", text)
        else:
            resolved_ids.append(contact_id)
    if errors:
        _raise(errors)

    new_messages = [
        _stored(
            Message,
            {
                "id": None,
                "contact_id": contact_id,
                "campaign_id": campaigns[items[index].campaign].pk,
                "creative_id": creatives[
                    (campaigns[items[index].campaign].pk, items[index].creative)
                ].pk,
                "offer_id": items[index].offer,
                "channel": items[index].channel,
                "sent_at": items[index].sent_at,
                "delivered_at": None,
                "external_id": items[index].external_id,
                "created_at": None,
            },
            campaign=campaigns[items[index].campaign],
            creative=creatives[(campaigns[items[index].campaign].pk, items[index].creative)],
        )
        for index, contact_id in zip(new_indexes, resolved_ids, strict=True)
    ]
    _messages_insert(new_messages)
    created_links = _links_create(
        [
            (message, items[index].links)
            for index, message in zip(new_indexes, new_messages, strict=True)
        ]
    )

    stored_links: dict[int, list[Link]] = defaultdict(list)
    for link in Link.objects.filter(message__in=stored.values()).order_by("id"):
        stored_links[link.message_id].append(link)

    by_index = dict(zip(new_indexes, new_messages, strict=True))
    results: list[MessageResult] = []
    for index, item in enumerate(items):
        if index in by_index:
            message = by_index[index]
            results.append(MessageResult(message=message, links=created_links[message.pk]))
        elif item.external_id in stored:
            message = stored[item.external_id]
            results.append(
                MessageResult(message=message, links=stored_links[message.pk], created=False)
            )
        else:  # repeated in this very call: the same message as its first occurrence
            first = results[first_index_of[item.external_id or ""]]
            results.append(MessageResult(message=first.message, links=first.links, created=False))
    logger.info("messages created: %d of %d", len(new_messages), len(items))
    return results


def _stored(model: type[_Model], values: dict[str, Any], **related: models.Model) -> _Model:
    """An instance of a row this module writes itself, built the way Django unpickles one
    (`__new__`, then its attributes): `Model.__init__` walks every field per instance and
    cost more than the insert for ten thousand rows. `values` names every concrete
    field's attname, so nothing is deferred; `related` fills the relation cache."""
    instance = model.__new__(model)
    instance.__dict__.update(values)
    state = ModelState()
    state.adding = False
    state.db = DEFAULT_DB_ALIAS
    state.fields_cache = related
    instance._state = state
    return instance


def _raise(errors: dict[str, list[str]]) -> NoReturn:
    """At most `ERRORS_REPORTED_MAX` fields: ten thousand copies of one mistake help nobody."""
    shown = dict(list(errors.items())[:ERRORS_REPORTED_MAX])
    if len(errors) > ERRORS_REPORTED_MAX:
        shown["items"] = [f"{len(errors) - ERRORS_REPORTED_MAX} more invalid fields not shown."]
    raise ValidationError(shown)


def _resolve_catalog(
    items: Sequence[MessageSpec],
) -> tuple[dict[str, Campaign], dict[tuple[int, str], Creative], set[int]]:
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
    return campaigns, creatives, offers


def _messages_insert(messages: list[Message]) -> None:
    """One `INSERT ... SELECT FROM unnest(...)` per batch, ids set on the objects in order.

    PostgreSQL returns the rows of an `INSERT ... SELECT` in the order the select
    produced them, which for `unnest ... WITH ORDINALITY ORDER BY` is ours.
    Send times go as their distinct values plus an index per row: a bulk send has a
    handful of times, and adapting ten thousand datetimes cost more than the insert.
    """
    table = Message._meta.db_table
    now = timezone.now()
    with connection.cursor() as cursor:
        for start in range(0, len(messages), BATCH_SIZE):
            batch = messages[start : start + BATCH_SIZE]
            time_numbers: dict[datetime, int] = {}
            for message in batch:
                time_numbers.setdefault(message.sent_at, len(time_numbers) + 1)
            cursor.execute(
                f"INSERT INTO {table} "  # noqa: S608
                "(contact_id, campaign_id, creative_id, offer_id, channel, sent_at, external_id,"
                " created_at) "
                "SELECT contact_id, campaign_id, creative_id, offer_id, channel,"
                " (%s::timestamptz[])[sent_at_number], external_id, %s "
                "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::text[],"
                " %s::int[], %s::text[]) WITH ORDINALITY AS new (contact_id, campaign_id,"
                " creative_id, offer_id, channel, sent_at_number, external_id, position) "
                "ORDER BY position RETURNING id",
                [
                    list(time_numbers),
                    now,
                    [message.contact_id for message in batch],
                    [message.campaign_id for message in batch],
                    [message.creative_id for message in batch],
                    [message.offer_id for message in batch],
                    [message.channel for message in batch],
                    [time_numbers[message.sent_at] for message in batch],
                    [message.external_id for message in batch],
                ],
            )
            for message, (message_id,) in zip(batch, cursor.fetchall(), strict=True):
                message.pk = message_id
                message.created_at = now


def _links_create(wanted: list[tuple[Message, int]]) -> dict[int, list[Link]]:
    """Links with fresh random codes; only a code that is already taken is drawn again.

    The insert skips conflicting codes instead of failing and returns the rows it
    did insert, so a collision (with a stored link, or with a concurrent call)
    costs a second round for the colliding links only.
    """
    table = Link._meta.db_table
    now = timezone.now()
    message_ids = [message.pk for message, count in wanted for _ in range(count)]
    pending = list(zip(message_ids, link_codes_generate(count=len(message_ids)), strict=True))
    by_message: dict[int, list[Link]] = defaultdict(list)
    with connection.cursor() as cursor:
        while pending:
            redraw: list[int] = []
            batch: dict[str, int] = {}
            for message_id, code in pending:
                if code in batch:  # drawn twice in this very batch
                    redraw.append(message_id)
                else:
                    batch[code] = message_id
            cursor.execute(
                f"INSERT INTO {table} (message_id, code, created_at) "  # noqa: S608
                "SELECT message_id, code, %s FROM unnest(%s::bigint[], %s::text[])"
                " WITH ORDINALITY AS new (message_id, code, position) ORDER BY position "
                "ON CONFLICT (code) DO NOTHING RETURNING id, message_id, code",
                [now, list(batch.values()), list(batch)],
            )
            for link_id, message_id, code in cursor.fetchall():
                del batch[code]
                link = _stored(
                    Link, {"id": link_id, "message_id": message_id, "code": code, "created_at": now}
                )
                by_message[message_id].append(link)
            redraw.extend(batch.values())
            pending = list(zip(redraw, link_codes_generate(count=len(redraw)), strict=True))
    return by_message
