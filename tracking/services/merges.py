"""One person, one contact: merging contacts, recording conflicts, resolving them.

A merge keeps the oldest contact and moves everything that points at the others
onto it (every foreign key to Contact, found through the model graph, so the
conversions of `attribution` follow without `tracking` importing it). The merged
rows are deleted; `ContactMerge` keeps their ids and identifiers, so a request
naming them reaches the survivor. Callers hold the contacts' row locks
(`SELECT ... FOR UPDATE`, in id order) for the whole merge: two merges of
overlapping contacts run one after the other, never interleaved.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, models, transaction
from django.utils import timezone

from config.enqueue import task_enqueue_on_commit
from config.logging import request_id_var
from tracking.models import (
    Contact,
    ContactAlias,
    ContactConflict,
    ContactMerge,
    IdentitySource,
)

logger = logging.getLogger(__name__)

KINDS = ("phone", "email", "external_id")
# Clicks carry no foreign key (partitioned table): the drainer copies a message's contact
# in its own short transaction, which a merge does not wait for. A sweep this much later
# moves what such a transaction wrote under a merged id.
SWEEP_AFTER_SECONDS = 10


class ContactsConflict(Exception):
    """The contacts cannot be one person: `kinds` have two different values among them."""

    def __init__(self, kinds: Sequence[str]) -> None:
        super().__init__(f"different values of {', '.join(kinds)}")
        self.kinds = list(kinds)


@dataclass(frozen=True)
class LockedContact:
    id: int
    phone: str | None
    email: str | None
    external_id: str | None
    created_at: datetime

    def value(self, kind: str) -> str | None:
        value: str | None = getattr(self, kind)
        return value


def contacts_lock(*, contact_ids: Iterable[int]) -> list[LockedContact]:
    """Lock the contacts that still exist, in id order (so two lockers never deadlock)."""
    ids = sorted(set(contact_ids))
    if not ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, phone, email, external_id, created_at FROM {Contact._meta.db_table} "  # noqa: S608
            "WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE",
            [ids],
        )
        return [LockedContact(*row) for row in cursor.fetchall()]


def contact_survivor_id(*, contact_id: int) -> int | None:
    """The contact this id names now: itself, the contact it was merged into, or None."""
    if Contact.objects.filter(pk=contact_id).exists():
        return contact_id
    return (
        ContactMerge.objects.filter(merged_contact_id=contact_id)
        .values_list("survivor_id", flat=True)
        .first()
    )


def contact_merged_ids(*, contact_id: int) -> list[int]:
    return sorted(
        ContactMerge.objects.filter(survivor_id=contact_id).values_list(
            "merged_contact_id", flat=True
        )
    )


def conflicting_kinds(
    contacts: Sequence[LockedContact], extra: Mapping[str, str] | None = None
) -> list[str]:
    """Kinds with two different values among these contacts (and `extra` new values)."""
    kinds = []
    for kind in KINDS:
        values = {contact.value(kind) for contact in contacts} - {None}
        if extra and kind in extra:
            values.add(extra[kind])
        if len(values) > 1:
            kinds.append(kind)
    return kinds


def _referencing_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, foreign key attname) that points at Contact, in any app."""
    fields = []
    for relation in Contact._meta.related_objects:
        if relation.many_to_many or relation.one_to_one:
            continue
        field = relation.field
        fields.append((field.model, field.attname))
    return sorted(fields, key=lambda pair: (pair[0]._meta.label, pair[1]))


def _repoint(*, survivor_id: int, merged_ids: Sequence[int]) -> dict[str, int]:
    """Every row naming a merged contact names the survivor instead; counts per model."""
    moved: dict[str, int] = {}
    for model, attname in _referencing_fields():
        count = model._default_manager.filter(**{f"{attname}__in": merged_ids}).update(
            **{attname: survivor_id}
        )
        if count:
            moved[model._meta.model_name or model.__name__] = count
    return moved


def contacts_merge_sweep(*, survivor_id: int, merged_ids: Sequence[int]) -> int:
    """Rows written under a merged contact's id after its merge moved (safe to repeat)."""
    with transaction.atomic():
        # The survivor may have been merged into another contact since.
        current = contact_survivor_id(contact_id=survivor_id)
        if current is None:
            return 0
        locked = contacts_lock(contact_ids=[current])
        if not locked:
            return 0
        moved = _repoint(survivor_id=current, merged_ids=merged_ids)
    if moved:
        logger.info("merge sweep moved rows onto contact %s: %s", survivor_id, moved)
    return sum(moved.values())


