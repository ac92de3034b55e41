"""CSV imports of conversions: each row stored and processed exactly as the network's postback.

`conversion_import_create` checks the file at once (text, CSV, a header naming postback
fields) and stores it whole, or refuses it and stores nothing. A worker then runs
`conversion_import_run`: each data row becomes a stored postback (form-encoded, as a
network would have sent it), checked by the same parser as the intake; rows that cannot
become a conversion are kept too, marked invalid with the reason, and listed as errors.
Valid rows are processed by the postback workers, so a row counts once however often the
file is imported (conversions are unique per network and conversion id, else click id,
else person and offer).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from attribution.models import ConversionImport, Network, Postback
from attribution.services.parsing import (
    STANDARD_ALIASES,
    TOKEN,
    PostbackInvalid,
    aliases_for,
    postback_parse,
)
from attribution.services.wakeup import postback_wake_worker
from config.enqueue import task_enqueue_on_commit

logger = logging.getLogger(__name__)

RUN_TASK = "attribution.run_conversion_import"
FORM = "application/x-www-form-urlencoded"
# Rows stored (and their progress shown) per transaction.
CHUNK_ROWS = 2000
# Errors kept on the import (the count of rejected rows is always exact).
ERRORS_KEPT = 1000
REJECTED_HEADER = "X-Import-Rejected"


class ImportRefused(ValueError):
    """The upload is not a CSV of conversions; `str()` says why. Nothing was stored."""

    def __init__(self, message: str, *, field: str = "file") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ImportRow:
    number: int
    fields: dict[str, str]


def known_columns(network: Network) -> set[str]:
    """Every name a column may have: the postback fields, their aliases, the network's own."""
    names: set[str] = set()
    for field in STANDARD_ALIASES:
        if field != TOKEN:
            names.update(aliases_for(field, network.parameter_aliases or {}))
    return names


def _text(data: bytes) -> str:
    if not data.strip():
        raise ImportRefused("The file is empty.")
    if b"\x00" in data:
        raise ImportRefused("The file is binary, not a CSV.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportRefused(
            f"The file is not UTF-8 text (byte {error.start} cannot be read)."
        ) from error


