"""Moving clicks from the spool files into PostgreSQL.

Each batch runs in one transaction that (1) takes a per-host advisory lock, so two
drainers never read the same bytes, (2) reads this file's offset, (3) inserts the
complete lines after it, idempotent on click_id, and (4) moves the offset. The
clicks and the offset commit together: a drainer killed anywhere either committed
both or neither, so a restart neither loses nor repeats a click.

A file no writer holds any more is removed once drained to its end; a partial
line at the end of such a file was never acknowledged with a 302 and is dropped.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction

from tracking.models import ClickSpoolOffset
from tracking.services.clicks import (
    SPOOL_LINE_FIELDS,
    SPOOL_LINE_VERSION,
    ClickInput,
    clicks_insert,
)
from tracking.services.spool import (
    spool_file_is_finished,
    spool_files,
    spool_host,
    spool_read,
    spool_stale_temporary_files,
)

logger = logging.getLogger(__name__)

REJECTED_DIRECTORY = "rejected"
# Tests kill the drainer at a chosen point: "after_insert" (the insert ran, nothing
# committed) or "after_commit" (clicks and offset committed, file not yet cleaned up).
CRASH_ENV = "CREDITFLOW_DRAIN_CRASH_AT"
CRASH_EXIT_CODE = 70


@dataclass
class DrainReport:
    lines: int = 0
    inserted: int = 0
    rejected: int = 0
    files_removed: int = 0
    busy: bool = False
    errors: list[str] = field(default_factory=list)


def _lock_key() -> int:
    return zlib.crc32(f"creditflow.drain_clicks:{spool_host()}".encode())


def _crash_if(point: str) -> None:
    if os.environ.get(CRASH_ENV) == point:
        logger.warning("crashing on purpose at %s", point)
        os._exit(CRASH_EXIT_CODE)


def _parse_line(line: bytes) -> ClickInput | None:
    # Unpacked by position (SPOOL_LINE_FIELDS): a dict per line cost more than the decode.
    try:
        record = json.loads(line)
        if (
            not isinstance(record, list)
            or len(record) != _FIELD_COUNT
            or record[0] != SPOOL_LINE_VERSION
        ):
            return None
        _, click_id, unix_time, link_id, ip, user_agent, referrer, method, purpose = record
        return ClickInput(
            click_id=str(click_id),
            occurred_at=datetime.fromtimestamp(float(unix_time), tz=UTC),
            link_id=int(link_id),
            ip=ip or None,
            user_agent=_wsgi_text(str(user_agent or "")),
            referrer=_wsgi_text(str(referrer)) if referrer else "",
            method=str(method or "GET"),
            purpose=str(purpose or ""),
        )
    except (ValueError, KeyError, TypeError, IndexError):
        return None


_FIELD_COUNT = len(SPOOL_LINE_FIELDS)


# Most clicks of a batch share a handful of user agents.
@lru_cache(maxsize=4096)
def _wsgi_text(value: str) -> str:
    """WSGI hands headers over as latin-1; most clients really sent UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def clicks_drain(*, directory: Path) -> DrainReport:
    """One pass over every spool file in `directory`."""
    report = DrainReport()
    files = spool_files(directory=directory)
    for path in files:
        try:
            drained = _drain_file(path=path, report=report)
        except FileNotFoundError:
            # Removed by another drainer between our listing and our read.
            continue
        if not drained:
            report.busy = True
            return report
    with transaction.atomic():
        if _take_lock():
            _forget_removed_files(present={path.name for path in files})
    for temporary in spool_stale_temporary_files(directory=directory, older_than_seconds=600):
        temporary.unlink(missing_ok=True)
    return report


def _drain_file(*, path: Path, report: DrainReport) -> bool:
    # Decided before reading, so that everything the writer wrote is in what we read.
    finished = spool_file_is_finished(path=path)
    # A live file is read up to its size now, not chased while its writer keeps appending:
    # the other files' clicks (another web process) would wait for a busy one to pause.
    size_now = path.stat().st_size
    while True:
        with transaction.atomic():
            if not _take_lock():
                return False
            offset = _offset_of(path.name)
            chunk = spool_read(path=path, offset=offset, max_bytes=settings.CLICK_DRAIN_BATCH_BYTES)
            if not chunk.lines:
                break
            clicks: list[ClickInput] = []
            for line in chunk.lines:
                click = _parse_line(line)
                if click is None:
                    _reject(path=path, lines=[line], reason="unreadable line")
                    report.rejected += 1
                else:
                    clicks.append(click)
            report.lines += len(chunk.lines)
            report.inserted += _insert(clicks=clicks, path=path, report=report)
            _crash_if("after_insert")
            _offset_set(file_name=path.name, offset=chunk.end_offset)
        _crash_if("after_commit")
        if not finished and chunk.end_offset >= size_now:
            return True
    if finished:
        size = path.stat().st_size
        if size > offset:
            logger.warning(
                "dropping %d bytes of an unfinished line at the end of %s", size - offset, path
            )
        path.unlink(missing_ok=True)
        ClickSpoolOffset.objects.filter(file_name=path.name).delete()
        report.files_removed += 1
    return True


def _insert(*, clicks: list[ClickInput], path: Path, report: DrainReport) -> int:
    try:
        with transaction.atomic():
            return clicks_insert(clicks=clicks)
    except (DataError, IntegrityError):
        # One bad row must not block the spool: insert one by one, keep the rest aside.
        logger.exception("batch from %s refused; inserting click by click", path.name)
    inserted = 0
    for click in clicks:
        try:
            with transaction.atomic():
                inserted += clicks_insert(clicks=[click])
        except (DataError, IntegrityError) as error:
            report.rejected += 1
            _reject(
                path=path,
                lines=[json.dumps({"click_id": click.click_id}).encode()],
                reason=str(error),
            )
    return inserted


def _reject(*, path: Path, lines: list[bytes], reason: str) -> None:
    """Keep what could not be inserted next to the spool, for an operator to look at."""
    directory = path.parent / REJECTED_DIRECTORY
    directory.mkdir(exist_ok=True)
    with (directory / path.name).open("ab") as rejected:
        for line in lines:
            rejected.write(line.rstrip(b"\n") + b"\n")
    logger.error("rejected %d spool line(s) of %s: %s", len(lines), path.name, reason)


def _take_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_key()])
        row = cursor.fetchone()
    return bool(row and row[0])


def _offset_of(file_name: str) -> int:
    return (
        ClickSpoolOffset.objects.filter(file_name=file_name)
        .values_list("offset", flat=True)
        .first()
        or 0
    )


def _offset_set(*, file_name: str, offset: int) -> None:
    # One statement, where update_or_create took four round trips (savepoint, select for
    # update, update, release) in every batch.
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO tracking_clickspooloffset (file_name, "offset", updated_at)'
            " VALUES (%s, %s, now())"
            " ON CONFLICT (file_name) DO UPDATE"
            ' SET "offset" = EXCLUDED."offset", updated_at = EXCLUDED.updated_at',
            [file_name, offset],
        )


def _forget_removed_files(*, present: set[str]) -> None:
    """Offsets of files removed after a crash between the unlink and the delete."""
    prefix = f"clicks-{spool_host()}-"
    stale = ClickSpoolOffset.objects.filter(file_name__startswith=prefix).exclude(
        file_name__in=present
    )
    stale.delete()
