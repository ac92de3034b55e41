"""Moving clicks from the spool files into PostgreSQL.

A pass runs in as few transactions as its bytes allow (one, unless a backlog is over
`CLICK_DRAIN_BATCH_BYTES`), each of which (1) takes a per-host advisory lock, so two
drainers never read the same bytes, (2) reads the offsets of every file, (3) inserts the
complete lines after them, of every file at once, idempotent on click_id, and (4) moves
the offsets. The clicks and the offsets commit together: a drainer killed anywhere either
committed both or neither, so a restart neither loses nor repeats a click.

A file no writer holds any more is removed once drained to its end; a partial
line at the end of such a file was never acknowledged with a 302 and is dropped.

A full pass publishes the time it began as this node's drain point
(`ClickSpoolWatermark`): a worker on another node, which cannot read this spool, waits
with a conversion by person until every node's drain point has passed its time.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import orjson
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction

from tracking.models import ClickSpoolWatermark
from tracking.services.clicks import (
    SPOOL_LINE_FIELDS,
    SPOOL_LINE_VERSION,
    SpooledClick,
    clicks_insert_spooled,
    unix_time_valid,
)
from tracking.services.rows import collector_paused
from tracking.services.spool import (
    SPOOL_PREFIX,
    SPOOL_SUFFIX,
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


@dataclass
class _SpoolFile:
    path: Path
    # Decided before reading, so that everything the writer wrote is in what we read.
    finished: bool
    # A live file is read up to its size at the start of the pass, not chased while its
    # writer keeps appending: the other files' clicks would wait for a busy one to pause.
    size: int
    done: bool = False
    gone: bool = False
    offset: int = 0


@dataclass
class _Batch:
    """What one transaction read: counted into the report only once it committed."""

    lines: int = 0
    inserted: int = 0
    rejected: list[tuple[Path, bytes, str]] = field(default_factory=list)


def _lock_key() -> int:
    return zlib.crc32(f"creditflow.drain_clicks:{spool_host()}".encode())


def _crash_if(point: str) -> None:
    if os.environ.get(CRASH_ENV) == point:
        logger.warning("crashing on purpose at %s", point)
        os._exit(CRASH_EXIT_CODE)


_FIELD_COUNT = len(SPOOL_LINE_FIELDS)


def _parse_lines(lines: list[bytes]) -> list[object]:
    """Every line decoded as JSON (None where it is not): one decode of the whole chunk
    when every line is a JSON array, as the redirect writes them, else line by line."""
    # orjson: a third of the standard library's time for the same records (a line's NaN, a
    # number past 64 bits or a lone surrogate, which it refuses, make the line unreadable,
    # as their click would be refused anyway).
    if all(line[:1] == b"[" and line[-1:] == b"]" for line in lines):
        try:
            records: list[object] = orjson.loads(b"[" + b",".join(lines) + b"]")
        except orjson.JSONDecodeError:
            pass
        else:
            if len(records) == len(lines):
                return records
    parsed: list[object] = []
    for line in lines:
        try:
            parsed.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            parsed.append(None)
    return parsed


def _spooled_click(record: object) -> SpooledClick | None:
    # Unpacked by position (SPOOL_LINE_FIELDS): a dict per line cost more than the decode.
    if (
        not isinstance(record, list)
        or len(record) != _FIELD_COUNT
        or record[0] != SPOOL_LINE_VERSION
    ):
        return None
    _, click_id, unix_time, link_id, ip, user_agent, referrer, method, purpose = record
    try:
        moment = float(unix_time)
        if not unix_time_valid(moment):
            return None
        # By position, in SpooledClick's order: a third less than by keyword.
        return SpooledClick(
            str(click_id),
            moment,
            int(link_id),
            str(ip) if ip else None,
            _wsgi_text(str(user_agent or "")),
            _wsgi_text(str(referrer)) if referrer else "",
            str(method or "GET"),
            str(purpose or ""),
        )
    except (ValueError, TypeError, OverflowError):
        return None


# Most clicks of a batch share a handful of user agents.
@lru_cache(maxsize=4096)
def _wsgi_text(value: str) -> str:
    """WSGI hands headers over as latin-1; most clients really sent UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def clicks_drain(*, directory: Path) -> DrainReport:
    """One pass over every spool file in `directory`; a full pass publishes how far it got."""
    report = DrainReport()
    # Before the listing: every line written before this moment is in a file listed below
    # and below the size each file is read to.
    started = time.time()
    files = []
    for path in spool_files(directory=directory):
        finished = spool_file_is_finished(path=path)
        try:
            files.append(_SpoolFile(path=path, finished=finished, size=path.stat().st_size))
        except FileNotFoundError:
            continue  # removed by another drainer between our listing and now
    first = True
    while first or any(not spool_file.done for spool_file in files):
        before = [(spool_file.done, spool_file.gone, spool_file.offset) for spool_file in files]
        try:
            batch = _drain_batch(files=files, directory=directory, careful=False, first=first)
        except (DataError, IntegrityError):
            # One bad row must not block the spool: the same lines again, click by click,
            # the bad ones kept aside.
            logger.exception("batch refused; inserting click by click")
            for spool_file, (done, gone, offset) in zip(files, before, strict=True):
                spool_file.done, spool_file.gone, spool_file.offset = done, gone, offset
            batch = _drain_batch(files=files, directory=directory, careful=True, first=first)
        if batch is None:
            report.busy = True
            return report
        _crash_if("after_commit")
        first = False
        report.lines += batch.lines
        report.inserted += batch.inserted
        report.rejected += len(batch.rejected)
    removed = []
    for spool_file in files:
        if spool_file.finished and spool_file.done and not spool_file.gone:
            _remove_drained(spool_file)
            removed.append(spool_file.path.name)
    if removed:
        _offsets_delete(removed)
        report.files_removed += len(removed)
    for temporary in spool_stale_temporary_files(directory=directory, older_than_seconds=600):
        temporary.unlink(missing_ok=True)
    _watermark_publish(drained_before=started)
    return report


