"""Message rows, inserted as a set."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from tracking.models import Message
from tracking.services.rows import array_cursor

BATCH_SIZE = 5000


def message_insert_bulk(*, messages: list[Message]) -> None:
    """One `INSERT ... SELECT FROM unnest(...)` per batch, ids set on the objects in order.

    PostgreSQL returns the rows of an `INSERT ... SELECT` in the order the select
    produced them, which for `unnest ... WITH ORDINALITY ORDER BY` is ours.
    What a bulk send repeats (campaign, creative, offer, channel, send time) goes as its
    distinct combinations plus one number per row: a send has a handful of them, and
    adapting five arrays of ten thousand values cost more than building the numbers.
    """
    table = Message._meta.db_table
    now = timezone.now()
    with array_cursor() as cursor:
        for start in range(0, len(messages), BATCH_SIZE):
            batch = messages[start : start + BATCH_SIZE]
            numbers: dict[tuple[int, int, int, str, datetime], int] = {}
            row_numbers = [
                numbers.setdefault(
                    (
                        message.campaign_id,
                        message.creative_id,
                        message.offer_id,
                        message.channel,
                        message.sent_at,
                    ),
                    len(numbers) + 1,
                )
                for message in batch
            ]
            cursor.execute(
                f"INSERT INTO {table} "  # noqa: S608
                "(contact_id, campaign_id, creative_id, offer_id, channel, sent_at, external_id,"
                " created_at) "
                "SELECT contact_id, (%b::bigint[])[number], (%b::bigint[])[number],"
                " (%b::bigint[])[number], (%b::text[])[number], (%b::timestamptz[])[number],"
                " external_id, %s "
                "FROM unnest(%b::bigint[], %b::int[], %b::text[]) WITH ORDINALITY"
                " AS new (contact_id, number, external_id, position) "
                "ORDER BY position RETURNING id",
                [
                    *(list(values) for values in zip(*numbers, strict=True)),
                    now,
                    [message.contact_id for message in batch],
                    row_numbers,
                    [message.external_id for message in batch],
                ],
            )
            for message, (message_id,) in zip(batch, cursor.fetchall(), strict=True):
                message.pk = message_id
                message.created_at = now
