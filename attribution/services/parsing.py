"""From a raw postback (query string, body) to the fields of a conversion.

Pure functions: the intake uses them to answer 400 at once, the worker uses them
again on the stored row, so both always agree on what a postback means.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode

from django.core.exceptions import ValidationError

from attribution.models import ConversionStatus
from tracking.services.contacts import (
    EXTERNAL_ID_MAX_LENGTH,
    contact_normalize_email,
    contact_normalize_phone,
)

CLICK_ID = "click_id"
CONVERSION_ID = "conversion_id"
PAYOUT = "payout"
CURRENCY = "currency"
STATUS = "status"
OCCURRED_AT = "occurred_at"
TOKEN = "token"  # noqa: S105 (a parameter name, not a secret)
OFFER_ID = "offer_id"
# The person instead of a click (see INTERFACES.md, "Conversions without a click id").
EMAIL = "email"
PHONE = "phone"
EXTERNAL_ID = "external_id"
PERSON_FIELDS = (EXTERNAL_ID, EMAIL, PHONE)

STANDARD_ALIASES: dict[str, tuple[str, ...]] = {
    CLICK_ID: ("click_id", "clickid", "aff_sub", "sub1", "subid", "cid", "transaction_id"),
    CONVERSION_ID: ("conversion_id", "txid", "tid", "order_id", "adv_sub", "event_id"),
    PAYOUT: ("payout", "amount", "sum", "revenue"),
    CURRENCY: ("currency", "cnv_currency"),
    STATUS: ("status", "conversion_status"),
    OCCURRED_AT: ("occurred_at", "timestamp", "conversion_unix_timestamp", "datetime"),
    TOKEN: ("token", "security_token", "verification_token", "key"),
    OFFER_ID: ("offer_id", "offer"),
    EMAIL: ("email",),
    PHONE: ("phone",),
    EXTERNAL_ID: ("external_id", "customer_id", "user_id"),
}
TOKEN_HEADER = "X-Postback-Token"  # noqa: S105

STATUS_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(
        [
            *("approved", "approve", "confirmed", "success", "successful", "completed"),
            *("complete", "paid", "accepted", "sale", "valid", "ok"),
        ],
        ConversionStatus.APPROVED.value,
    ),
    **dict.fromkeys(
        ["pending", "hold", "on_hold", "onhold", "waiting", "processing", "new", "open"],
        ConversionStatus.PENDING.value,
    ),
    **dict.fromkeys(
        [
            *("rejected", "reject", "declined", "decline", "denied", "invalid", "fraud"),
            *("cancelled", "canceled", "failed", "trash"),
        ],
        ConversionStatus.REJECTED.value,
    ),
    **dict.fromkeys(
        [
            *("reversed", "reverse", "reversal", "chargeback", "charged_back", "refund"),
            *("refunded", "returned", "void", "voided", "clawback"),
        ],
        ConversionStatus.REVERSED.value,
    ),
}

MAX_ID_LENGTH = 255
# Conversion.payout is NUMERIC(12, 4).
MAX_PAYOUT = Decimal("99999999.9999")
PAYOUT_PLACES = Decimal("0.0001")
CURRENCY_PATTERN = re.compile(r"^[A-Za-z]{3}$")
# Some networks send milliseconds where seconds are asked for; no second count
# of this size is a real conversion time.
MILLISECONDS_THRESHOLD = 100_000_000_000


class PostbackInvalid(ValueError):
    """A postback that can never become a conversion as sent; `str()` names the field."""


@dataclass(frozen=True)
class ParsedPostback:
    click_id: str
    conversion_id: str | None
    payout: Decimal | None
    currency: str
    status: str
    occurred_at: datetime
    offer_id: int | None
    # The person it names instead of a click: ((kind, normalised value), ...), most
    # specific first (external_id, email, phone).
    person: tuple[tuple[str, str], ...] = ()


def clean_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; everything else is kept as sent."""
    return value.replace("\x00", "\ufffd")


def _is_json(content_type: str, body: str) -> bool:
    return "json" in content_type.lower() or body.lstrip()[:1] in ("{", "[")


def _is_form(content_type: str) -> bool:
    return "x-www-form-urlencoded" in content_type.lower()


def body_fields(*, body: str, content_type: str) -> dict[str, Any]:
    """The parameters in a body: a JSON object, or a form. Anything else carries none."""
    if not body.strip():
        return {}
    if _is_json(content_type, body):
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise PostbackInvalid("body is not valid JSON") from error
        if not isinstance(decoded, dict):
            raise PostbackInvalid("JSON body must be an object")
        return decoded
    if _is_form(content_type):
        return first_values(query_pairs(body))
    return {}


def query_pairs(query_string: str) -> list[tuple[str, str]]:
    """`parse_qsl(query_string, keep_blank_values=True)`: the same pairs, read without
    decoding when nothing in it is encoded (nearly every postback), at a fraction of the
    cost."""
    if "%" in query_string or "+" in query_string:
        return parse_qsl(query_string, keep_blank_values=True)
    return [
        (name, value)
        for part in query_string.split("&")
        if part
        for name, _, value in (part.partition("="),)
    ]


