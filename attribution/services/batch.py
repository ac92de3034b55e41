"""The set-based statements of a processing batch, and the rows they work on.

Each statement takes the whole batch at once (a JSON document or a list of keys),
so a batch of 500 postbacks costs a handful of round trips, not thousands.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

from attribution.attribution_models import CandidateClick, Decision, OfferWindows
from attribution.models import AttributionType, Conversion, ConversionEvent, Offer, Postback
from attribution.services.outbox import conversion_events_announce_on_commit
from attribution.services.parsing import ParsedPostback
from tracking.models import Click, Message

ConversionKey = tuple[int, str, str]


@dataclass(frozen=True)
class StoredPostback:
    """A stored postback as processing reads it (no model instance: batches are large)."""

    pk: int
    network_id: int
    received_at: datetime
    query_string: str
    body: str
    content_type: str


@dataclass
class Work:
    postback: StoredPostback
    parsed: ParsedPostback
    key: ConversionKey
    note: str = ""
    conversion_id: int | None = None


@dataclass
class NamedClick:
    id: int
    occurred_at: datetime
    contact_id: int
    offer_id: int
    channel: str
    is_bot: bool
    is_preview: bool
    network_id: int
    windows: OfferWindows
    model: str
    payout: Decimal | None
    view_window_hours: int = 0


@dataclass
class Credit:
    """A conversion's credit. `click` holds the credited click's message, contact and offer
    (view-through: the credited message's; unattributed: the contact and offer if known)."""

    decision: Decision
    model: str = ""
    click: dict[str, Any] = field(default_factory=dict)
    # What the new conversion pays (see `decision.conversion_payout`).
    payout: Decimal = Decimal(0)
    view_through: bool = False

    @property
    def attributed(self) -> bool:
        return self.decision.attributed or self.view_through

    @property
    def attribution_type(self) -> str | None:
        if self.view_through:
            return AttributionType.VIEW_THROUGH.value
        if not self.decision.attributed:
            return None
        return AttributionType.CLICK_THROUGH.value


def earlier_postbacks_waiting(postback: StoredPostback, *, claimed: list[int]) -> bool:
    """Could the conversion this postback changes still be in its network's backlog?"""
    return (
        Postback.objects.filter(
            network_id=postback.network_id, status=Postback.Status.RECEIVED, pk__lt=postback.pk
        )
        .exclude(pk__in=claimed)
        .exists()
    )


def named_clicks(click_ids: set[str]) -> dict[str, NamedClick]:
    """The clicks these click ids name, with their offers' windows, model and payout."""
    if not click_ids:
        return {}
    # One array parameter rather than `click_id__in`: a batch names thousands of clicks,
    # and a placeholder each costs more to build and send than the lookup itself.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT click.id, click.click_id, click.occurred_at, click.contact_id,
                   click.offer_id, click.channel, click.is_bot, click.is_preview,
                   offer.network_id, offer.click_window_days, offer.sms_window_days,
                   offer.email_window_days, offer.attribution_model, offer.payout,
                   offer.view_window_hours
              FROM {Click._meta.db_table} click
              JOIN {Offer._meta.db_table} offer ON offer.id = click.offer_id
             WHERE click.click_id = ANY(%s)
            """,  # noqa: S608 (constants only)
            [list(click_ids)],
        )
        rows = cursor.fetchall()
    return {
        click_id: NamedClick(
            id=pk,
            occurred_at=occurred_at,
            contact_id=contact_id,
            offer_id=offer_id,
            channel=channel,
            is_bot=is_bot,
            is_preview=is_preview,
            network_id=network_id,
            windows=OfferWindows(
                click_window_days=click_window_days,
                sms_window_days=sms_window_days,
                email_window_days=email_window_days,
            ),
            model=model,
            payout=payout,
            view_window_hours=view_window_hours,
        )
        for (
            pk,
            click_id,
            occurred_at,
            contact_id,
            offer_id,
            channel,
            is_bot,
            is_preview,
            network_id,
            click_window_days,
            sms_window_days,
            email_window_days,
            model,
            payout,
            view_window_hours,
        ) in rows
    }


# For each conversion, the few clicks that can win under any model: the earliest
# candidate (first click), the latest (last click) and the latest of each channel
# (cooperative: if a channel's latest click is outside its window, so are all its
# older ones). The pure model functions then decide among these exactly as among
# all candidates; a contact with a thousand clicks costs four rows, not a thousand.
# Each branch is one step into `click_contact_offer_time` per month of the window: its key
# is (contact, offer, occurred_at, id), so the ORDER BY is the index's order and LIMIT 1
# stops at the first entry, and channel and flags follow in the key, so entries of bots,
# previews and the other channel are passed over in the index without reading their
# rows. Before, the branch of a channel the contact never clicked on read every click of
# the window (with the months of history it reaches, 122 buffers a conversion instead of
# 31), and with few partitions the planner sorted all the window's clicks for each branch.
_CANDIDATE_ORDERS = (
    ("", "occurred_at, id"),
    ("", "occurred_at DESC, id DESC"),
    ("AND channel = 'sms'", "occurred_at DESC, id DESC"),
    ("AND channel = 'email'", "occurred_at DESC, id DESC"),
)


def candidate_clicks(
    wanted: list[tuple[ConversionKey, NamedClick, datetime]],
) -> dict[ConversionKey, list[dict[str, Any]]]:
    """The winning-capable human clicks of each contact on each offer in its window."""
    if not wanted:
        return {}
    click_table = Click._meta.db_table
    branches = " UNION ".join(
        f"""(SELECT id, occurred_at, channel, message_id, contact_id, offer_id
              FROM {click_table}
             WHERE contact_id = wanted.contact_id AND offer_id = wanted.offer_id
               AND occurred_at BETWEEN wanted.earliest AND wanted.latest
               AND NOT is_bot AND NOT is_preview {channel}
             ORDER BY {order} LIMIT 1)"""  # noqa: S608 (constants only)
        for channel, order in _CANDIDATE_ORDERS
    )
    document = json.dumps(
        [
            {
                "position": position,
                "contact_id": click.contact_id,
                "offer_id": click.offer_id,
                "earliest": (t - timedelta(days=click.windows.click_window_days)).isoformat(),
                "latest": t.isoformat(),
            }
            for position, (_, click, t) in enumerate(wanted)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT wanted.position, candidate.id, candidate.occurred_at, candidate.channel,
                   candidate.message_id, candidate.contact_id, candidate.offer_id
            FROM jsonb_to_recordset(%s::jsonb) AS wanted(position int, contact_id bigint,
                 offer_id bigint, earliest timestamptz, latest timestamptz)
            CROSS JOIN LATERAL ({branches}) AS candidate
            """,  # noqa: S608
            [document],
        )
        rows = cursor.fetchall()
    found: dict[ConversionKey, list[dict[str, Any]]] = defaultdict(list)
    for position, click_pk, occurred_at, channel, message_id, contact_id, offer_id in rows:
        found[wanted[position][0]].append(
            {
                "candidate": CandidateClick(id=click_pk, occurred_at=occurred_at, channel=channel),
                "message_id": message_id,
                "contact_id": contact_id,
                "offer_id": offer_id,
            }
        )
    return found


