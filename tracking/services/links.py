"""Tracked links: their random codes, their short URLs, and their rows."""

from __future__ import annotations

import secrets
from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone

from tracking.models import Link, Message
from tracking.services.rows import PLAIN_INSERT_MIN_ROWS, array_cursor, row_instance

# URL-safe and unambiguous when read aloud or copied by hand: no 0/O/o, 1/l/I.
LINK_CODE_ALPHABET = "23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ"
LINK_CODE_MIN_LENGTH = 7
LINKS_PER_MESSAGE_MAX = 20

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


def link_create_bulk(*, wanted: list[tuple[Message, int]]) -> dict[int, list[Link]]:
    """`count` links for each stored message, by message id, with fresh random codes.

    The first insert of a large set is a plain one, in a savepoint: an insert that skips
    conflicts probes the code's index before writing each row and confirms each row in the
    WAL (about a third more work for ten thousand links), and a code already taken is
    rare. When one is (by a stored link, or by a concurrent call), the inserts skip
    conflicting codes and return the rows they did insert, so a collision costs another
    round for the colliding links only.
    """
    now = timezone.now()
    message_ids = [message.pk for message, count in wanted for _ in range(count)]
    pending = list(zip(message_ids, link_codes_generate(count=len(message_ids)), strict=True))
    by_message: dict[int, list[Link]] = defaultdict(list)
    plain_first = len(pending) >= PLAIN_INSERT_MIN_ROWS
    while pending:
        redraw: list[int] = []
        batch: dict[str, int] = {}
        for message_id, code in pending:
            if code in batch:  # drawn twice in this very batch
                redraw.append(message_id)
            else:
                batch[code] = message_id
        inserted = None
        if plain_first:
            plain_first = False
            try:
                with transaction.atomic():
                    inserted = _insert(batch, now, ignoring_conflicts=False)
            except IntegrityError:
                pass
        if inserted is None:
            inserted = _insert(batch, now, ignoring_conflicts=True)
        for link_id, message_id, code in inserted:
            del batch[code]
            link = row_instance(
                Link, {"id": link_id, "message_id": message_id, "code": code, "created_at": now}
            )
            by_message[message_id].append(link)
        redraw.extend(batch.values())
        pending = list(zip(redraw, link_codes_generate(count=len(redraw)), strict=True))
    return by_message


def _insert(
    batch: dict[str, int], now: datetime, *, ignoring_conflicts: bool
) -> list[tuple[int, int, str]]:
    """(id, message id, code) of the links inserted, from codes to their message ids."""
    with array_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Link._meta.db_table} (message_id, code, created_at) "  # noqa: S608
            "SELECT message_id, code, %s FROM unnest(%b::bigint[], %b::text[])"
            " WITH ORDINALITY AS new (message_id, code, position) ORDER BY position"
            f"{' ON CONFLICT (code) DO NOTHING' if ignoring_conflicts else ''}"
            " RETURNING id, message_id, code",
            [now, list(batch.values()), list(batch)],
        )
        return cursor.fetchall()
