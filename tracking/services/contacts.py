"""Contacts: normalising their identifiers and finding or creating them in sets.

A contact is known by any of an E.164 phone, a lower-cased email and an
external id, each unique when set. Several identifiers given together name one
person: `contact_resolve_bulk` fills in identifiers a known contact was missing
and merges the contacts they name (see `merges`). Identifiers that cannot be one
person (a kind with two different values) are never merged: the message goes to
the contact its own channel's address names and the conflict is recorded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from tracking.models import Contact, ContactAlias, IdentitySource
from tracking.services.merges import (
    conflicting_kinds,
    contact_conflict_record,
    contacts_lock,
    contacts_merge_locked,
)
from tracking.services.phones import PHONE_INVALID, phone_e164
from tracking.services.rows import PLAIN_INSERT_MIN_ROWS, array_cursor

EXTERNAL_ID_MAX_LENGTH = 128
EMAIL_MAX_LENGTH = 254


@dataclass(frozen=True, slots=True)
class ContactSpec:
    """Identifiers as a caller gave them; `contact_spec_normalize` cleans them."""

    phone: str | None = None
    email: str | None = None
    external_id: str | None = None


def contact_normalize_phone(*, phone: str) -> str:
    """`phone` in E.164, or a ValidationError. Numbers must carry their country code."""
    normalized, error = phone_e164(phone)
    if normalized is None:
        raise ValidationError(error or PHONE_INVALID, code="invalid")
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
    external_id = external_id or None
    if (phone, email, external_id) == (spec.phone, spec.email, spec.external_id):
        return spec  # clean already: a frozen dataclass costs more to build than to compare
    return ContactSpec(phone=phone, email=email, external_id=external_id)


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
        """The root of `key`'s group; an identifier never united with another is its own."""
        parent = self.parent
        root = key
        while (up := parent.get(root, root)) != root:
            root = up
        while key != root:
            parent[key], key = root, parent[key]
        return root

    def union(self, keys: Sequence[tuple[str, str]]) -> None:
        roots = [self.find(key) for key in keys]
        for root in roots[1:]:
            if root != roots[0]:
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


def _lookup(keys: set[tuple[str, str]]) -> tuple[dict[tuple[str, str], int], dict[int, _Row]]:
    """Which contact each identifier names (its own or an alias), and those contacts' rows.

    One select with an array per identifier (not thousands of `IN` placeholders).
    """
    if not keys:
        return {}, {}
    by_kind: dict[str, list[str]] = {"phone": [], "email": [], "external_id": []}
    for kind, value in keys:
        by_kind[kind].append(value)
    table = Contact._meta.db_table
    aliases = ContactAlias._meta.db_table
    with array_cursor() as cursor:
        cursor.execute(
            # A UNION, not an OR of a subquery: each half keeps its own index scans.
            f"SELECT id, phone, email, external_id FROM {table} "  # noqa: S608
            "WHERE phone = ANY(%b::text[]) OR email = ANY(%b::text[])"
            " OR external_id = ANY(%b::text[])"
            f" UNION SELECT c.id, c.phone, c.email, c.external_id FROM {table} c"
            f" JOIN {aliases} a ON a.contact_id = c.id WHERE"
            " (a.kind = 'phone' AND a.value = ANY(%b::text[]))"
            " OR (a.kind = 'email' AND a.value = ANY(%b::text[]))"
            " OR (a.kind = 'external_id' AND a.value = ANY(%b::text[]))",
            [by_kind["phone"], by_kind["email"], by_kind["external_id"]] * 2,
        )
        rows = {row.id: row for row in map(_Row._make, cursor.fetchall())}
    found = {key: row.id for key, row in _by_key(rows.values()).items() if key in keys}
    if len(found) < len(keys) and ContactAlias.objects.exists():
        for kind, value, contact_id in ContactAlias.objects.filter(
            contact_id__in=list(rows)
        ).values_list("kind", "value", "contact_id"):
            if (kind, value) in keys:
                found.setdefault((kind, value), contact_id)
    return found, rows


def _insert_ignoring_conflicts(rows: list[dict[str, str | None]]) -> dict[tuple[str, str], int]:
    """One `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING` for all new contacts;
    the id of each identifier it inserted. A person inserted meanwhile by a concurrent call
    is not among them and is found by a lookup that follows."""
    return _insert(rows, ignoring_conflicts=True)