def first_values(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Each name with its first value, as the intake and the worker read parameters."""
    fields: dict[str, Any] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def request_fields(*, query_string: str, body: str, content_type: str) -> dict[str, Any]:
    """Query parameters and body parameters together; the body wins a name clash."""
    fields = first_values(query_pairs(query_string))
    fields.update(body_fields(body=body, content_type=content_type))
    return fields


def aliases_for(field: str, network_aliases: Mapping[str, Any]) -> Sequence[str]:
    """The network's own names first (it knows its own payload), then the standard ones."""
    extra = network_aliases.get(field) or []
    if not extra:
        # Most networks have no names of their own: every field of every row asks.
        return STANDARD_ALIASES[field]
    if isinstance(extra, str):
        extra = [extra]
    names = [str(name) for name in extra if isinstance(name, str | int)]
    return names + [name for name in STANDARD_ALIASES[field] if name not in names]


FieldNames = Mapping[str, Sequence[str]]


def field_names(network_aliases: Mapping[str, Any]) -> dict[str, Sequence[str]]:
    """`aliases_for` every field at once: a network's table, to reuse for each postback."""
    aliases = network_aliases if isinstance(network_aliases, Mapping) else {}
    return {field: aliases_for(field, aliases) for field in STANDARD_ALIASES}


def _lookup(fields: Mapping[str, Any], names: Sequence[str]) -> tuple[str, Any] | None:
    for name in names:
        value = fields.get(name)
        if value is None:
            continue
        if isinstance(value, str) and not value.strip():
            continue
        return name, value
    return None


def _as_text(name: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PostbackInvalid(f"{name} must be a string")
    return str(value).strip()


def token_from(fields: Mapping[str, Any], network_aliases: Mapping[str, Any]) -> str | None:
    return token_among(fields, aliases_for(TOKEN, network_aliases))


def token_among(fields: Mapping[str, Any], names: Sequence[str]) -> str | None:
    """The token under the first of `names` that carries one (`field_names(...)[TOKEN]`)."""
    found = _lookup(fields, names)
    if found is None or not isinstance(found[1], str | int):
        return None
    return str(found[1])


def _identifier(fields: Mapping[str, Any], field: str, names: FieldNames) -> str:
    found = _lookup(fields, names[field])
    if found is None:
        return ""
    name, value = found
    text = clean_text(_as_text(name, value))
    if len(text) > MAX_ID_LENGTH:
        raise PostbackInvalid(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return text


def _payout(fields: Mapping[str, Any], names: FieldNames) -> Decimal | None:
    found = _lookup(fields, names[PAYOUT])
    if found is None:
        return None
    name, value = found
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PostbackInvalid(f"{name} must be a non-negative decimal number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as error:
        raise PostbackInvalid(f"{name} must be a non-negative decimal number") from error
    if not amount.is_finite() or amount < 0:
        raise PostbackInvalid(f"{name} must be a non-negative decimal number")
    # Compared before rounding: quantize() itself fails on "1e999999".
    if amount > MAX_PAYOUT:
        raise PostbackInvalid(f"{name} must be at most {MAX_PAYOUT}")
    return amount.quantize(PAYOUT_PLACES)


def _currency(fields: Mapping[str, Any], names: FieldNames, default: str) -> str:
    found = _lookup(fields, names[CURRENCY])
    if found is None:
        return default
    name, value = found
    text = _as_text(name, value)
    if not CURRENCY_PATTERN.match(text):
        raise PostbackInvalid(f"{name} must be a 3-letter ISO 4217 code")
    return text.upper()


def _status(fields: Mapping[str, Any], names: FieldNames, status_map: Mapping[str, Any]) -> str:
    found = _lookup(fields, names[STATUS])
    if found is None:
        return ConversionStatus.APPROVED.value
    name, value = found
    text = _as_text(name, value)
    mapped = status_map.get(text)
    if mapped is None:
        mapped = {str(key).lower(): target for key, target in status_map.items()}.get(text.lower())
    if mapped is None:
        mapped = STATUS_SYNONYMS.get(text.lower().replace("-", "_").replace(" ", "_"))
    if mapped not in ConversionStatus.values:
        raise PostbackInvalid(f"{name} {text[:40]!r} is not a known status")
    return str(mapped)


def parse_time(name: str, value: Any) -> datetime:
    """Unix seconds (or milliseconds) or ISO 8601; a time without a zone is UTC."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PostbackInvalid(f"{name} must be unix seconds or an ISO 8601 time")
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    try:
        if seconds is not None:
            if seconds != seconds or seconds < 0:
                raise ValueError(text)
            if seconds >= MILLISECONDS_THRESHOLD:
                seconds /= 1000
            return datetime.fromtimestamp(seconds, tz=UTC)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError) as error:
        raise PostbackInvalid(f"{name} must be unix seconds or an ISO 8601 time") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as error:
        raise PostbackInvalid(f"{name} is out of range") from error


def _occurred_at(fields: Mapping[str, Any], names: FieldNames, received_at: datetime) -> datetime:
    found = _lookup(fields, names[OCCURRED_AT])
    if found is None:
        return received_at
    return parse_time(*found)


def _offer_id(fields: Mapping[str, Any], names: FieldNames) -> int | None:
    found = _lookup(fields, names[OFFER_ID])
    if found is None:
        return None
    name, value = found
    text = _as_text(name, value)
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise PostbackInvalid(f"{name} must be a whole number")
    return int(text)


def _person(fields: Mapping[str, Any], names: FieldNames) -> tuple[tuple[str, str], ...]:
    person: list[tuple[str, str]] = []
    for kind in PERSON_FIELDS:
        found = _lookup(fields, names[kind])
        if found is None:
            continue
        name, value = found
        text = clean_text(_as_text(name, value))
        try:
            if kind == EMAIL:
                text = contact_normalize_email(email=text)
            elif kind == PHONE:
                text = contact_normalize_phone(phone=text)
            elif len(text) > EXTERNAL_ID_MAX_LENGTH:
                raise ValidationError(f"at most {EXTERNAL_ID_MAX_LENGTH} characters")
        except ValidationError as error:
            raise PostbackInvalid(f"{name} is not a valid {kind}: {error.messages[0]}") from error
        person.append((kind, text))
    return tuple(person)


def postback_parse(
    *,
    query_string: str,
    body: str,
    content_type: str,
    received_at: datetime,
    parameter_aliases: Mapping[str, Any],
    status_map: Mapping[str, Any],
    default_currency: str,
) -> ParsedPostback:
    """Everything a conversion needs, or `PostbackInvalid` naming the first bad field."""
    return postback_parse_fields(
        fields=request_fields(query_string=query_string, body=body, content_type=content_type),
        names=field_names(parameter_aliases),
        received_at=received_at,
        status_map=status_map,
        default_currency=default_currency,
    )


def postback_parse_fields(
    *,
    fields: Mapping[str, Any],
    names: FieldNames,
    received_at: datetime,
    status_map: Mapping[str, Any],
    default_currency: str,
) -> ParsedPostback:
    """`postback_parse` of fields already read (`request_fields`), with the network's
    `field_names`."""
    statuses = status_map if isinstance(status_map, Mapping) else {}
    click_id = _identifier(fields, CLICK_ID, names)
    conversion_id = _identifier(fields, CONVERSION_ID, names) or None
    # A click id names the person already; only without one is the person read.
    person = () if click_id else _person(fields, names)
    offer_id = _offer_id(fields, names)
    if not click_id and not conversion_id and not person:
        raise PostbackInvalid(
            "click_id is required (or email, phone or external_id with offer_id, or a "
            "conversion_id of a known conversion)"
        )
    if person and offer_id is None:
        raise PostbackInvalid("offer_id is required with email, phone or external_id")
    return ParsedPostback(
        click_id=click_id,
        conversion_id=conversion_id,
        payout=_payout(fields, names),
        currency=_currency(fields, names, default_currency),
        status=_status(fields, names, statuses),
        occurred_at=_occurred_at(fields, names, received_at),
        offer_id=offer_id,
        person=person,
    )


def without_secrets(
    *, query_string: str, body: str, content_type: str, network_aliases: Mapping[str, Any]
) -> tuple[str, str]:
    """The query string and body as stored: every token parameter taken out."""
    secret_names = frozenset(aliases_for(TOKEN, network_aliases))
    return (
        query_without(query_string, secret_names),
        body_without(body=body, content_type=content_type, names=secret_names),
    )


def query_without(query_string: str, names: AbstractSet[str]) -> str:
    """The query string without the parameters in `names`; the others exactly as sent.

    A parameter's name is decoded as `parse_qsl` decodes it, so whatever `request_fields`
    would read under one of `names` is left out.
    """
    parts = query_string.split("&")
    kept = [part for part in parts if _query_name(part) not in names]
    return query_string if len(kept) == len(parts) else "&".join(kept)


def _query_name(part: str) -> str:
    name = part.partition("=")[0]
    # Most names are plain; `unquote_plus` costs more than the rest of the loop.
    return unquote_plus(name) if "%" in name or "+" in name else name


def body_without(*, body: str, content_type: str, names: AbstractSet[str]) -> str:
    """A JSON or form body without the parameters in `names` (anything else as sent)."""
    if not body.strip():
        return body
    if _is_json(content_type, body):
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict) and names & decoded.keys():
            return json.dumps({k: v for k, v in decoded.items() if k not in names})
    elif _is_form(content_type):
        pairs = parse_qsl(body, keep_blank_values=True)
        if any(name in names for name, _ in pairs):
            return urlencode([(n, v) for n, v in pairs if n not in names])
    return body