def _rows(text: str) -> tuple[list[str], Iterator[list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration as error:
        raise ImportRefused("The file is empty.") from error
    except csv.Error as error:
        raise ImportRefused(f"The header row is not CSV: {error}.") from error
    return [name.strip() for name in header], reader


def import_rows(*, text: str) -> Iterator[ImportRow]:
    """The data rows of a checked CSV, numbered from 1, blank lines skipped; a line that is
    not CSV or has more cells than the header comes with `fields` empty."""
    header, reader = _rows(text)
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            number += 1
            yield ImportRow(number, {})
            continue
        if not any(cell.strip() for cell in cells):
            continue
        number += 1
        if len(cells) > len(header):
            yield ImportRow(number, {})
            continue
        yield ImportRow(
            number,
            {name: value for name, value in zip(header, cells, strict=False) if name and value},
        )


def conversion_import_check(*, network: Network, data: bytes) -> tuple[str, int]:
    """The text and the number of data rows of an upload, or ImportRefused saying why."""
    limit = settings.CONVERSION_IMPORT_MAX_BYTES
    if len(data) > limit:
        raise ImportRefused(f"The file is larger than {limit} bytes (CONVERSION_IMPORT_MAX_BYTES).")
    text = _text(data)
    header, _ = _rows(text)
    if not known_columns(network).intersection(header):
        raise ImportRefused(
            "The header row names no postback field (e.g. click_id, conversion_id, payout, "
            "email, offer_id)."
        )
    rows = sum(1 for _ in import_rows(text=text))
    if rows == 0:
        raise ImportRefused("The file has a header row but no conversions.")
    if rows > settings.CONVERSION_IMPORT_MAX_ROWS:
        raise ImportRefused(
            f"The file has {rows} rows; at most {settings.CONVERSION_IMPORT_MAX_ROWS} "
            "(CONVERSION_IMPORT_MAX_ROWS)."
        )
    return text, rows


def conversion_import_create(
    *,
    network_slug: str,
    data: bytes,
    file_name: str = "",
    requested_by_id: int | None = None,
) -> ConversionImport:
    """Check and store an upload, and queue its run; ImportRefused stores nothing."""
    network = Network.objects.filter(slug=network_slug).first() if network_slug else None
    if network is None:
        raise ImportRefused(
            f"No network with slug {network_slug[:64]!r}." if network_slug else "Name the network.",
            field="network",
        )
    text, rows = conversion_import_check(network=network, data=data)
    with transaction.atomic():
        conversion_import = ConversionImport.objects.create(
            network=network,
            file_name=file_name[:255],
            body=text,
            rows=rows,
            requested_by_id=requested_by_id,
        )
        task_enqueue_on_commit(name=RUN_TASK, args=[conversion_import.pk])
    logger.info("conversion import %s queued: %s rows", conversion_import.pk, rows)
    return conversion_import


def conversion_import_preview(*, network: Network, text: str, limit: int = 5) -> dict[str, Any]:
    """What each column maps to (a postback field, or nothing) and the first rows."""
    header, _ = _rows(text)
    fields_by_name: dict[str, str] = {}
    for field in STANDARD_ALIASES:
        if field == TOKEN:
            continue
        for name in aliases_for(field, network.parameter_aliases or {}):
            fields_by_name.setdefault(name, field)
    rows = []
    for row in import_rows(text=text):
        rows.append([row.fields.get(name, "") for name in header])
        if len(rows) >= limit:
            break
    return {
        "columns": [(name, fields_by_name.get(name, "(ignored)")) for name in header],
        "rows": rows,
    }


def conversion_import_run(*, import_id: int) -> ConversionImport | None:
    """Store every row of an import as a postback; safe to run again (a row is stored once,
    and a finished import is left as it is)."""
    claimed = ConversionImport.objects.filter(
        pk=import_id, status__in=[ConversionImport.Status.QUEUED, ConversionImport.Status.RUNNING]
    ).update(status=ConversionImport.Status.RUNNING, started_at=timezone.now())
    conversion_import = ConversionImport.objects.select_related("network").get(pk=import_id)
    if not claimed:
        return conversion_import
    network = conversion_import.network
    chunk: list[ImportRow] = []
    for row in import_rows(text=conversion_import.body):
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            _store(conversion_import, network, chunk)
            chunk = []
    if chunk:
        _store(conversion_import, network, chunk)
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
    ("body", "text"),
    ("headers", "jsonb"),
    ("status", "varchar"),
    ("reason", "varchar"),
    ("processed_at", "timestamptz"),
    ("last_enqueued_at", "timestamptz"),
    ("import_row", "integer"),
)


def _store(conversion_import: ConversionImport, network: Network, rows: list[ImportRow]) -> None:
    now = timezone.now()
    stamp = now.isoformat()
    import_header = str(conversion_import.pk)
    stored: list[dict[str, Any]] = []
    for row in rows:
        body = urlencode(row.fields)
        reason = ""
        if not row.fields:
            reason = "row: not a CSV row of the header's columns"
        else:
            try:
                postback_parse(
                    query_string="",
                    body=body,
                    content_type=FORM,
                    received_at=now,
                    parameter_aliases=network.parameter_aliases,
                    status_map=network.status_map,
                    default_currency=network.currency,
                )
            except PostbackInvalid as error:
                reason = str(error)
        headers: dict[str, str] = {"X-Conversion-Import": import_header}
        if reason:
            headers[REJECTED_HEADER] = "true"
        stored.append(
            {
                "body": body,
                "headers": headers,
                "status": Postback.Status.INVALID.value
                if reason
                else Postback.Status.RECEIVED.value,
                "reason": reason[:500],
                "processed_at": stamp if reason else None,
                "last_enqueued_at": None if reason else stamp,
                "import_row": row.number,
            }
        )
    names = ", ".join(name for name, _ in _ROW_COLUMNS)
    types = ", ".join(f"{name} {sql_type}" for name, sql_type in _ROW_COLUMNS)
    with transaction.atomic():
        # One statement for the chunk (a bulk_create builds a model and a parameter per
        # cell, which cost more than the rows' own parsing); a row stored before stays.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {Postback._meta.db_table}
                       (network_id, received_at, method, query_string, content_type,
                        source_ip, attempts, conversion_import_id, {names})
                SELECT %s, %s, 'CSV', '', %s, NULL, 0, %s, {names}
                  FROM jsonb_to_recordset(%s::jsonb) AS row({types})
                ON CONFLICT DO NOTHING
                """,  # noqa: S608 (constants only)
                [network.pk, now, FORM, conversion_import.pk, json.dumps(stored)],
            )
        ConversionImport.objects.filter(pk=conversion_import.pk).update(
            rows_done=max(row.number for row in rows)
        )
        waiting = (
            Postback.objects.filter(
                conversion_import=conversion_import,
                import_row__in=[row.number for row in rows],
                status=Postback.Status.RECEIVED,
            )
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )
        if waiting is not None:
            # One wake-up per chunk: a processing task takes a whole batch of waiting rows
            # and wakes the next one itself while more are waiting.
            transaction.on_commit(lambda: postback_wake_worker(postback_id=waiting))


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