def clicks_drain_retire(*, directory: Path) -> bool:
    """Withdraw this node's published drain point when its spool holds no file at all
    (no click waiting, no writer with a file open): workers stop waiting on a node that
    is gone. With files left, it stays, and by-person conversions wait for them."""
    if spool_files(directory=directory):
        return False
    ClickSpoolWatermark.objects.filter(host=spool_host()).delete()
    return True


def _watermark_publish(*, drained_before: float) -> None:
    # Plain overwrite: after a failover two drainers of one node may publish out of order,
    # and an older point only makes workers wait longer.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tracking_clickspoolwatermark (host, drained_before, updated_at)"
            " VALUES (%s, %s, now())"
            " ON CONFLICT (host) DO UPDATE"
            " SET drained_before = EXCLUDED.drained_before, updated_at = EXCLUDED.updated_at",
            [spool_host(), datetime.fromtimestamp(drained_before, tz=UTC)],
        )


def _drain_batch(
    *, files: list[_SpoolFile], directory: Path, careful: bool, first: bool
) -> _Batch | None:
    """One transaction: up to CLICK_DRAIN_BATCH_BYTES of new lines from the files not yet
    done, inserted at once; None when another drainer holds the lock."""
    batch = _Batch()
    # A batch's few thousand parsed lines form no cycle: the collector's passes over them
    # (gen 0, every 700 allocations) found nothing and cost up to a tenth of the drainer's time.
    with collector_paused(), transaction.atomic():
        if not _take_lock():
            return None
        offsets = _offsets_read([spool_file.path.name for spool_file in files])
        if first:
            _forget_removed_files(directory=directory, offsets=offsets)
        # At least a byte: spool_read then still returns the next whole line.
        budget = max(1, settings.CLICK_DRAIN_BATCH_BYTES)
        clicks: list[SpooledClick] = []
        sources: list[tuple[Path, bytes]] = []
        moved: dict[str, int] = {}
        for spool_file in files:
            if spool_file.done or budget <= 0:
                continue
            offset = offsets.get(spool_file.path.name, 0)
            spool_file.offset = offset
            try:
                chunk = spool_read(path=spool_file.path, offset=offset, max_bytes=budget)
            except FileNotFoundError:
                # Removed by another drainer between our listing and our read.
                spool_file.done = spool_file.gone = True
                continue
            if not chunk.lines:
                spool_file.done = True
                continue
            budget -= chunk.end_offset - offset
            moved[spool_file.path.name] = chunk.end_offset
            spool_file.offset = chunk.end_offset
            if not spool_file.finished and chunk.end_offset >= spool_file.size:
                spool_file.done = True
            for line, record in zip(chunk.lines, _parse_lines(chunk.lines), strict=True):
                click = _spooled_click(record)
                if click is None:
                    batch.rejected.append((spool_file.path, line, "unreadable line"))
                else:
                    clicks.append(click)
                    sources.append((spool_file.path, line))
            batch.lines += len(chunk.lines)
        if careful:
            batch.inserted = _insert_one_by_one(clicks=clicks, sources=sources, batch=batch)
        else:
            batch.inserted = clicks_insert_spooled(clicks=clicks)
        _crash_if("after_insert")
        for path, line, reason in batch.rejected:
            _reject(path=path, lines=[line], reason=reason)
        if moved:
            _offsets_set(moved)
    return batch