def clicked_before(*, contact_id: int, offer_id: int, before: datetime) -> bool:
    """Did this person ever click this offer (a human click) at or before this time?"""
    return Click.objects.filter(
        contact_id=contact_id,
        offer_id=offer_id,
        occurred_at__lte=before,
        is_bot=False,
        is_preview=False,
    ).exists()


def latest_sends(
    wanted: list[tuple[ConversionKey, int, int, int, datetime]],
) -> dict[ConversionKey, list[tuple[int, datetime]]]:
    """For each (key, contact, offer, hours, T): the latest message of the offer sent to the
    contact within `hours` before T, as (message id, sent_at); one query for the batch."""
    if not wanted:
        return {}
    document = json.dumps(
        [
            {
                "position": position,
                "contact_id": contact_id,
                "offer_id": offer_id,
                "earliest": (t - timedelta(hours=hours)).isoformat(),
                "latest": t.isoformat(),
            }
            for position, (_, contact_id, offer_id, hours, t) in enumerate(wanted)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT wanted.position, sent.id, sent.sent_at
            FROM jsonb_to_recordset(%s::jsonb) AS wanted(position int, contact_id bigint,
                 offer_id bigint, earliest timestamptz, latest timestamptz)
            CROSS JOIN LATERAL (
                SELECT id, sent_at FROM {Message._meta.db_table}
                 WHERE contact_id = wanted.contact_id AND offer_id = wanted.offer_id
                   AND sent_at BETWEEN wanted.earliest AND wanted.latest
                 ORDER BY sent_at DESC, id DESC LIMIT 1
            ) AS sent
            """,  # noqa: S608
            [document],
        )
        rows = cursor.fetchall()
    found: dict[ConversionKey, list[tuple[int, datetime]]] = defaultdict(list)
    for position, message_id, sent_at in rows:
        found[wanted[position][0]].append((message_id, sent_at))
    return found


def fill_creative_and_campaign(credits: dict[ConversionKey, Credit]) -> None:
    """Creative and campaign of the credited clicks' messages, in one query."""
    message_ids = {
        credit.click["message_id"] for credit in credits.values() if credit.click.get("message_id")
    }
    if not message_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, creative_id, campaign_id FROM {Message._meta.db_table} "  # noqa: S608
            "WHERE id = ANY(%s)",
            [list(message_ids)],
        )
        messages = {pk: (creative_id, campaign_id) for pk, creative_id, campaign_id in cursor}
    for credit in credits.values():
        if credit.click.get("message_id"):
            creative_id, campaign_id = messages[credit.click["message_id"]]
            credit.click["creative_id"] = creative_id
            credit.click["campaign_id"] = campaign_id


INSERT_COLUMNS = (
    ("network_id", "bigint"),
    ("conversion_id", "varchar"),
    ("click_id", "varchar"),
    ("person_key", "varchar"),
    ("status", "varchar"),
    ("payout", "numeric"),
    ("currency", "varchar"),
    ("occurred_at", "timestamptz"),
    ("received_at", "timestamptz"),
    ("processed", "boolean"),
    ("processed_at", "timestamptz"),
    ("attributed", "boolean"),
    ("reason", "varchar"),
    ("attribution_model", "varchar"),
    ("attribution_type", "varchar"),
    ("credited_click_id", "bigint"),
    ("message_id", "bigint"),
    ("creative_id", "bigint"),
    ("campaign_id", "bigint"),
    ("offer_id", "bigint"),
    ("contact_id", "bigint"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)


@dataclass
class NewConversion:
    """A conversion a batch just inserted, as its later postbacks read and change it (no
    model instance: a batch inserts thousands)."""

    pk: int
    status: str
    payout: Decimal
    attributed: bool
    updated_at: datetime


def insert_conversions(
    firsts: dict[ConversionKey, Work], credits: dict[ConversionKey, Credit], now: datetime
) -> dict[ConversionKey, NewConversion]:
    """`INSERT ... ON CONFLICT DO NOTHING RETURNING`: the rows this transaction created.

    Keys are inserted in one fixed order, so two batches that share keys wait on
    each other instead of deadlocking.
    """
    rows: list[dict[str, Any]] = []
    by_identity: dict[tuple[int, str | None, str, str], tuple[ConversionKey, dict[str, Any]]] = {}
    stamp = now.isoformat()
    for key in sorted(k for k in firsts if k in credits):
        work = firsts[key]
        credit = credits[key]
        click = credit.click
        parsed = work.parsed
        person = key[2] if key[1] == "person" else ""
        identity = (work.postback.network_id, parsed.conversion_id, parsed.click_id, person)
        row: dict[str, Any] = {
            "network_id": work.postback.network_id,
            "conversion_id": parsed.conversion_id,
            "click_id": parsed.click_id,
            "person_key": person,
            "status": parsed.status,
            "payout": credit.payout,
            "currency": parsed.currency,
            "occurred_at": parsed.occurred_at.isoformat(),
            "received_at": work.postback.received_at.isoformat(),
            "processed": True,
            "processed_at": stamp,
            "attributed": credit.attributed,
            "reason": credit.decision.reason,
            "attribution_model": credit.model,
            "attribution_type": credit.attribution_type,
            "credited_click_id": credit.decision.click_id,
            "message_id": click.get("message_id"),
            "creative_id": click.get("creative_id"),
            "campaign_id": click.get("campaign_id"),
            "offer_id": click.get("offer_id"),
            "contact_id": click.get("contact_id"),
            "created_at": stamp,
            "updated_at": stamp,
        }
        rows.append(row)
        by_identity[identity] = (key, row)
    if not rows:
        return {}
    names = [name for name, _ in INSERT_COLUMNS]
    # One JSON document rather than 21 arrays: psycopg dumps arrays element by element.
    # `default=str` writes decimals as PostgreSQL reads them back.
    document = json.dumps(rows, default=str)
    columns = ", ".join(f"{name} {sql_type}" for name, sql_type in INSERT_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Conversion._meta.db_table} ({', '.join(names)}) "  # noqa: S608
            f"SELECT {', '.join(names)} FROM jsonb_to_recordset(%s::jsonb) AS x({columns}) "
            "ON CONFLICT DO NOTHING"
            " RETURNING id, network_id, conversion_id, click_id, person_key",
            [document],
        )
        returned = cursor.fetchall()
    inserted: dict[ConversionKey, NewConversion] = {}
    for pk, network_id, conversion_id, click_id, person_key in returned:
        key, row = by_identity[(network_id, conversion_id, click_id, person_key)]
        inserted[key] = NewConversion(
            pk=pk,
            status=row["status"],
            payout=row["payout"],
            attributed=row["attributed"],
            updated_at=now,
        )
    return inserted


def conversion_key(
    network_id: int, conversion_id: str | None, click_id: str, person_key: str
) -> ConversionKey:
    """What makes a conversion one: its id; without one its click id; else its person."""
    if conversion_id:
        return (network_id, "conversion", conversion_id)
    if click_id:
        return (network_id, "click", click_id)
    return (network_id, "person", person_key)


def person_key(*, offer_id: int | None, person: tuple[tuple[str, str], ...]) -> str:
    kind, value = person[0]
    return hashlib.sha256(f"{offer_id}|{kind}:{value}".encode()).hexdigest()


def lock_existing(keys: Iterable[ConversionKey]) -> dict[ConversionKey, Conversion]:
    by_network: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for network_id, kind, value in keys:
        by_network[network_id][kind].append(value)
    found: dict[ConversionKey, Conversion] = {}
    for network_id, kinds in by_network.items():
        if kinds["conversion"]:
            for conversion in (
                Conversion.objects.select_for_update()
                .filter(network_id=network_id, conversion_id__in=kinds["conversion"])
                .order_by("id")
            ):
                found[(network_id, "conversion", str(conversion.conversion_id))] = conversion
        if kinds["click"]:
            for conversion in (
                Conversion.objects.select_for_update()
                .filter(
                    network_id=network_id,
                    conversion_id__isnull=True,
                    click_id__in=kinds["click"],
                )
                .order_by("id")
            ):
                found[(network_id, "click", conversion.click_id)] = conversion
        if kinds["person"]:
            for conversion in (
                Conversion.objects.select_for_update()
                .filter(
                    network_id=network_id,
                    conversion_id__isnull=True,
                    click_id="",
                    person_key__in=kinds["person"],
                )
                .order_by("id")
            ):
                found[(network_id, "person", conversion.person_key)] = conversion
    return found


def insert_events(events: list[dict[str, Any]], now: datetime) -> None:
    if not events:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {ConversionEvent._meta.db_table}
                   (conversion_id, postback_id, from_status, to_status, payout, revenue_delta,
                    created_at)
            SELECT conversion_id, postback_id, from_status, to_status, payout, revenue_delta, %s
              FROM jsonb_to_recordset(%s::jsonb) AS x(conversion_id bigint, postback_id bigint,
                   from_status varchar, to_status varchar, payout numeric, revenue_delta numeric)
            """,  # noqa: S608
            [now, json.dumps(events)],
        )
    conversion_events_announce_on_commit()


def mark_postbacks(done: list[Work], invalid: dict[int, str], now: datetime) -> None:
    marks = [
        {
            "id": work.postback.pk,
            "status": Postback.Status.PROCESSED.value,
            "reason": work.note[:500],
            "conversion_id": work.conversion_id,
        }
        for work in done
    ] + [
        {"id": pk, "status": Postback.Status.INVALID.value, "reason": reason[:500]}
        for pk, reason in invalid.items()
    ]
    if not marks:
        return
    table = Postback._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS postback
               SET status = marks.status, reason = marks.reason,
                   conversion_id = marks.conversion_id, processed_at = %s
              FROM jsonb_to_recordset(%s::jsonb)
                   AS marks(id bigint, status varchar, reason varchar, conversion_id bigint)
             WHERE postback.id = marks.id AND postback.status = %s
            """,  # noqa: S608
            [now, json.dumps(marks), Postback.Status.RECEIVED],
        )