def contacts_merge_locked(
    *,
    contacts: Sequence[LockedContact],
    source: str,
    requested_by_id: int | None = None,
    allow_conflicts: bool = False,
) -> int:
    """Merge locked contacts into the oldest; the survivor's id.

    Without `allow_conflicts` a kind with two values raises ContactsConflict and
    nothing changes. With it (an operator's decision) the survivor keeps its own
    value and the others' become aliases that still find it.
    """
    if not contacts:
        raise ValueError("no contacts to merge")
    ordered = sorted(contacts, key=lambda contact: (contact.created_at, contact.id))
    survivor, merged = ordered[0], ordered[1:]
    if not merged:
        return survivor.id
    kinds = conflicting_kinds(ordered)
    if kinds and not allow_conflicts:
        raise ContactsConflict(kinds)
    values = {kind: survivor.value(kind) for kind in KINDS}
    aliases: list[tuple[str, str]] = []
    for contact in merged:
        for kind in KINDS:
            value = contact.value(kind)
            if value is None or value == values[kind]:
                continue
            if values[kind] is None:
                values[kind] = value
            else:
                aliases.append((kind, value))
    merged_ids = [contact.id for contact in merged]
    moved = _repoint(survivor_id=survivor.id, merged_ids=merged_ids)
    with connection.cursor() as cursor:
        for merged_id in merged_ids:
            cursor.execute(
                f"UPDATE {ContactConflict._meta.db_table} "  # noqa: S608
                "SET other_contact_ids = array_remove("
                "array_replace(other_contact_ids, %s::bigint, %s::bigint), contact_id)"
                " WHERE %s::bigint = ANY(other_contact_ids)",
                [merged_id, survivor.id, merged_id],
            )
    request_id = request_id_var.get() or ""
    ContactMerge.objects.bulk_create(
        [
            ContactMerge(
                survivor_id=survivor.id,
                merged_contact_id=contact.id,
                merged_created_at=contact.created_at,
                identifiers={kind: contact.value(kind) for kind in KINDS if contact.value(kind)},
                source=source,
                requested_by_id=requested_by_id,
                request_id=request_id[:64],
                moved=moved,
            )
            for contact in merged
        ]
    )
    # The merged rows go first: their identifiers are unique and move to the survivor.
    Contact.objects.filter(pk__in=merged_ids).delete()
    Contact.objects.filter(pk=survivor.id).update(**values)
    if aliases:
        ContactAlias.objects.bulk_create(
            [
                ContactAlias(kind=kind, value=value, contact_id=survivor.id)
                for kind, value in aliases
            ],
            ignore_conflicts=True,
        )
    task_enqueue_on_commit(
        name="tracking.contact_merge_sweep",
        args=[survivor.id, merged_ids],
        countdown=SWEEP_AFTER_SECONDS,
    )
    # Ids only: identifiers are personal data.
    logger.info(
        "contacts merged into %s: %s (%s)", survivor.id, merged_ids, source, extra={"moved": moved}
    )
    return survivor.id


def contact_merge(
    *,
    contact_ids: Sequence[int],
    source: str = IdentitySource.OPERATOR,
    requested_by_id: int | None = None,
    allow_conflicts: bool = False,
) -> int:
    """Merge these contacts (ids of merged contacts follow their merge) into the oldest."""
    with transaction.atomic():
        current = {contact_survivor_id(contact_id=contact_id) for contact_id in contact_ids}
        current.discard(None)
        locked = contacts_lock(contact_ids=[cid for cid in current if cid is not None])
        if not locked:
            raise Contact.DoesNotExist("none of these contacts exists")
        return contacts_merge_locked(
            contacts=locked,
            source=source,
            requested_by_id=requested_by_id,
            allow_conflicts=allow_conflicts,
        )


def contact_conflict_record(
    *,
    contact_id: int,
    other_contact_ids: Iterable[int],
    identifiers: Mapping[str, str],
    kinds: Sequence[str],
    channel: str,
    source: str,
) -> ContactConflict:
    """The open conflict of these identifiers at this contact (one, however often they come)."""
    others = sorted(set(other_contact_ids) - {contact_id})
    existing = (
        ContactConflict.objects.filter(
            contact_id=contact_id,
            identifiers=dict(identifiers),
            status=ContactConflict.Status.OPEN,
        )
        .order_by("pk")
        .first()
    )
    if existing is not None:
        return existing
    conflict = ContactConflict.objects.create(
        contact_id=contact_id,
        other_contact_ids=others,
        identifiers=dict(identifiers),
        kinds=list(kinds),
        channel=channel,
        source=source,
        request_id=(request_id_var.get() or "")[:64],
    )
    logger.info("contact conflict %s recorded at contact %s (%s)", conflict.pk, contact_id, kinds)
    return conflict


def _adopt_identifiers(contact_id: int, identifiers: Mapping[str, str]) -> None:
    """Identifiers of a resolved conflict that no contact holds become the survivor's:
    as its own where it has none of that kind, else as aliases."""
    contact = Contact.objects.select_for_update().get(pk=contact_id)
    for kind, value in identifiers.items():
        if kind not in KINDS or not value:
            continue
        held = (
            Contact.objects.filter(**{kind: value}).exists()
            or ContactAlias.objects.filter(kind=kind, value=value).exists()
        )
        if held:
            continue
        if getattr(contact, kind) is None:
            Contact.objects.filter(pk=contact_id).update(**{kind: value})
            setattr(contact, kind, value)
        else:
            ContactAlias.objects.create(kind=kind, value=value, contact_id=contact_id)


def contact_conflict_resolve(
    *, conflict_id: int, resolution: str, resolved_by_id: int | None = None
) -> ContactConflict:
    """An operator's decision: `merged` (one person after all) or `kept_apart`.

    Merging keeps the oldest contact; its own identifiers win and the others'
    conflicting ones become aliases. Resolving an already resolved conflict changes nothing.
    """
    if resolution not in (ContactConflict.Status.MERGED, ContactConflict.Status.KEPT_APART):
        raise ValueError(f"unknown resolution {resolution!r}")
    with transaction.atomic():
        conflict = ContactConflict.objects.select_for_update().get(pk=conflict_id)
        if conflict.status != ContactConflict.Status.OPEN:
            return conflict
        if resolution == ContactConflict.Status.MERGED:
            survivor_id = contact_merge(
                contact_ids=[conflict.contact_id, *conflict.other_contact_ids],
                source=IdentitySource.OPERATOR,
                requested_by_id=resolved_by_id,
                allow_conflicts=True,
            )
            _adopt_identifiers(survivor_id, conflict.identifiers)
            conflict.refresh_from_db()
        conflict.status = resolution
        conflict.resolved_by_id = resolved_by_id
        conflict.resolved_at = timezone.now()
        conflict.save(update_fields=["status", "resolved_by", "resolved_at"])
    return conflict
