"""Stored conversions decided again: under other settings (what if) or the offer's own.

The live worker decides a conversion once, when its first postback arrives. This module
takes the same decision again for conversions already stored, many at once, so that an
operator can compare models over history (`conversions_credit` under several
`CreditSettings`) or apply the offer's current settings to history
(`conversions_redecide`, which keeps every change as a `CreditChange`).

The decision is `attribution_models`' (the live one), its rules taken on plain rows and
integer microseconds (`_early_decision`, `_Plan`, `_refusal`: a comparison decides 300,000
times, and `CandidateClick`s and datetimes cost more than the decision), fed with the same
candidates the live worker would fetch: for a conversion at T under a click window W, the
earliest and the latest human click of the contact on the offer in [T-W, T] and the
latest of each channel there (`attribution.services.batch.candidate_clicks`). PostgreSQL
picks those per conversion and distinct window, one query per chunk.
`tests/attribution/test_recredit.py` checks the
equality against the live worker under every configuration.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from attribution.attribution_models import (
    COOPERATIVE,
    FIRST_CLICK,
    FUTURE_TOLERANCE,
    LAST_CLICK,
    MAX_CONVERSION_AGE,
    REASON_BOT_CLICK,
    REASON_CLICK_AFTER_CONVERSION,
    REASON_FUTURE_TIME,
    REASON_NO_CLICK,
    REASON_NO_CLICK_ID,
    REASON_OFFER_MISMATCH,
    REASON_OUTSIDE_WINDOW,
    REASON_TOO_OLD,
    REASON_UNKNOWN_CLICK,
    REASON_UNKNOWN_OFFER,
    VIEW_THROUGH_REASONS,
    CandidateSend,
    Decision,
    OfferWindows,
    view_through_decide,
)
from attribution.models import (
    AttributionType,
    Conversion,
    ConversionEvent,
    ConversionStatus,
    CreditChange,
    Offer,
)
from attribution.services.outbox import conversion_events_announce_on_commit

CLICK_THROUGH = AttributionType.CLICK_THROUGH.value
VIEW_THROUGH = AttributionType.VIEW_THROUGH.value
EARNING_STATUSES = (ConversionStatus.APPROVED.value, ConversionStatus.PENDING.value)


@dataclass(frozen=True)
class CreditSettings:
    """What decides credit: an offer's settings, or a configuration to compare."""

    attribution_model: str
    click_window_days: int
    sms_window_days: int
    email_window_days: int
    view_window_hours: int = 0

    @cached_property
    def windows(self) -> OfferWindows:
        return OfferWindows(
            click_window_days=self.click_window_days,
            sms_window_days=self.sms_window_days,
            email_window_days=self.email_window_days,
        )

    def with_changes(self, **changes: Any) -> CreditSettings:
        """These settings with the given ones replaced (None: keep this one's)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values.update({name: value for name, value in changes.items() if value is not None})
        return CreditSettings(**values)


def offer_credit_settings(offer: Offer) -> CreditSettings:
    return CreditSettings(
        attribution_model=offer.attribution_model,
        click_window_days=offer.click_window_days,
        sms_window_days=offer.sms_window_days,
        email_window_days=offer.email_window_days,
        view_window_hours=offer.view_window_hours,
    )


class StoredConversion(NamedTuple):
    """A stored conversion and the click its network named, as a decision needs them.

    Times in microseconds since the epoch (datetimes only when asked for): a comparison
    loads 100,000 of these, and building datetimes and dataclasses cost seconds."""

    pk: int
    network_id: int
    occurred_us: int
    received_us: int
    status: str
    payout: Decimal
    stored_reason: str
    has_click_id: bool
    # Names a person and an offer, not a click (its contact and offer are stored on it).
    by_person: bool
    # The click the network named, when it exists: its pk, time, channel and whether a
    # person (neither bot nor preview) made it.
    named_pk: int | None
    named_us: int
    named_channel: str
    named_human: bool
    contact_id: int | None
    offer_id: int | None
    offer_network_id: int | None

    @property
    def occurred_at(self) -> datetime:
        return _moment(self.occurred_us)

    @property
    def received_at(self) -> datetime:
        return _moment(self.received_us)


class Credit(NamedTuple):
    """Who gets a conversion's credit under one configuration.

    A tuple, not a dataclass: a comparison makes one per conversion and configuration
    (300,000 at bench size), and a frozen dataclass costs several times more to build."""

    decision: Decision
    attribution_type: str = ""
    click_pk: int | None = None
    message_id: int | None = None
    contact_id: int | None = None
    offer_id: int | None = None
    # The credited click's time, or the credited message's send time (microseconds since
    # the epoch; a datetime only when `why` is asked), and the click's channel.
    at_us: int | None = None
    channel: str = ""

    @property
    def attributed(self) -> bool:
        return self.message_id is not None

    @property
    def at(self) -> datetime | None:
        return None if self.at_us is None else _moment(self.at_us)

    def why(self) -> str:
        """In a few words, for an operator reading a drill-down."""
        if self.at_us is None:
            return f"unattributed: {self.decision.reason or 'no candidate'}"
        minute = _minute_text(self.at_us // MINUTE_US)
        if self.attribution_type == VIEW_THROUGH:
            return f"view-through: message sent {minute} UTC"
        return f"{self.channel} click at {minute} UTC"


@lru_cache(maxsize=65_536)
def _minute_text(minute: int) -> str:
    """A minute as the drill-down shows it, "2026-12-06 20:56": clicks crowd into few
    minutes, so each is formatted once."""
    return _moment(minute * MINUTE_US).isoformat(" ", "minutes")[:16]


def _span(rows: Sequence[tuple[Any, ...]], earliest: int, latest: int) -> tuple[int, int]:
    # Rows sort by (time, id): every row at `earliest` sorts after (earliest,), every row
    # at `latest` before (latest, inf).
    return bisect_left(rows, (earliest,)), bisect_right(rows, (latest, float("inf")))


# Times travel as integer microseconds since the epoch: psycopg turns an integer into a
# Python int in C, while a timestamptz goes through Django's time-zone loader, which cost
# more than the whole decision on a 100,000-conversion comparison.
_MICROSECONDS = "(extract(epoch FROM {column}) * 1000000)::bigint"
# And back, exactly (integer arithmetic, no float rounding at a window's edge).
_FROM_MICROSECONDS = "('epoch'::timestamptz + {value} * interval '1 microsecond')"
_STORED_SELECT = f"""
SELECT v.id, v.network_id, {_MICROSECONDS.format(column="v.occurred_at")},
       {_MICROSECONDS.format(column="v.received_at")}, v.status, v.payout, v.reason,
       v.click_id <> '' AS has_click_id,
       v.click_id = '' AND (v.offer_id IS NOT NULL OR v.person_key <> ''
                            OR v.reason IN ('unknown_person', 'unknown_offer')) AS by_person,
       v.contact_id, v.offer_id,
       c.id, {_MICROSECONDS.format(column="c.occurred_at")}, c.channel, c.is_bot, c.is_preview,
       c.contact_id, c.offer_id, o.network_id
