"""Reads of the tracking app that are more than a one-line filter."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db import DatabaseError
from django.db.models import Min, OuterRef, Q, QuerySet

from tracking.models import (
    Click,
    ClickSpoolOffset,
    ClickSpoolWatermark,
    Contact,
    ContactAlias,
    ContactMerge,
    Link,
)
from tracking.services.spool import spool_files, spool_host


def link_target_get(*, code: str) -> dict[str, Any] | None:
    """What the redirect needs to answer for `code`, in one query; None when unknown."""
    row = (
        Link.objects.filter(code=code)
        .values(
            "id",
            "message_id",
            "message__offer_id",
            "message__channel",
            "message__campaign__slug",
            "message__creative__slug",
            "message__offer__destination_url",
            "message__offer__status",
            "message__offer__forward_query_string",
        )
        .first()
    )
    return dict(row) if row is not None else None


def link_ids_by_code(*, codes: list[str]) -> dict[str, int]:
    return dict(Link.objects.filter(code__in=codes).values_list("code", "id"))


def click_list(*, message_id: int | None = None, code: str | None = None) -> QuerySet[Click]:
    """Newest first. Filters combine; none given lists every click."""
    clicks = Click.objects.all()
    if message_id is not None:
        # Through the message's links: the (link, ip, occurred_at) index serves this, so
        # tracking_click needs no index of its own on message_id.
        clicks = clicks.filter(
            link_id__in=Link.objects.filter(message_id=message_id).values("id"),
            message_id=message_id,
        )
    if code is not None:
        clicks = clicks.filter(link__code=code)
    return clicks.select_related("link").order_by("-occurred_at", "-id")


def click_get(*, click_id: str) -> Click | None:
    return Click.objects.select_related("link").filter(click_id=click_id).first()


@dataclass(frozen=True)
class SpoolBacklog:
    files: int
    pending_bytes: int
    # Time since the last write to the stalest file that still has undrained bytes: a
    # lower bound on the age of the oldest click not yet in PostgreSQL.
    oldest_pending_seconds: float


def click_spool_backlog_get(*, directory: Path) -> SpoolBacklog:
    """What the drainer has not moved into PostgreSQL yet: spool files and their bytes
    past the drained offset (the whole file when the database cannot be read)."""
    paths = spool_files(directory=directory)
    try:
        offsets = _drained_offsets(paths)
    except DatabaseError:
        offsets = {}
    now = time.time()
    pending_bytes = 0
    oldest = 0.0
    files = 0
    for path in paths:
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        files += 1
        pending = max(0, status.st_size - offsets.get(path.name, 0))
        if pending:
            pending_bytes += pending
            oldest = max(oldest, now - status.st_mtime)
    return SpoolBacklog(files=files, pending_bytes=pending_bytes, oldest_pending_seconds=oldest)


def _drained_offsets(paths: list[Path]) -> dict[str, int]:
    """How far the drainer has read each of these spool files (absent: not at all)."""
    if not paths:
        return {}
    return dict(
        ClickSpoolOffset.objects.filter(file_name__in=[path.name for path in paths]).values_list(
            "file_name", "offset"
        )
    )


# A spool file's lines are in the order the redirect wrote them; threads of one process
# may interleave by a moment, so a first pending line this much after a time still counts.
SPOOL_ORDER_SLACK_SECONDS = 1.0
# Where `tracking.services.clicks.SPOOL_LINE_FIELDS` puts the click's time (that module
# reads this one, so it cannot be imported here; a test holds the two together).
SPOOL_LINE_UNIX_TIME = 2


def click_spool_pending_since(*, directory: Path) -> datetime | None:
    """The time of the oldest click still in the spool (not yet drained into PostgreSQL),
    less the slack above; None when everything is drained. A click at or after this time may
    not be visible yet; every one before it is. A first pending line that cannot be read (a
    line being written) counts as pending since the file's first byte was written.

    `directory` is this node's spool, read line by line. Every other node's spool counts as
    pending from its drainer's last published drain point on (it cannot be read from here)."""
    oldest = _other_nodes_drained_before()
    paths = spool_files(directory=directory)
    if paths:
        oldest = _oldest_pending_line(paths, oldest)
    if oldest is None:
        return None
    return datetime.fromtimestamp(max(0.0, oldest - SPOOL_ORDER_SLACK_SECONDS), tz=UTC)


def _other_nodes_drained_before() -> float | None:
    drained_before = (
        ClickSpoolWatermark.objects.exclude(host=spool_host())
        .aggregate(oldest=Min("drained_before"))
        .get("oldest")
    )
    return drained_before.timestamp() if drained_before is not None else None


def _oldest_pending_line(paths: list[Path], oldest: float | None) -> float | None:
    offsets = _drained_offsets(paths)
    for path in paths:
        try:
            with path.open("rb") as file:
                file.seek(offsets.get(path.name, 0))
                line = file.readline(64 * 1024)
        except FileNotFoundError:
            continue
        if not line:
            continue
        try:
            moment = float(json.loads(line)[SPOOL_LINE_UNIX_TIME])
        except (ValueError, TypeError, IndexError, KeyError):
            moment = 0.0
        oldest = moment if oldest is None else min(oldest, moment)
    return oldest


def contact_list(
    *, phone: str | None = None, email: str | None = None, external_id: str | None = None
) -> QuerySet[Contact]:
    """Contacts with the ids merged into them (`merged_ids`), oldest first. Each identifier
    given (already normalised) must name the contact, as its own or as an alias."""
    contacts = Contact.objects.annotate(
        merged_ids=ArraySubquery(
            ContactMerge.objects.filter(survivor_id=OuterRef("pk"))
            .order_by("merged_contact_id")
            .values("merged_contact_id")
        )
    ).order_by("pk")
    for kind, value in (("phone", phone), ("email", email), ("external_id", external_id)):
        if value is not None:
            contacts = contacts.filter(
                Q(**{kind: value})
                | Q(pk__in=ContactAlias.objects.filter(kind=kind, value=value).values("contact_id"))
            )
    return contacts
