"""Contacts: normalising their identifiers and finding or creating them in sets.

A contact is known by any of an E.164 phone, a lower-cased email and an
external id, each unique when set. Several identifiers given together name one
person: `contact_resolve_bulk` merges them, fills in identifiers a known contact
was missing, and refuses identifiers that already belong to two different people.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, cast

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection
from django.utils import timezone

from tracking.models import Contact

EXTERNAL_ID_MAX_LENGTH = 128
EMAIL_MAX_LENGTH = 254


@dataclass(frozen=True, slots=True)
class ContactSpec:
    """Identifiers as a caller gave them; `contact_spec_normalize` cleans them."""

    phone: str | None = None
    email: str | None = None
    external_id: str | None = None


_PHONE_UNPARSABLE = "Enter a phone number in international format, e.g. +12015550123."
_PHONE_INVALID = "This phone number does not exist."


_E164_SHAPE = re.compile(r"\+([1-9][0-9]{2,19})")


def _phone_parse_e164_shape(phone: str) -> phonenumbers.PhoneNumber | None:
    """What `phonenumbers.parse(phone, None)` returns for a string that is already
    `+` and ASCII digits, without its general-purpose scanning (two thirds of the cost
    of a bulk upload's phones); None when this shortcut cannot be sure.

    It follows `parse` step by step: the country code is the first 1-3 digits that are
    one (codes are prefix-free); the rest is the national number, leading zeros kept the
    way `parse` keeps them. `parse` may strip a national prefix from that rest, so when
    the region's prefix pattern matches, `parse` itself decides.
    """
    match = _E164_SHAPE.fullmatch(phone)
    if match is None:
        return None
    digits = match[1]
    for length in (1, 2, 3):
        country_code = int(digits[:length])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[length:]
    if not 2 <= len(national) <= 17:  # parse's _MIN_LENGTH_FOR_NSN and _MAX_LENGTH_FOR_NSN
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, phonenumbers.region_code_for_country_code(country_code)
    )
    if metadata is None:
        return None
    prefix = metadata.national_prefix_for_parsing
    if prefix and re.match(prefix, national):
        return None
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
    if len(national) > 1 and national[0] == "0":
        number.italian_leading_zero = True
        zeros = 1
        while zeros < len(national) - 1 and national[zeros] == "0":
            zeros += 1
        if zeros != 1:
            number.number_of_leading_zeros = zeros
    return number


@functools.lru_cache(maxsize=65_536)
def _phone_e164(phone: str) -> tuple[str | None, str | None]:
    """(E.164, None) or (None, error). Cached: parsing is the dearest step of a bulk
    upload, the answer depends only on the string, and uploads repeat numbers."""
    parsed = _phone_parse_e164_shape(phone)
    if parsed is None:
        try:
            parsed = phonenumbers.parse(phone, None)
        except phonenumbers.NumberParseException:
            return None, _PHONE_UNPARSABLE
    if not phonenumbers.is_valid_number(parsed):
        return None, _PHONE_INVALID
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), None


def contact_normalize_phone(*, phone: str) -> str:
    """`phone` in E.164, or a ValidationError. Numbers must carry their country code."""
    normalized, error = _phone_e164(phone)
    if normalized is None:
        raise ValidationError(error or _PHONE_INVALID, code="invalid")
    return normalized


def contact_normalize_email(*, email: str) -> str:
    normalized = email.strip().lower()
    if len(normalized) > EMAIL_MAX_LENGTH:
        raise ValidationError(f"At most {EMAIL_MAX_LENGTH} characters.", code="max_length")
    validate_email(normalized)
    return normalized


def contact_spec_normalize(*, spec: ContactSpec) -> ContactSpec:
    """The same identifiers, cleaned.

    Errors about one identifier are keyed by its name; a spec with no identifier
    at all raises a ValidationError without keys.
    """
    errors: dict[str, list[ValidationError]] = {}
    for name in ("phone", "email", "external_id"):
        if "\x00" in str(getattr(spec, name) or ""):
            errors[name] = [ValidationError("Null characters are not allowed.", code="null")]
    if errors:
        raise ValidationError(errors)
    phone = email = external_id = None
    if spec.phone not in (None, ""):
        try:
            phone = contact_normalize_phone(phone=str(spec.phone))
        except ValidationError as error:
            errors["phone"] = error.error_list
    if spec.email not in (None, ""):
        try:
            email = contact_normalize_email(email=str(spec.email))
        except ValidationError as error:
            errors["email"] = error.error_list
    if spec.external_id not in (None, ""):
        external_id = str(spec.external_id).strip()
        if len(external_id) > EXTERNAL_ID_MAX_LENGTH:
            errors["external_id"] = [
                ValidationError(f"At most {EXTERNAL_ID_MAX_LENGTH} characters.", code="max_length")
            ]
    if errors:
        raise ValidationError(errors)
    if phone is None and email is None and not external_id:
        raise ValidationError("Give a phone, an email or an external_id.", code="required")
    return ContactSpec(phone=phone, email=email, external_id=external_id or None)


def _keys(spec: ContactSpec) -> list[tuple[str, str]]:
    keys = []
    if spec.phone:
        keys.append(("phone", spec.phone))
    if spec.email:
        keys.append(("email", spec.email))
    if spec.external_id:
        keys.append(("external_id", spec.external_id))
    return keys


class _Groups:
    """Union-find over identifiers: identifiers given together name one contact."""

    def __init__(self) -> None:
        self.parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(self, key: tuple[str, str]) -> tuple[str, str]:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, keys: Sequence[tuple[str, str]]) -> None:
        roots = [self.find(key) for key in keys]
        for root in roots[1:]:
            self.parent[root] = roots[0]


class _Row(NamedTuple):
    id: int
    phone: str | None
    email: str | None
    external_id: str | None


def _by_key(rows: Iterable[_Row]) -> dict[tuple[str, str], _Row]:
    found: dict[tuple[str, str], _Row] = {}
    for row in rows:
        if row.phone:
            found["phone", row.phone] = row
        if row.email:
            found["email", row.email] = row
        if row.external_id:
            found["external_id", row.external_id] = row
    return found


def _existing_by_key(keys: set[tuple[str, str]]) -> dict[tuple[str, str], _Row]:
    """One select with an array per identifier (not thousands of `IN` placeholders)."""
    if not keys:
        return {}
    by_kind: dict[str, list[str]] = {"phone": [], "email": [], "external_id": []}
    for kind, value in keys:
        by_kind[kind].append(value)
    table = Contact._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, phone, email, external_id FROM {table} "  # noqa: S608
            "WHERE phone = ANY(%s::text[]) OR email = ANY(%s::text[])"
            " OR external_id = ANY(%s::text[])",
            [by_kind["phone"], by_kind["email"], by_kind["external_id"]],
        )
        return _by_key(map(_Row._make, cursor.fetchall()))


def _insert_ignoring_conflicts(rows: list[dict[str, str | None]]) -> dict[tuple[str, str], _Row]:
    """One `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING` for all new contacts,
    returning the rows it inserted: a person inserted meanwhile by a concurrent call is
    not among them and is found by the select that follows."""
    table = Contact._meta.db_table
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (phone, email, external_id, created_at) "  # noqa: S608
            "SELECT phone, email, external_id, %s FROM unnest(%s::text[], %s::text[], %s::text[])"
            " AS new (phone, email, external_id) ON CONFLICT DO NOTHING"
            " RETURNING id, phone, email, external_id",
            [
                now,
                [row["phone"] for row in rows],
                [row["email"] for row in rows],
                [row["external_id"] for row in rows],
            ],
        )
        return _by_key(map(_Row._make, cursor.fetchall()))


def contact_resolve_bulk(*, specs: Sequence[ContactSpec]) -> list[int | ValidationError]:
    """The contact id for each (normalised) spec, creating contacts as needed.

    Set-based: one select of the contacts already known, one insert of the new
    ones (conflicts ignored, so a concurrent insert of the same person is not an
    error), one update filling identifiers known contacts lacked, one select to
    map every identifier to its id. A spec whose identifiers belong to different
    contacts gets a ValidationError in its place instead of an id.
    """
    groups = _Groups()
    all_keys: set[tuple[str, str]] = set()
    for spec in specs:
        keys = _keys(spec)
        all_keys.update(keys)
        groups.union(keys)
    existing = _existing_by_key(all_keys)
    rows_by_id = {row.id: row for row in existing.values()}
    for row in rows_by_id.values():
        groups.union(
            _keys(ContactSpec(phone=row.phone, email=row.email, external_id=row.external_id))
        )

    # Each group becomes one contact: what it is known by, and the known row if any.
    members: dict[tuple[str, str], dict[str, set[str]]] = {}
    known: dict[tuple[str, str], set[int]] = {}
    for key in all_keys | set(existing):
        root = groups.find(key)
        members.setdefault(root, {"phone": set(), "email": set(), "external_id": set()})[
            key[0]
        ].add(key[1])
        if key in existing:
            known.setdefault(root, set()).add(existing[key].id)

    conflicts: dict[tuple[str, str], str] = {}
    to_create: list[dict[str, str | None]] = []
    to_fill: list[Contact] = []
    for root, identifiers in members.items():
        contact_ids = known.get(root, set())
        if len(contact_ids) > 1:
            conflicts[root] = "These identifiers belong to different contacts."
            continue
        if any(len(values) > 1 for values in identifiers.values()):
            kind = next(kind for kind, values in identifiers.items() if len(values) > 1)
            conflicts[root] = f"One contact cannot have two different values of {kind}."
            continue
        values = {kind: next(iter(found), None) for kind, found in identifiers.items()}
        if not contact_ids:
            to_create.append(values)
            continue
        row = rows_by_id[next(iter(contact_ids))]
        if any(value and getattr(row, kind) is None for kind, value in values.items()):
            to_fill.append(Contact(id=row.id, **values))

    # Rows this transaction inserted hold their identifiers until it ends; every other
    # identifier (known rows, filled rows, conflicting inserts) is looked up afresh.
    inserted = _insert_ignoring_conflicts(to_create) if to_create else {}
    if to_fill:
        Contact.objects.bulk_update(to_fill, ["phone", "email", "external_id"], batch_size=5000)

    ids_by_key = {key: row.id for key, row in inserted.items()}
    ids_by_key.update(
        (key, row.id) for key, row in _existing_by_key(all_keys - inserted.keys()).items()
    )
    resolved: list[int | ValidationError] = []
    for spec in specs:
        keys = _keys(spec)
        root = groups.find(keys[0])
        if root in conflicts:
            resolved.append(ValidationError(conflicts[root], code="conflict"))
            continue
        ids = {ids_by_key.get(key) for key in keys}
        if len(ids) != 1 or None in ids:
            # Another transaction took one of these identifiers for another person
            # between our insert and our select.
            resolved.append(
                ValidationError("These identifiers belong to different contacts.", "conflict")
            )
            continue
        resolved.append(cast(int, ids.pop()))
    return resolved