FROM attribution_conversion v
LEFT JOIN tracking_click c ON c.click_id = v.click_id AND v.click_id <> ''
LEFT JOIN attribution_offer o ON o.id = c.offer_id
"""  # noqa: S608 (constant fragments only)
_STORED_SQL = _STORED_SELECT + "WHERE v.id = ANY(%s) ORDER BY v.id"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A candidate click: (occurred_at in microseconds, click pk, channel, message pk).
_Row = tuple[int, int, str, int]
_NONE: list[_Row] = []
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
MINUTE_US = 60_000_000


def _moment(microseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=microseconds)


def _stored(rows: Iterable[tuple[Any, ...]]) -> list[StoredConversion]:
    stored = []
    for (
        pk,
        network_id,
        occurred_at,
        received_at,
        status,
        payout,
        reason,
        has_click_id,
        by_person,
        stored_contact_id,
        stored_offer_id,
        click_pk,
        click_at,
        channel,
        is_bot,
        is_preview,
        contact_id,
        offer_id,
        offer_network_id,
    ) in rows:
        stored.append(
            StoredConversion(
                pk,
                network_id,
                occurred_at,
                received_at,
                status,
                payout,
                reason,
                has_click_id,
                by_person,
                click_pk,
                click_at or 0,
                channel or "",
                not (is_bot or is_preview),
                stored_contact_id if by_person else contact_id,
                stored_offer_id if by_person else offer_id,
                offer_network_id,
            )
        )
    return stored


def _in_range(*, offer_id: int | None, earning_only: bool) -> str:
    """The WHERE clause of the conversions whose `occurred_at` day (in REPORTS_TIME_ZONE)
    is in [start, end] (on `v`, joined to its named click as `c`)."""
    where = [
        "v.occurred_at >= (%(start)s::date::timestamp AT TIME ZONE %(tz)s)",
        "v.occurred_at < ((%(end)s::date + 1)::timestamp AT TIME ZONE %(tz)s)",
    ]
    if earning_only:
        where.append("v.status IN ('approved', 'pending')")
    if offer_id is not None:
        where.append("COALESCE(c.offer_id, v.offer_id) = %(offer)s")
    return " AND ".join(where)


def conversion_ids_in_range(
    *, start: date, end: date, offer_id: int | None, earning_only: bool
) -> list[int]:
    """Conversions whose `occurred_at` day (in REPORTS_TIME_ZONE) is in [start, end].

    With an offer: the conversions its clicks were named by, or that it was credited to.
    """
    join = (
        "LEFT JOIN tracking_click c ON c.click_id = v.click_id AND v.click_id <> ''"
        if offer_id is not None
        else ""
    )
    sql = f"""
        SELECT v.id FROM attribution_conversion v {join}
        WHERE {_in_range(offer_id=offer_id, earning_only=earning_only)} ORDER BY v.id
    """  # noqa: S608 (constant fragments only)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {"start": start, "end": end, "tz": settings.REPORTS_TIME_ZONE, "offer": offer_id},
        )
        return [row[0] for row in cursor.fetchall()]


def conversions_stored_in_range(
    *, start: date, end: date, offer_id: int | None, earning_only: bool
) -> list[StoredConversion]:
    """`conversions_stored` of `conversion_ids_in_range`, in one query: a range joins the
    named clicks in one pass where 20 chunks of ids would scan the clicks 20 times."""
    sql = (
        _STORED_SELECT
        + f"WHERE {_in_range(offer_id=offer_id, earning_only=earning_only)} ORDER BY v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {"start": start, "end": end, "tz": settings.REPORTS_TIME_ZONE, "offer": offer_id},
        )
        return _stored(cursor.fetchall())


def conversions_stored(
    *, conversion_ids: Sequence[int], lock: bool = False
) -> list[StoredConversion]:
    """These conversions, each with the click its network named (locked with `lock`)."""
    if not conversion_ids:
        return []
    sql = _STORED_SQL
    if lock:
        sql += " FOR UPDATE OF v"
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(conversion_ids)])
        return _stored(cursor.fetchall())


def conversions_credit(
    *,
    conversions: Sequence[StoredConversion],
    settings_by_offer: dict[int, list[CreditSettings]],
) -> dict[int, list[Credit]]:
    """Each conversion's credit under each of its offer's configurations, in order.

    `settings_by_offer[offer_id]` lists the configurations to decide under; every offer of
    these conversions' named clicks must be there (conversions without one need none).

    The models are `attribution_decide`'s, taken here on the candidate rows themselves
    (integer microseconds, each configuration's windows worked out once): a comparison
    decides 300,000 times, and building `CandidateClick`s and datetimes for each cost more
    than the decision. `tests/attribution/test_recredit.py` holds both to the live worker.
    """
    configurations = max((len(value) for value in settings_by_offer.values()), default=1)
    credits: dict[int, list[Credit]] = {}
    needing: list[StoredConversion] = []
    for conversion in conversions:
        early = _early_decision(conversion)
        if early is not None:
            credits[conversion.pk] = [Credit(early)] * configurations
        else:
            needing.append(conversion)
    if not needing:
        return credits
    plans = {
        offer_id: [_Plan.of(s) for s in values] for offer_id, values in settings_by_offer.items()
    }
    candidates = _candidates(needing, plans)
    first_clicks = _first_clicks([c for c in needing if c.by_person])
    messages_sent = _view_through_messages(needing, settings_by_offer)
    for conversion in needing:
        assert conversion.offer_id is not None and conversion.contact_id is not None  # noqa: S101
        moment = conversion.occurred_us
        per_configuration = []
        for plan in plans[conversion.offer_id]:
            rows = candidates.get((conversion.pk, plan.click_us), _NONE)
            chosen = plan.choose(rows, moment)
            if chosen is not None:
                per_configuration.append(
                    Credit(
                        Decision(chosen[1], ""),
                        CLICK_THROUGH,
                        click_pk=chosen[1],
                        message_id=chosen[3],
                        contact_id=conversion.contact_id,
                        offer_id=conversion.offer_id,
                        at_us=chosen[0],
                        channel=chosen[2],
                    )
                )
                continue
            per_configuration.append(
                _view_through(
                    _refusal(conversion, rows, first_clicks),
                    conversion=conversion,
                    hours=plan.view_window_hours,
                    sent=messages_sent.get((conversion.contact_id, conversion.offer_id), []),
                )
            )
        credits[conversion.pk] = per_configuration
    return credits


_MODEL_CODES = {FIRST_CLICK: 0, LAST_CLICK: 1, COOPERATIVE: 2}


@dataclass(frozen=True)
class _Plan:
    """A configuration's model and windows in microseconds (`OfferWindows` and the model
    functions of `attribution_models`, worked out once for every conversion)."""

    # 0 first click (also an unknown model, as `MODELS.get` falls back), 1 last, 2 cooperative
    model: int
    click_us: int
    sms_us: int
    email_us: int
    view_window_hours: int

    @classmethod
    def of(cls, credit_settings: CreditSettings) -> _Plan:
        windows = credit_settings.windows
        return cls(
            model=_MODEL_CODES.get(credit_settings.attribution_model, 0),
            click_us=windows.click_window_days * DAY_US,
            sms_us=_whole_us(windows.channel_window("sms")),
            email_us=_whole_us(windows.channel_window("email")),
            view_window_hours=credit_settings.view_window_hours,
        )

    def choose(self, rows: list[_Row], moment: int) -> _Row | None:
        """The credited row of `rows` (the candidates, oldest first), as the model picks."""
        if not rows:
            return None
        if self.model == 0:
            return rows[0]
        if self.model == 1:
            return rows[-1]
        for row in reversed(rows):
            channel = row[2]
            window = (
                self.sms_us
                if channel == "sms"
                else self.email_us
                if channel == "email"
                else self.click_us
            )
            if moment - row[0] <= window:
                return row
        return None


def _whole_us(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


_FUTURE_TOLERANCE_US = _whole_us(FUTURE_TOLERANCE)
_MAX_CONVERSION_AGE_US = _whole_us(MAX_CONVERSION_AGE)
_REFUSALS = {
    reason: Decision(None, reason)
    for reason in (
        REASON_OUTSIDE_WINDOW,
        REASON_NO_CLICK,
        REASON_BOT_CLICK,
        REASON_CLICK_AFTER_CONVERSION,
        REASON_FUTURE_TIME,
        REASON_TOO_OLD,
    )
}


def _timing_refusal(conversion: StoredConversion) -> Decision | None:
    """The first refusals of `attribution_decide` and `attribution_decide_person`: a time
    in the future or too old (the same comparisons, in microseconds)."""
    if conversion.occurred_us > conversion.received_us + _FUTURE_TOLERANCE_US:
        return _REFUSALS[REASON_FUTURE_TIME]
    if conversion.occurred_us < conversion.received_us - _MAX_CONVERSION_AGE_US:
        return _REFUSALS[REASON_TOO_OLD]
    return None


def _refusal(
    conversion: StoredConversion,
    rows: list[_Row],
    first_clicks: dict[tuple[int | None, int | None], int],
) -> Decision:
    """Why no candidate was chosen, as `attribution_decide(_person)` says it (for a person:
    whether they clicked the offer at all before T tells "outside the window" from "no
    click")."""
    if conversion.by_person:
        first_click = first_clicks.get((conversion.contact_id, conversion.offer_id))
        if rows or (first_click is not None and first_click <= conversion.occurred_us):
            return _REFUSALS[REASON_OUTSIDE_WINDOW]
        return _REFUSALS[REASON_NO_CLICK]
    if not rows and not conversion.named_human:
        return _REFUSALS[REASON_BOT_CLICK]
    if not rows and conversion.named_us > conversion.occurred_us:
        return _REFUSALS[REASON_CLICK_AFTER_CONVERSION]
    return _REFUSALS[REASON_OUTSIDE_WINDOW]


def _early_decision(conversion: StoredConversion) -> Decision | None:
    """A decision that needs no candidate, exactly as the live worker takes it first (the
    refusals `attribution_decide` and `attribution_decide_person` make before they look
    at any click)."""
    if conversion.by_person:
        if conversion.contact_id is None or conversion.offer_id is None:
            # The person or the offer was not known (the stored reason says which); only a
            # hash of the identifiers is kept, so they cannot be looked up again here.
            return Decision(None, conversion.stored_reason)
        return _timing_refusal(conversion)
    if not conversion.has_click_id:
        return Decision(None, REASON_NO_CLICK_ID)
    if conversion.stored_reason == REASON_OFFER_MISMATCH or (
        conversion.named_pk is not None and conversion.offer_network_id != conversion.network_id
    ):
        # The postback named another offer than its click's: the stored row keeps no copy
        # of that field, so the stored reason stands.
        return Decision(None, REASON_OFFER_MISMATCH)
    timing = _timing_refusal(conversion)
    if timing is not None:
        return timing
    if conversion.named_pk is None:
        return Decision(None, REASON_UNKNOWN_CLICK)
    return None


_CHANNEL_CODES = "CASE c.channel WHEN 'sms' THEN 1 WHEN 'email' THEN 2 ELSE 0 END"
_CHANNELS = ("", "sms", "email")  # a click's channel is one of `Channel`'s


def _candidates(
    conversions: Sequence[StoredConversion], plans: dict[int, list[_Plan]]
) -> dict[tuple[int, int], list[_Row]]:
    """Per conversion and click window (microseconds), the candidate rows the live query
    returns, oldest first: the earliest and the latest human click of the contact on the
    offer within [T - window, T], and the latest of each channel there.

    PostgreSQL finds them (one index range scan per conversion and window, aggregated in
    place), so a comparison reads four rows per conversion instead of every click."""
    wanted: list[list[int]] = [[], [], [], [], [], []]
    for conversion in conversions:
        assert conversion.offer_id is not None and conversion.contact_id is not None  # noqa: S101
        for window in {plan.click_us for plan in plans[conversion.offer_id]}:
            for column, value in zip(
                wanted,
                (
                    conversion.pk,
                    window,
                    conversion.contact_id,
                    conversion.offer_id,
                    conversion.occurred_us - window,
                    conversion.occurred_us,
                ),
                strict=True,
            ):
                column.append(value)
    found: dict[tuple[int, int], list[_Row]] = {}
    click = f"{_MICROSECONDS.format(column='c.occurred_at')}, c.id, c.message_id"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT wanted.conversion, wanted.window_us,
                   first[1], first[2], first[3], first[4], last[1], last[2], last[3], last[4],
                   sms[1], sms[2], sms[3], email[1], email[2], email[3]
            FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[],
                        %s::bigint[], %s::bigint[])
                 AS wanted(conversion, window_us, contact, offer, lo, hi)
            CROSS JOIN LATERAL (
                SELECT min(ARRAY[{click}, {_CHANNEL_CODES}]) AS first,
                       max(ARRAY[{click}, {_CHANNEL_CODES}]) AS last,
                       max(ARRAY[{click}]) FILTER (WHERE c.channel = 'sms') AS sms,
                       max(ARRAY[{click}]) FILTER (WHERE c.channel = 'email') AS email
                FROM tracking_click c
                WHERE c.contact_id = wanted.contact AND c.offer_id = wanted.offer
                  AND c.occurred_at BETWEEN {_FROM_MICROSECONDS.format(value="wanted.lo")}
                                        AND {_FROM_MICROSECONDS.format(value="wanted.hi")}
                  AND NOT c.is_bot AND NOT c.is_preview
            ) AS picked
            WHERE picked.first IS NOT NULL
            """,  # noqa: S608 (constant expressions only)
            [_array_text(column) for column in wanted],
        )
        for (
            conversion_pk,
            window,
            first_us,
            first_pk,
            first_message,
            first_code,
            last_us,
            last_pk,
            last_message,
            last_code,
            sms_us,
            sms_pk,
            sms_message,
            email_us,
            email_pk,
            email_message,
        ) in cursor.fetchall():
            rows = {
                first_pk: (first_us, first_pk, _CHANNELS[first_code], first_message),
                last_pk: (last_us, last_pk, _CHANNELS[last_code], last_message),
            }
            if sms_pk is not None:
                rows[sms_pk] = (sms_us, sms_pk, "sms", sms_message)
            if email_pk is not None:
                rows[email_pk] = (email_us, email_pk, "email", email_message)
            found[(conversion_pk, window)] = sorted(rows.values())
    return found


def _spans(
    conversions: Sequence[StoredConversion], reach_us: Callable[[int], int]
) -> dict[tuple[int, int], list[int]]:
    """Per contact and offer, the time range [earliest T - reach, latest T] (microseconds)
    that a window of `reach_us(offer_id)` can see from these conversions; none when 0."""
    spans: dict[tuple[int, int], list[int]] = {}
    for conversion in conversions:
        assert conversion.offer_id is not None and conversion.contact_id is not None  # noqa: S101
        reach = reach_us(conversion.offer_id)
        if reach <= 0:
            continue
        earliest = conversion.occurred_us - reach
        span = spans.get((conversion.contact_id, conversion.offer_id))
        if span is None:
            spans[(conversion.contact_id, conversion.offer_id)] = [earliest, conversion.occurred_us]
        else:
            span[0] = min(span[0], earliest)
            span[1] = max(span[1], conversion.occurred_us)
    return spans


def _columns(spans: dict[tuple[int, int], list[int]]) -> list[str]:
    """Contacts, offers, lower and upper bounds as four arrays (one `unnest` in SQL), in
    PostgreSQL's text form: psycopg's list dumper took seconds on 100,000 contacts."""
    return [
        _array_text(contact for contact, _ in spans),
        _array_text(offer for _, offer in spans),
        _array_text(span[0] for span in spans.values()),
        _array_text(span[1] for span in spans.values()),
    ]


def _array_text(values: Iterable[int]) -> str:
    return "{" + ",".join(map(str, values)) + "}"


def _first_clicks(
    conversions: Sequence[StoredConversion],
) -> dict[tuple[int | None, int | None], int]:
    """Each of these contacts' first human click on the offer ever, in microseconds."""
    pairs = {(c.contact_id, c.offer_id) for c in conversions}
    if not pairs:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT wanted.contact, wanted.offer, first_click.at
            FROM unnest(%s::bigint[], %s::bigint[]) AS wanted(contact, offer)
            CROSS JOIN LATERAL (
                SELECT {_MICROSECONDS.format(column="c.occurred_at")} AS at
                FROM tracking_click c
                WHERE c.contact_id = wanted.contact AND c.offer_id = wanted.offer
                  AND NOT c.is_bot AND NOT c.is_preview
                ORDER BY c.occurred_at LIMIT 1
            ) AS first_click
            """,  # noqa: S608 (a constant expression only)
            [[contact for contact, _ in pairs], [offer for _, offer in pairs]],
        )
        return {(contact_id, offer_id): first_us for contact_id, offer_id, first_us in cursor}


def _view_through_messages(
    conversions: Sequence[StoredConversion], settings_by_offer: dict[int, list[CreditSettings]]
) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """Messages of each offer sent to each contact that a view window can reach."""
    spans = _spans(
        conversions,
        lambda offer_id: max(s.view_window_hours for s in settings_by_offer[offer_id]) * HOUR_US,
    )
    if not spans:
        return {}
    sent: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT m.contact_id, m.offer_id, {_MICROSECONDS.format(column="m.sent_at")}, m.id
            FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])
                 AS wanted(contact, offer, lo, hi)
            JOIN tracking_message m
              ON m.contact_id = wanted.contact AND m.offer_id = wanted.offer
             AND m.sent_at BETWEEN {_FROM_MICROSECONDS.format(value="wanted.lo")}
                               AND {_FROM_MICROSECONDS.format(value="wanted.hi")}
            """,  # noqa: S608 (a constant expression only)
            _columns(spans),
        )
        for contact_id, offer_id, sent_at, message_id in cursor:
            sent[(contact_id, offer_id)].append((sent_at, message_id))
    for rows in sent.values():
        rows.sort()
    return sent