def _insert_new(rows: list[dict[str, str | None]]) -> dict[tuple[str, str], int]:
    """`_insert_ignoring_conflicts`, trying a plain insert first (in a savepoint) for a
    large set: the one that may skip a conflict probes every unique index before it writes
    a row and confirms each row in the WAL, about a third more work for ten thousand
    contacts. A concurrent call that took one of the identifiers sends it down the
    ignoring way."""
    if len(rows) >= PLAIN_INSERT_MIN_ROWS:
        try:
            with transaction.atomic():
                return _insert(rows, ignoring_conflicts=False)
        except IntegrityError:
            pass
    return _insert(rows, ignoring_conflicts=True)


def _insert(
    rows: list[dict[str, str | None]], *, ignoring_conflicts: bool
) -> dict[tuple[str, str], int]:
    table = Contact._meta.db_table
    with array_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (phone, email, external_id, created_at) "  # noqa: S608
            "SELECT phone, email, external_id, %s FROM unnest(%b::text[], %b::text[], %b::text[])"
            " AS new (phone, email, external_id)"
            f"{' ON CONFLICT DO NOTHING' if ignoring_conflicts else ''}"
            " RETURNING id, phone, email, external_id",
            [
                timezone.now(),
                [row["phone"] for row in rows],
                [row["email"] for row in rows],
                [row["external_id"] for row in rows],
            ],
        )
        inserted = cursor.fetchall()
    ids: dict[tuple[str, str], int] = {}
    for contact_id, phone, email, external_id in inserted:
        if phone:
            ids["phone", phone] = contact_id
        if email:
            ids["email", email] = contact_id
        if external_id:
            ids["external_id", external_id] = contact_id
    return ids


@dataclass
class ContactResolution:
    """The contact of each spec, in order, and the conflicts recorded (spec index -> id)."""

    ids: list[int]
    conflicts: dict[int, int] = field(default_factory=dict)


# Channels whose address names the contact a conflicting message goes to.
CHANNEL_ADDRESS = {"sms": "phone", "email": "email"}
RESOLVE_ATTEMPTS = 20


def contact_resolve_bulk(
    *,
    specs: Sequence[ContactSpec],
    channels: Sequence[str] | None = None,
    source: str = IdentitySource.MESSAGE,
    requested_by_id: int | None = None,
) -> ContactResolution:
    """The contact id for each (normalised) spec, creating and merging contacts as needed.

    Call inside a transaction. Set-based for the usual case (identifiers that name
    at most one contact and agree with it): one lookup, one insert of the new
    contacts (conflicts ignored, so a concurrent insert of the same person is not
    an error; it answers their ids), one update filling identifiers known contacts
    lacked, one lookup again for every identifier but those just inserted. Specs that
    merge contacts or conflict, or that a concurrent call raced, are then resolved one
    by one (`contact_resolve_one`).
    """
    spec_keys = [_keys(spec) for spec in specs]
    groups = _Groups()
    for keys in spec_keys:
        if len(keys) > 1:
            groups.union(keys)
    all_keys = {key for keys in spec_keys for key in keys}
    found, rows = _lookup(all_keys)

    # Each group of identifiers given together: the contacts they name, the values they add.
    members: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for key in all_keys:
        members[groups.find(key)].append(key)
    slow_roots: set[tuple[str, str]] = set()
    to_create: list[dict[str, str | None]] = []
    to_fill: list[Contact] = []
    for root, keys in members.items():
        if len(keys) == 1 and root not in found:  # the usual case: one new identifier
            to_create.append({kind: root[1] if kind == root[0] else None for kind in _KINDS})
            continue
        contact_ids = {found[key] for key in keys if key in found}
        new_keys = [key for key in keys if key not in found]
        adding = dict(new_keys)
        if len(contact_ids) > 1 or len(adding) < len(new_keys):  # or two values of a kind
            slow_roots.add(root)
            continue
        if not contact_ids:
            to_create.append({kind: adding.get(kind) for kind in _KINDS})
            continue
        if not adding:
            continue
        row = rows[next(iter(contact_ids))]
        if any(getattr(row, kind) is not None for kind in adding):
            slow_roots.add(root)  # a new value of a kind the contact has: a conflict
        else:
            to_fill.append(
                Contact(
                    id=row.id,
                    phone=adding.get("phone", row.phone),
                    email=adding.get("email", row.email),
                    external_id=adding.get("external_id", row.external_id),
                )
            )

    ids_by_key = _insert_new(to_create) if to_create else {}
    if to_fill:
        try:
            with transaction.atomic():
                Contact.objects.bulk_update(
                    to_fill, ["phone", "email", "external_id"], batch_size=5000
                )
        except IntegrityError:
            # A concurrent call took one of these identifiers for another contact.
            slow_roots.update(members)

    # Contacts this transaction inserted are its own until it commits; the others could
    # have been merged by a concurrent call since the first lookup.
    again = {
        key for key in all_keys if key not in ids_by_key and groups.find(key) not in slow_roots
    }
    if again:
        ids_by_key.update(_lookup(again)[0])
    resolution = ContactResolution(ids=[0] * len(specs))
    slow: list[int] = []
    for index, keys in enumerate(spec_keys):
        if len(keys) == 1 and not slow_roots:
            contact_id = ids_by_key.get(keys[0])
            if contact_id is None:
                slow.append(index)
            else:
                resolution.ids[index] = contact_id
            continue
        ids = {ids_by_key.get(key) for key in keys}
        if (slow_roots and groups.find(keys[0]) in slow_roots) or len(ids) != 1 or None in ids:
            slow.append(index)
        else:
            resolution.ids[index] = ids.pop() or 0
    for index in slow:
        contact_id, conflict_id = contact_resolve_one(
            spec=specs[index],
            channel=channels[index] if channels is not None else "",
            source=source,
            requested_by_id=requested_by_id,
        )
        resolution.ids[index] = contact_id
        if conflict_id is not None:
            resolution.conflicts[index] = conflict_id
    return resolution