def _insert_one_by_one(
    *, clicks: list[SpooledClick], sources: list[tuple[Path, bytes]], batch: _Batch
) -> int:
    inserted = 0
    for click, (path, _line) in zip(clicks, sources, strict=True):
        try:
            with transaction.atomic():
                inserted += clicks_insert_spooled(clicks=[click])
        except (DataError, IntegrityError) as error:
            batch.rejected.append(
                (path, json.dumps({"click_id": click.click_id}).encode(), str(error))
            )
    return inserted


def _remove_drained(spool_file: _SpoolFile) -> None:
    try:
        size = spool_file.path.stat().st_size
    except FileNotFoundError:
        return
    if size > spool_file.offset:
        logger.warning(
            "dropping %d bytes of an unfinished line at the end of %s",
            size - spool_file.offset,
            spool_file.path,
        )
    spool_file.path.unlink(missing_ok=True)


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


def _offsets_read(names: list[str]) -> dict[str, int]:
    """The offsets of these files, and of every file of this host that has one."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT file_name, "offset" FROM tracking_clickspooloffset'
            " WHERE file_name = ANY(%s) OR starts_with(file_name, %s)",
            [names, _own_prefix()],
        )
        return dict(cursor.fetchall())


def _offsets_set(offsets: dict[str, int]) -> None:
    # One statement for every file of the batch.
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO tracking_clickspooloffset (file_name, "offset", updated_at)'
            " SELECT file_name, new_offset, now()"
            " FROM unnest(%s::text[], %s::bigint[]) AS moved(file_name, new_offset)"
            " ON CONFLICT (file_name) DO UPDATE"
            ' SET "offset" = EXCLUDED."offset", updated_at = EXCLUDED.updated_at',
            [list(offsets), list(offsets.values())],
        )


def _offsets_delete(names: list[str]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tracking_clickspooloffset WHERE file_name = ANY(%s)", [names])


def _own_prefix() -> str:
    return f"{SPOOL_PREFIX}{spool_host()}-"


def _forget_removed_files(*, directory: Path, offsets: dict[str, int]) -> None:
    """Offsets of this host's files that are gone (a crash between the unlink and the
    delete). Looked for on disk, under the lock: a file another drainer made and drained
    since our listing keeps its offset."""
    # The whole name, not the prefix: host "web" must not take "web-2"'s files for its own.
    own = re.compile(rf"{re.escape(_own_prefix())}[0-9]+-[^-]+-[0-9]+{re.escape(SPOOL_SUFFIX)}")
    stale = [name for name in offsets if own.fullmatch(name) and not (directory / name).exists()]
    if stale:
        _offsets_delete(stale)