def _view_through(
    decision: Decision,
    *,
    conversion: StoredConversion,
    hours: int,
    sent: list[tuple[int, int]],
) -> Credit:
    """No click-through credit: the latest send within `hours` before T, as the live
    worker credits it (`view_through_decide`, after the same refusals only)."""
    if hours <= 0 or not sent or decision.reason not in VIEW_THROUGH_REASONS:
        return Credit(decision)
    earliest = conversion.occurred_us - hours * HOUR_US
    first, last = _span(sent, earliest, conversion.occurred_us)
    send = view_through_decide(
        sends=[
            CandidateSend(message_id=message_id, sent_at=_moment(sent_at))
            for sent_at, message_id in sent[first:last]
        ],
        view_window_hours=hours,
        occurred_at=conversion.occurred_at,
    )
    if send is None:
        return Credit(decision)
    message_id, sent_at = send.message_id, send.sent_at
    return Credit(
        Decision(None, ""),
        VIEW_THROUGH,
        message_id=message_id,
        contact_id=conversion.contact_id,
        offer_id=conversion.offer_id,
        at_us=_whole_us(sent_at - EPOCH),
    )


# The credit columns of a conversion, in the order `credit_of` and `CreditChange` use.
CREDIT_FIELDS = (
    "attributed",
    "reason",
    "attribution_model",
    "attribution_type",
    "credited_click_id",
    "message_id",
    "creative_id",
    "campaign_id",
    "offer_id",
    "contact_id",
)


