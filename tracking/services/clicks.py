"""Recording clicks: the redirect's one spool write, and the set-based insert shared
by the drainer and the click import.

Duplicates (`is_duplicate`): a click is a duplicate when an earlier click that is not
a preview, on the same link, from the same truncated address and user agent,
happened at most `CLICK_DUPLICATE_WINDOW` before it (exactly at the edge counts as
a duplicate). Earlier clicks are looked for both in the table and in the same batch.
A click inserted later with an older time does not change flags already stored.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from ipaddress import ip_address, ip_network

from django.conf import settings
from django.db import connection, transaction

from config.client_ip import client_ip_get
from tracking.selectors import link_ids_by_code
from tracking.services.flags import click_flags
from tracking.services.partitions import click_partitions_ensure, month_of
from tracking.services.scanners import address_is_public, clicks_flag_scanners
from tracking.services.spool import spool_writer

logger = logging.getLogger(__name__)

USER_AGENT_MAX = 512
REFERRER_MAX = 512
PURPOSE_MAX = 64
CLICK_ID_BYTES = 16  # 22 URL-safe characters
SPOOL_LINE_VERSION = 1
SPOOL_LINE_FIELDS = (
    "version",
    "click_id",
    "unix_time",
    "link_id",
    "ip",
    "user_agent",
    "referrer",
    "method",
    "purpose",
)

# Codes we issue are 7+ characters of [2-9a-zA-Z]; imported ones may use - and _.
LINK_CODE_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
CLICK_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")

_encode_line = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def click_id_generate() -> str:
    return secrets.token_urlsafe(CLICK_ID_BYTES)


@lru_cache(maxsize=65_536)
def ip_truncate(value: str) -> str | None:
    """/24 of an IPv4 address, /48 of an IPv6 one; None for anything else."""
    parts = value.split(".")
    if len(parts) == 4 and all(part.isdigit() and len(part) <= 3 for part in parts):
        if all(int(part) <= 255 for part in parts):
            return f"{int(parts[0])}.{int(parts[1])}.{int(parts[2])}.0"
        return None
    try:
        address = ip_address(value.strip().split("%", 1)[0])
    except ValueError:
        return None
    if address.version == 4:
        return str(ip_network(f"{address}/24", strict=False).network_address)
    if address.ipv4_mapped is not None:
        return ip_truncate(str(address.ipv4_mapped))
    return str(ip_network(f"{address}/48", strict=False).network_address)


def purpose_header(meta: Mapping[str, str]) -> str:
    """The first prefetch/preview header sent: Chrome's `Sec-Purpose`, the older `Purpose`,
    Safari's `X-Purpose`, Firefox's `X-Moz`."""
    return (
        meta.get("HTTP_SEC_PURPOSE")
        or meta.get("HTTP_PURPOSE")
        or meta.get("HTTP_X_PURPOSE")
        or meta.get("HTTP_X_MOZ")
        or ""
    )


def click_record(*, link_id: int, method: str, meta: Mapping[str, str]) -> str:
    """Append the click to this process's spool file; returns its click_id.

    Raises `SpoolWriteError` when the line is not durably in the spool.
    """
    click_id = secrets.token_urlsafe(CLICK_ID_BYTES)
    # purpose_header() inlined: a function call is a tenth of a microsecond on the hot path.
    purpose = (
        meta.get("HTTP_SEC_PURPOSE")
        or meta.get("HTTP_PURPOSE")
        or meta.get("HTTP_X_PURPOSE")
        or meta.get("HTTP_X_MOZ")
        or ""
    )
    # One JSON array per line, in SPOOL_LINE_FIELDS order (a list encodes faster than a dict).
    line = _encode_line(
        [
            SPOOL_LINE_VERSION,
            click_id,
            time.time(),
            link_id,
            ip_truncate(client_ip_get(meta=meta)),
            meta.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX],
            meta.get("HTTP_REFERER", "")[:REFERRER_MAX],
            method,
            purpose[:PURPOSE_MAX],
        ]
    )
    spool_writer.append(f"{line}\n".encode("ascii"))
    return click_id


@dataclass(frozen=True)
class ClickInput:
    click_id: str
    occurred_at: datetime
    link_id: int
    ip: str | None
    user_agent: str
    referrer: str = ""
    method: str = "GET"
    purpose: str = ""
    is_imported: bool = False


def _clean_text(value: str, limit: int) -> str:
    # PostgreSQL text cannot hold NUL.
    return value.replace("\x00", "")[:limit]


_INSERT_SQL = """
INSERT INTO tracking_click (
    click_id, occurred_at, link_id, message_id, contact_id, offer_id, channel,
    user_agent, referrer, ip, method, is_bot, is_preview, flag_reason, is_duplicate,
    is_imported, recorded_at
)
SELECT
    incoming.click_id, incoming.occurred_at, incoming.link_id, message.id,
    message.contact_id, message.offer_id, message.channel,
    incoming.user_agent, incoming.referrer, incoming.ip, incoming.method,
    incoming.is_bot, incoming.is_preview, incoming.flag_reason,
    COALESCE(incoming.occurred_at - incoming.previous_in_batch <= %(window)s, FALSE)
    -- Two branches instead of `ip IS NOT DISTINCT FROM`, which no index can serve: with
    -- `ip = ...` / `ip IS NULL` the (link, ip, occurred_at) index narrows to this address,
    -- instead of every click of the link in the window (a busy link made each batch
    -- read all of its last hour's clicks).
    OR (incoming.ip IS NOT NULL AND EXISTS (
        SELECT 1 FROM tracking_click AS earlier
        WHERE earlier.link_id = incoming.link_id
          AND earlier.ip = incoming.ip
          AND earlier.occurred_at >= incoming.occurred_at - %(window)s
          AND earlier.occurred_at <= incoming.occurred_at
          AND earlier.user_agent = incoming.user_agent
          AND NOT earlier.is_preview
          AND earlier.click_id <> incoming.click_id
    ))
    OR (incoming.ip IS NULL AND EXISTS (
        SELECT 1 FROM tracking_click AS earlier
        WHERE earlier.link_id = incoming.link_id
          AND earlier.ip IS NULL
          AND earlier.occurred_at >= incoming.occurred_at - %(window)s
          AND earlier.occurred_at <= incoming.occurred_at
          AND earlier.user_agent = incoming.user_agent
          AND NOT earlier.is_preview
          AND earlier.click_id <> incoming.click_id
    )),
    incoming.is_imported, now()
FROM (
    SELECT click_incoming.*,
        max(occurred_at) FILTER (WHERE NOT is_preview) OVER (
            PARTITION BY link_id, ip, user_agent
            ORDER BY occurred_at, position
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS previous_in_batch
    FROM click_incoming
) AS incoming
JOIN tracking_link AS link ON link.id = incoming.link_id
JOIN tracking_message AS message ON message.id = link.message_id
ORDER BY incoming.position
ON CONFLICT (click_id, occurred_at) DO NOTHING
"""


def clicks_insert(*, clicks: Sequence[ClickInput]) -> int:
    """Flag and insert clicks in one statement; returns how many rows were new.

    Idempotent on (`click_id`, `occurred_at`): a spool line read twice carries the same
    time, and click ids are random, so that pair names one click. Clicks of links that no
    longer exist are skipped. Must run inside a transaction (the staging table lives until
    its commit).
    """
    if not clicks:
        return 0
    # Only a batch with a person's click from a public address can hold a scanner.
    judged_by_behaviour = False
    # Own transactions, before the insert's: a month is created once, not rolled back
    # with a batch (and the DEFAULT partition would take the clicks anyway).
    click_partitions_ensure(months={month_of(click.occurred_at) for click in clicks})
    with connection.cursor() as cursor:
        # One round trip (a drainer batch waits for each one on a busy machine): the staging
        # table of an earlier call in this transaction goes, a fresh one comes. A batch's row
        # estimates pass the JIT thresholds; compiling took ~50 ms a batch, more than the
        # insert itself (and the setting ends with the transaction).
        cursor.execute(
            "DROP TABLE IF EXISTS click_incoming;"
            " CREATE TEMP TABLE click_incoming ("
            " position integer, click_id text, occurred_at timestamptz, link_id bigint,"
            " ip inet, user_agent text, referrer text, method text,"
            " is_bot boolean, is_preview boolean, flag_reason text, is_imported boolean"
            ") ON COMMIT DROP;"
            " SET LOCAL jit = off"
        )
        with cursor.copy(
            "COPY click_incoming (position, click_id, occurred_at, link_id, ip, user_agent,"
            " referrer, method, is_bot, is_preview, flag_reason, is_imported) FROM STDIN"
        ) as copy:
            for position, click in enumerate(clicks):
                user_agent = _clean_text(click.user_agent, USER_AGENT_MAX)
                flags = click_flags(
                    user_agent=user_agent, method=click.method, purpose=click.purpose
                )
                judged_by_behaviour = judged_by_behaviour or (
                    not flags.is_bot and not flags.is_preview and address_is_public(click.ip)
                )
                copy.write_row(
                    (
                        position,
                        click.click_id,
                        click.occurred_at,
                        click.link_id,
                        click.ip,
                        user_agent,
                        _clean_text(click.referrer, REFERRER_MAX),
                        _clean_text(click.method, 8),
                        flags.is_bot,
                        flags.is_preview,
                        flags.reason,
                        click.is_imported,
                    )
                )
        cursor.execute(_INSERT_SQL, {"window": settings.CLICK_DUPLICATE_WINDOW})  # type: ignore[dict-item]
        inserted = cursor.rowcount
        if judged_by_behaviour:
            clicks_flag_scanners(cursor=cursor)
    return inserted


@dataclass(frozen=True)
class ClickImportItem:
    code: str
    occurred_at: datetime
    user_agent: str
    ip: str | None


class ClickImportInvalid(ValueError):
    """`status`: 400 for a malformed item, 404 for a code that names no link."""

    def __init__(self, *, index: int, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"item {index}: {field}: {message}")
        self.index = index
        self.field = field
        self.message = message
        self.status = status


def clicks_import(*, items: Sequence[ClickImportItem]) -> list[str]:
    """History from another tracker, all or nothing; the new click ids in the order given."""
    link_ids = link_ids_by_code(codes=sorted({item.code for item in items}))
    for index, item in enumerate(items):
        if item.code not in link_ids:
            raise ClickImportInvalid(
                index=index, field="code", message="unknown link code", status=404
            )
    clicks = [
        ClickInput(
            click_id=click_id_generate(),
            occurred_at=item.occurred_at,
            link_id=link_ids[item.code],
            ip=ip_truncate(item.ip) if item.ip else None,
            user_agent=item.user_agent,
            is_imported=True,
        )
        for item in items
    ]
    with transaction.atomic():
        inserted = clicks_insert(clicks=clicks)
        if inserted != len(clicks):
            # A link vanished between the check and the insert: write nothing.
            raise ClickImportInvalid(
                index=0, field="code", message="a link was removed during the import"
            )
    return [click.click_id for click in clicks]
