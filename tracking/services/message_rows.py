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
    Send times go as their distinct values plus an index per row: a bulk send has a
    handful of times, and adapting ten thousand datetimes cost more than the insert.
    """
    table = Message._meta.db_table
    now = timezone.now()
    with array_cursor() as cursor:
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
                " (%b::timestamptz[])[sent_at_number], external_id, %s "
                "FROM unnest(%b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::text[],"
                " %b::int[], %b::text[]) WITH ORDINALITY AS new (contact_id, campaign_id,"
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