@dataclass(frozen=True)
class RedecideOutcome:
    decided: int
    changed: int
    days: list[date]


def conversions_redecide(
    *, conversion_ids: Sequence[int], changed_by_id: int | None, why: str
) -> RedecideOutcome:
    """Decide these conversions again under their offers' current settings.

    One transaction; the conversions are locked (the live worker's status changes wait,
    and wait for it), so a conversion ends with one decision. Only the credit columns
    change; each changed conversion gets a `CreditChange` with the credit before and after.
    Returns the report days (in REPORTS_TIME_ZONE) whose rollups the changes touch; the
    every-minute rollup task finds them too, through `updated_at`.
    """
    now = timezone.now()
    with transaction.atomic():
        stored = conversions_stored(conversion_ids=sorted(set(conversion_ids)), lock=True)
        offers = {
            offer.pk: [offer_credit_settings(offer)]
            for offer in Offer.objects.filter(
                pk__in={c.offer_id for c in stored if c.offer_id is not None}
            )
        }
        credits = conversions_credit(conversions=stored, settings_by_offer=offers)
        models_by_offer = {pk: values[0].attribution_model for pk, values in offers.items()}
        after_by_pk = {
            conversion.pk: _credit_columns(
                credits[conversion.pk][0],
                model=_stored_model(conversion, credits[conversion.pk][0], models_by_offer),
                keeps_person=conversion.by_person,
            )
            for conversion in stored
        }
        _fill_creative_and_campaign(after_by_pk.values())
        current = {
            row["id"]: row
            for row in Conversion.objects.filter(pk__in=after_by_pk).values("id", *CREDIT_FIELDS)
        }
        changes: list[CreditChange] = []
        changed_rows: list[Conversion] = []
        model_only: list[Conversion] = []
        days: set[date] = set()
        zone = ZoneInfo(settings.REPORTS_TIME_ZONE)
        for conversion in stored:
            before = {name: current[conversion.pk][name] for name in CREDIT_FIELDS}
            after = after_by_pk[conversion.pk]
            if _same_credit(before, after):
                if before["attribution_model"] != after["attribution_model"]:
                    # The same click under another model: the row says which model decided
                    # it, but no credit moved, so there is no change to keep or recompute.
                    model_only.append(
                        Conversion(pk=conversion.pk, attribution_model=after["attribution_model"])
                    )
                continue
            changes.append(
                CreditChange(
                    conversion_id=conversion.pk,
                    before=before,
                    after=after,
                    changed_by_id=changed_by_id,
                    why=why[:255],
                    created_at=now,
                )
            )
            row = Conversion(pk=conversion.pk, updated_at=now, **after)
            changed_rows.append(row)
            days.add(timezone.localtime(conversion.occurred_at, zone).date())
        if changed_rows:
            Conversion.objects.bulk_update(
                changed_rows, [*CREDIT_FIELDS, "updated_at"], batch_size=1000
            )
            CreditChange.objects.bulk_create(changes, batch_size=1000)
            _credit_changes_announce([row.pk for row in changed_rows], now)
        if model_only:
            Conversion.objects.bulk_update(model_only, ["attribution_model"], batch_size=1000)
    return RedecideOutcome(decided=len(stored), changed=len(changes), days=sorted(days))