def contact_resolve_one(
    *,
    spec: ContactSpec,
    channel: str = "",
    source: str = IdentitySource.MESSAGE,
    requested_by_id: int | None = None,
) -> tuple[int, int | None]:
    """(contact id, conflict id or None) for one normalised spec. Call inside a transaction.

    The contacts its identifiers name are locked (id order) before anything is decided;
    if a concurrent merge moved an identifier meanwhile, the lookup runs again.
    """
    keys = _keys(spec)
    given = dict(keys)
    for _ in range(RESOLVE_ATTEMPTS):
        found, _rows = _lookup(set(keys))
        locked = contacts_lock(contact_ids=found.values())
        if {contact.id for contact in locked} != set(found.values()):
            continue  # one was merged away after the lookup
        again, _rows = _lookup(set(keys))
        if again != found:
            continue
        unnamed = {kind: value for kind, value in keys if (kind, value) not in found}
        kinds = conflicting_kinds(locked, unnamed)
        if kinds:
            target = _conflict_target(keys, found, channel)
            if target is None:
                continue
            conflict = contact_conflict_record(
                contact_id=target,
                other_contact_ids=[contact.id for contact in locked],
                identifiers=given,
                kinds=kinds,
                channel=channel,
                source=source,
            )
            return target, conflict.pk
        if not locked:
            inserted = _insert_ignoring_conflicts([{kind: given.get(kind) for kind in _KINDS}])
            if inserted:
                return next(iter(inserted.values())), None
            continue  # a concurrent call created them first
        survivor = contacts_merge_locked(
            contacts=locked, source=source, requested_by_id=requested_by_id
        )
        if unnamed and not _fill(survivor, unnamed):
            continue
        return survivor, None
    raise RuntimeError("contact identifiers kept changing under concurrent merges")


_KINDS = ("phone", "email", "external_id")


def _fill(contact_id: int, values: dict[str, str]) -> bool:
    """Give a contact identifiers it lacked; False when another contact took one meanwhile."""
    try:
        with transaction.atomic():
            Contact.objects.filter(pk=contact_id).update(**values)
    except IntegrityError:
        return False
    return True


def _conflict_target(
    keys: list[tuple[str, str]], found: dict[tuple[str, str], int], channel: str
) -> int | None:
    """The contact a conflicting message goes to: the one its channel's address names
    (created with that address alone when new), else the first identifier's."""
    address = CHANNEL_ADDRESS.get(channel)
    at_address = [key for key in keys if key[0] == address]
    if not at_address:
        named = [found[key] for key in keys if key in found]
        if named:
            return named[0]
        at_address = keys
    key = at_address[0]
    if key in found:
        return found[key]
    inserted = _insert_ignoring_conflicts(
        [{name: key[1] if name == key[0] else None for name in _KINDS}]
    )
    return next(iter(inserted.values())) if inserted else None


def contact_find(*, kind: str, value: str) -> Contact | None:
    """The contact an identifier names (its own or an alias kept from a merge)."""
    found, _rows = _lookup({(kind, value)})
    contact_id = found.get((kind, value))
    return Contact.objects.filter(pk=contact_id).first() if contact_id else None


def contact_ids_by_identifier(*, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The contact each (kind, normalised value) names, its own or an alias; unknown ones
    are left out. One query for the lot."""
    found, _rows = _lookup(keys)
    return found
