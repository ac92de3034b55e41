"""Running a CSV import: its rows stored as postbacks and decided, chunk by chunk.

Each chunk is one transaction: the rows are parsed once (as the intake parses a
postback), decided together by `postbacks_decide` (the postback workers' own decision:
the same credit, payout and status rules), and inserted with their outcome. A row whose
click is not visible yet is stored waiting and enqueued, as a postback would be. Progress
(`rows_done`) moves with each chunk; counts and errors come from the stored rows.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus

from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from attribution import metrics
from attribution.models import ConversionImport, Network, Postback
from attribution.services.batch import StoredPostback
from attribution.services.imports import FORM, REJECTED_HEADER, ImportRow, import_rows
from attribution.services.parsing import (
    FieldNames,
    ParsedPostback,
    PostbackInvalid,
    field_names,
    postback_parse_fields,
)
from attribution.services.processing import (
    postback_work,
    postbacks_decide,
    postbacks_retry_on_commit,
)
from attribution.services.wakeup import postback_wake_worker

logger = logging.getLogger(__name__)

# Rows stored and decided (and their progress shown) per transaction.
CHUNK_ROWS = 2000
# Errors kept on the import (the count of rejected rows is always exact).
ERRORS_KEPT = 1000
RECEIVED = Postback.Status.RECEIVED.value
PROCESSED = Postback.Status.PROCESSED.value
INVALID = Postback.Status.INVALID.value


def conversion_import_run(*, import_id: int) -> ConversionImport | None:
    """Store and decide every row of an import; safe to run again (a row is stored once,
    and a finished import is left as it is)."""
    claimed = ConversionImport.objects.filter(
        pk=import_id, status__in=[ConversionImport.Status.QUEUED, ConversionImport.Status.RUNNING]
    ).update(status=ConversionImport.Status.RUNNING, started_at=timezone.now())
    conversion_import = ConversionImport.objects.select_related("network").get(pk=import_id)
    if not claimed:
        return conversion_import
    network = conversion_import.network
    names = field_names(network.parameter_aliases or {})
    chunk: list[ImportRow] = []
    for row in import_rows(text=conversion_import.body):
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            _store(conversion_import, network, names, chunk)
            chunk = []
    if chunk:
        _store(conversion_import, network, names, chunk)
    _finish(conversion_import)
    conversion_import.refresh_from_db()
    logger.info(
        "conversion import %s done: %s accepted, %s rejected",
        import_id,
        conversion_import.accepted,
        conversion_import.rejected,
    )
    return conversion_import


# The columns of a stored row, and their types in the one INSERT of a chunk.
_ROW_COLUMNS = (
    ("id", "bigint"),
    ("body", "text"),
    ("headers", "jsonb"),
    ("status", "varchar"),
    ("reason", "varchar"),
    ("conversion_id", "bigint"),
    ("processed_at", "timestamptz"),
    ("last_enqueued_at", "timestamptz"),
    ("import_row", "integer"),
)
# First key of the two-int advisory lock: one run at a time stores an import's rows.
ADVISORY_LOCK_NAMESPACE = 0x696D7072


@dataclass(frozen=True)
class _ReadRow:
    """A row as stored: its postback id, form body, and what it parsed to (or why not)."""

    row: ImportRow
    pk: int
    body: str
    parsed: ParsedPostback | None
    reason: str


def _store(
    conversion_import: ConversionImport, network: Network, names: FieldNames, rows: list[ImportRow]
) -> None:
    """A chunk of rows stored as postbacks and decided as the postback workers decide them
    (`postbacks_decide`), in one transaction: each row is parsed once, and stored with its
    outcome rather than stored, read back and updated."""
    try:
        counted = _store_decided(conversion_import, network, names, rows)
    except (DataError, IntegrityError):
        # As a processing batch does: the workers decide these rows one by one instead,
        # and mark the one that cannot be stored as failed.
        logger.warning("import %s: a chunk failed; left to the workers", conversion_import.pk)
        _store_waiting(conversion_import, network, names, rows)
        return
    # Committed: only now do the decisions count in /metrics.
    for name, count in counted.items():
        metrics.postback_processed(name, count=count)


def _store_decided(
    conversion_import: ConversionImport, network: Network, names: FieldNames, rows: list[ImportRow]
) -> Counter[str]:
    now = timezone.now()
    with transaction.atomic():
        read = _read_new_rows(conversion_import, network, names, rows, now)
        works = [
            postback_work(
                postback=StoredPostback(item.pk, network.pk, now, "", item.body, FORM),
                parsed=item.parsed,
                network_id=network.pk,
            )
            for item in read
            if item.parsed is not None
        ]
        invalid: dict[int, str] = {}
        decided = postbacks_decide(works=works, invalid=invalid, claimed=[], now=now)
        done = {work.postback.pk: work for work in decided.done}
        stored = []
        stamp = now.isoformat()
        for item in read:
            document = _document(conversion_import, item, stamp)
            if item.pk in invalid:
                document.update(status=INVALID, reason=invalid[item.pk][:500], processed_at=stamp)
            elif item.pk in done:
                document.update(
                    status=PROCESSED,
                    reason=done[item.pk].note[:500],
                    conversion_id=done[item.pk].conversion_id,
                    processed_at=stamp,
                )
            stored.append(document)
        _insert(conversion_import, network, stored, now)
        if decided.deferred:
            # A click not visible yet: these wait for the postback workers, as a postback would.
            postbacks_retry_on_commit(postback_ids=[work.postback.pk for work in decided.deferred])
    return decided.counted


def _store_waiting(
    conversion_import: ConversionImport, network: Network, names: FieldNames, rows: list[ImportRow]
) -> None:
    """The chunk stored undecided, for the postback workers."""
    now = timezone.now()
    with transaction.atomic():
        read = _read_new_rows(conversion_import, network, names, rows, now)
        _insert(
            conversion_import,
            network,
            [_document(conversion_import, item, now.isoformat()) for item in read],
            now,
        )
        waiting = [item.pk for item in read if item.parsed is not None]
        if waiting:
            # One wake-up per chunk: a processing task takes a whole batch of waiting rows
            # and wakes the next one itself while more are waiting.
            transaction.on_commit(lambda: postback_wake_worker(postback_id=max(waiting)))


def _read_new_rows(
    conversion_import: ConversionImport,
    network: Network,
    names: FieldNames,
    rows: list[ImportRow],
    now: datetime,
) -> list[_ReadRow]:
    """The rows of the chunk not stored yet (by an earlier run), parsed, with their ids."""
    table = Postback._meta.db_table
    with connection.cursor() as cursor:
        # A second run of the same import (a redelivered task) waits here for the first's
        # chunk, then finds its rows stored.
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, %s)",
            [ADVISORY_LOCK_NAMESPACE, conversion_import.pk],
        )
        cursor.execute(
            f"SELECT import_row FROM {table} "  # noqa: S608 (constants only)
            "WHERE conversion_import_id = %s AND import_row BETWEEN %s AND %s",
            [conversion_import.pk, rows[0].number, rows[-1].number],
        )
        stored = {number for (number,) in cursor.fetchall()}
        new_rows = [row for row in rows if row.number not in stored]
        if not new_rows:
            return []
        # The ids now, so the decisions (events, conversions) can name their postbacks
        # before the rows are inserted with their outcome.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, len(new_rows)],
        )
        ids = sorted(pk for (pk,) in cursor.fetchall())
    read = []
    quoted: dict[str, str] = {}
    for row, pk in zip(new_rows, ids, strict=True):
        parsed = None
        if not row.fields:
            reason = "row: not a CSV row of the header's columns"
        else:
            reason = ""
            try:
                # The fields as the intake reads them from the stored body (`request_fields`).
                parsed = postback_parse_fields(
                    fields=row.fields,
                    names=names,
                    received_at=now,
                    status_map=network.status_map,
                    default_currency=network.currency,
                )
            except PostbackInvalid as error:
                reason = str(error)
        read.append(_ReadRow(row, pk, _form_body(row.fields, quoted), parsed, reason))
    return read


# What `quote_plus` leaves as it is: most cells (ids, amounts) need no quoting at all.
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")


def _form_body(fields: dict[str, str], quoted: dict[str, str]) -> str:
    """`urlencode(fields)`, without quoting what needs none (a cell costs a regex match);
    `quoted` keeps the column names quoted once per chunk."""
    parts = []
    for name, value in fields.items():
        quoted_name = quoted.get(name)
        if quoted_name is None:
            quoted_name = quoted[name] = quote_plus(name)
        parts.append(f"{quoted_name}={value if _UNQUOTED.fullmatch(value) else quote_plus(value)}")
    return "&".join(parts)


def _document(conversion_import: ConversionImport, item: _ReadRow, stamp: str) -> dict[str, Any]:
    """A row as stored: refused by the import, or waiting for a worker."""
    headers: dict[str, str] = {"X-Conversion-Import": str(conversion_import.pk)}
    if item.reason:
        headers[REJECTED_HEADER] = "true"
    return {
        "id": item.pk,
        "body": item.body,
        "headers": headers,
        "status": INVALID if item.reason else RECEIVED,
        "reason": item.reason[:500],
        "conversion_id": None,
        "processed_at": stamp if item.reason else None,
        "last_enqueued_at": None if item.reason else stamp,
        "import_row": item.row.number,
    }


def _insert(
    conversion_import: ConversionImport,
    network: Network,
    stored: list[dict[str, Any]],
    now: datetime,
) -> None:
    if stored:
        names = ", ".join(name for name, _ in _ROW_COLUMNS)
        types = ", ".join(f"{name} {sql_type}" for name, sql_type in _ROW_COLUMNS)
        # One statement for the chunk (a bulk_create builds a model and a parameter per
        # cell, which cost more than the rows' own parsing).
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {Postback._meta.db_table}
                       (network_id, received_at, method, query_string, content_type,
                        source_ip, attempts, conversion_import_id, {names})
                SELECT %s, %s, 'CSV', '', %s, NULL, 0, %s, {names}
                  FROM jsonb_to_recordset(%s::jsonb) AS row({types})
                """,  # noqa: S608 (constants only)
                [network.pk, now, FORM, conversion_import.pk, json.dumps(stored)],
            )
        last = max(item["import_row"] for item in stored)
        ConversionImport.objects.filter(pk=conversion_import.pk, rows_done__lt=last).update(
            rows_done=last
        )


def _finish(conversion_import: ConversionImport) -> None:
    """The counts and errors from the stored rows themselves (right however often it ran)."""
    rows = Postback.objects.filter(conversion_import=conversion_import)
    # Refused by the import itself; a row the workers later find invalid (a conversion id
    # naming no conversion) was accepted here and shows on its postback.
    rejected = rows.filter(headers__has_key=REJECTED_HEADER)
    errors = [
        {"row": number, "error": reason}
        for number, reason in rejected.order_by("import_row").values_list("import_row", "reason")[
            :ERRORS_KEPT
        ]
    ]
    rejected_count = rejected.count()
    ConversionImport.objects.filter(pk=conversion_import.pk).update(
        status=ConversionImport.Status.DONE,
        rows_done=conversion_import.rows,
        accepted=conversion_import.rows - rejected_count,
        rejected=rejected_count,
        errors=errors,
        finished_at=timezone.now(),
    )