def _credit_changes_announce(conversion_ids: list[int], now: datetime) -> None:
    """A credit change is conversion news too: one event each (same status, no revenue
    moved), in this transaction, so subscribers (webhooks) hear of it like a status change."""
    ConversionEvent.objects.bulk_create(
        [
            ConversionEvent(
                conversion_id=pk,
                from_status=status,
                to_status=status,
                payout=payout,
                revenue_delta=Decimal(0),
                created_at=now,
            )
            for pk, status, payout in Conversion.objects.filter(pk__in=conversion_ids)
            .order_by("pk")
            .values_list("pk", "status", "payout")
        ],
        batch_size=1000,
    )
    conversion_events_announce_on_commit()


def _stored_model(
    conversion: StoredConversion, credit: Credit, models_by_offer: dict[int, str]
) -> str:
    """The model the live worker writes on the row: its offer's, once it knows the offer."""
    if credit.decision.reason in (REASON_OFFER_MISMATCH, REASON_NO_CLICK_ID, REASON_UNKNOWN_OFFER):
        return ""
    if conversion.by_person or conversion.named_pk is not None:
        return models_by_offer.get(conversion.offer_id or 0, "")
    return ""


def _credit_columns(credit: Credit, *, model: str, keeps_person: bool) -> dict[str, Any]:
    # Unattributed, a conversion naming a person keeps that person and offer; one naming a
    # click keeps nothing (its click's row says who it was), as the live worker stores them.
    kept = credit.attributed or keeps_person
    return {
        "attributed": credit.attributed,
        "reason": credit.decision.reason,
        "attribution_model": model,
        "attribution_type": credit.attribution_type or None,
        "credited_click_id": credit.click_pk,
        "message_id": credit.message_id,
        "creative_id": None,
        "campaign_id": None,
        "offer_id": credit.offer_id if kept else None,
        "contact_id": credit.contact_id if kept else None,
    }


def _fill_creative_and_campaign(rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    message_ids = {row["message_id"] for row in rows if row["message_id"] is not None}
    if not message_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, creative_id, campaign_id FROM tracking_message WHERE id = ANY(%s)",
            [list(message_ids)],
        )
        found = {pk: (creative_id, campaign_id) for pk, creative_id, campaign_id in cursor}
    for row in rows:
        if row["message_id"] is not None:
            row["creative_id"], row["campaign_id"] = found[row["message_id"]]


def _same_credit(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether the credit stays where it was (the deciding model aside)."""
    return all(before[name] == after[name] for name in CREDIT_FIELDS if name != "attribution_model")
