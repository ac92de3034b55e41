"""CSV imports of conversions: each row stored and processed exactly as the network's postback.

`conversion_import_create` checks the file at once (text, CSV, a header naming postback
fields) and stores it whole, or refuses it and stores nothing. A worker then runs
`conversion_import_run` (`import_run.py`): each data row becomes a stored postback
(form-encoded, as a network would have sent it), checked by the same parser as the intake;
rows that cannot become a conversion are kept too, marked invalid with the reason, and
listed as errors. Valid rows are decided as the postback workers decide postbacks, so a row
counts once however often the file is imported (conversions are unique per network and
conversion id, else click id, else person and offer).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction

from attribution.models import ConversionImport, Network
from attribution.services.parsing import (
    STANDARD_ALIASES,
    TOKEN,
    aliases_for,
)
from config.enqueue import task_enqueue_on_commit

logger = logging.getLogger(__name__)

RUN_TASK = "attribution.run_conversion_import"
FORM = "application/x-www-form-urlencoded"
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
