"""Recording clicks: the redirect's one spool write, and the set-based insert shared
by the drainer and the click import.

Duplicates (`is_duplicate`): a click is a duplicate when an earlier click that is not
a preview, on the same link, from the same truncated address and user agent,
happened at most `CLICK_DUPLICATE_WINDOW` before it (exactly at the edge counts as
a duplicate). Earlier clicks are looked for both in the table and in the same batch.
A click inserted later with an older time does not change flags already stored.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from ipaddress import ip_address, ip_network
from typing import Any, NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction

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
# A click id is the time in milliseconds as 11 hex digits, then 96 random bits as 16
# URL-safe characters (27 in all). Ids of one moment sort together, so the unique index on
# click ids takes each new one at its right-hand edge (a few hot pages) instead of on a random
# page of the month's partition: one random page write fewer per stored click, and no
# full-page image of it in the WAL after each checkpoint. The random part is what makes an
# id unguessable; the time part tells the network nothing it did not see when the click came.
CLICK_ID_RANDOM_BYTES = 12
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


CLICK_IDS_PER_DRAW = 256
_CLICK_ID_RANDOM_CHARACTERS = CLICK_ID_RANDOM_BYTES * 4 // 3


class _ClickIdRandom:
    """The random parts of click ids, cut from one base64 text of `CLICK_IDS_PER_DRAW` ids'
    worth of `os.urandom`: twelve bytes are exactly sixteen base64 characters, so each slice
    is what `secrets.token_urlsafe(12)` returns, with one system call per 256 clicks instead
    of one per click (a whole click id 1.3 µs instead of 1.8 in process). A forked child
    starts with a new draw, and a new lock (another thread may have held the parent's at the
    fork): it must not hand out its parent's next ids."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._text = ""
        self._position = 0

    def take(self) -> str:
        with self._lock:
            position = self._position
            if position >= len(self._text):
                draw = os.urandom(CLICK_ID_RANDOM_BYTES * CLICK_IDS_PER_DRAW)
                self._text = base64.urlsafe_b64encode(draw).decode("ascii")
                position = 0
            self._position = position + _CLICK_ID_RANDOM_CHARACTERS
            return self._text[position : position + _CLICK_ID_RANDOM_CHARACTERS]


_click_id_random = _ClickIdRandom()
os.register_at_fork(after_in_child=_click_id_random.reset)


def click_id_generate(unix_time: float | None = None) -> str:
    """A new click id for a click at `unix_time` (now when not given)."""
    now = time.time() if unix_time is None else unix_time
    return f"{int(now * 1000):011x}{_click_id_random.take()}"


@lru_cache(maxsize=65_536)
def ip_truncate(value: str) -> str | None:
    """/24 of an IPv4 address, /48 of an IPv6 one; None for anything else."""
    parts = value.split(".")
    if len(parts) == 4 and all(
        part.isascii() and part.isdigit() and len(part) <= 3 for part in parts
    ):
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
    now = time.time()
    click_id = click_id_generate(now)
    # purpose_header() inlined: a function call is a tenth of a microsecond on the hot path.
    purpose = (
        meta.get("HTTP_SEC_PURPOSE")
        or meta.get("HTTP_PURPOSE")
        or meta.get("HTTP_X_PURPOSE")
        or meta.get("HTTP_X_MOZ")
        or ""
    )
    # One JSON array per line, in SPOOL_LINE_FIELDS order, as `_encode_line` of the list
    # writes it: the click id (URL-safe), the time (a float's repr, as JSON has it) and the
    # link id need no escaping, and the texts repeat from click to click, so their JSON is
    # cached. Encoding the whole list cost a third of the click's own time.
    line = (
        f'[{SPOOL_LINE_VERSION},"{click_id}",{now!r},{int(link_id)},'
        f"{_json_text(ip_truncate(client_ip_get(meta=meta)))},"
        f"{_json_text(meta.get('HTTP_USER_AGENT', '')[:USER_AGENT_MAX])},"
        f"{_json_text(meta.get('HTTP_REFERER', '')[:REFERRER_MAX])},"
        f"{_json_text(method)},{_json_text(purpose[:PURPOSE_MAX])}]\n"
    )
    spool_writer.append(line.encode("ascii"))
    return click_id


@lru_cache(maxsize=4096)
def _json_text(value: str | None) -> str:
    """A text (or None) as JSON, ASCII only."""
    return _encode_line(value)


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


# The staging table lives as long as the database session: created once (`IF NOT EXISTS`
# costs a catalog lookup), emptied by every commit (`ON COMMIT DELETE ROWS`, a truncate in
# place) and by the DELETE when a transaction stages a second batch. A table created and
# dropped in every batch left a dozen dead catalog rows each time (pg_class, pg_attribute,
# pg_type) and made the insert be planned again every batch. Sent as one round trip with
# the batch's settings: a batch's row estimates pass the JIT thresholds (compiling took
# ~50 ms a batch, more than the insert itself), and the prepared insert keeps its generic
# plan (the duplicate window is its only parameter and changes nothing in the plan).
_STAGING_SQL = (
    "SET LOCAL jit = off;"
    " SET LOCAL plan_cache_mode = force_generic_plan;"
    " SET LOCAL client_min_messages = warning;"
    " CREATE TEMP TABLE IF NOT EXISTS click_incoming ("
    " position integer, click_id text, occurred_at timestamptz, link_id bigint,"
    " ip inet, user_agent text, referrer text, method text,"
    " is_bot boolean, is_preview boolean, flag_reason text, is_imported boolean"
    ") ON COMMIT DELETE ROWS;"
    " DELETE FROM click_incoming"
)

_COPY_SQL = (
    "COPY click_incoming (position, click_id, occurred_at, link_id, ip, user_agent,"
    " referrer, method, is_bot, is_preview, flag_reason, is_imported) FROM STDIN"
)


def _earlier_click(same_address: str) -> str:
    """The latest earlier click of the same person (`same_address`: the address condition)
    within the duplicate window (`$1`)."""
    return f"""
        SELECT 1 FROM tracking_click AS earlier
        WHERE earlier.link_id = incoming.link_id
          AND {same_address}
          AND earlier.occurred_at >= incoming.occurred_at - $1
          AND earlier.occurred_at <= incoming.occurred_at
          AND earlier.user_agent = incoming.user_agent
          AND NOT earlier.is_preview
          AND earlier.click_id <> incoming.click_id
        ORDER BY earlier.occurred_at DESC
        LIMIT 1
    """  # noqa: S608 (constant fragments only)


_INSERT_SQL = f"""
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
    COALESCE(incoming.occurred_at - incoming.previous_in_batch <= $1, FALSE)
    -- Two branches instead of `ip IS NOT DISTINCT FROM`, which no index can serve: with
    -- `ip = ...` / `ip IS NULL` the (link, ip, occurred_at) index narrows to this address,
    -- instead of every click of the link in the window (a busy link made each batch
    -- read all of its last hour's clicks).
    -- The latest earlier click, not any: the index is read backwards from the click's time
    -- and stops at the nearest match. `EXISTS` read it forwards from the window's start,
    -- past every click of other agents on that link and address in the hour before the
    -- match (PostgreSQL drops the ORDER BY and LIMIT of an EXISTS, hence `IS NOT NULL`).
    -- Behind a busy link's stream of one agent's clicks, one other agent's click (a probe
    -- every half second) read some 130,000 rows a batch.
    OR (incoming.ip IS NOT NULL AND ({_earlier_click("earlier.ip = incoming.ip")}) IS NOT NULL)
    OR (incoming.ip IS NULL AND ({_earlier_click("earlier.ip IS NULL")}) IS NOT NULL),
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
"""  # noqa: S608 (constant fragments only)

# Prepared once per database session, planned once: planning it took about a millisecond a
# batch with a few months of partitions, and grows with every month kept. A prepared
# statement outlives a rolled back transaction (the staging table it names does not, and
# is made again before the next EXECUTE: PostgreSQL analyses the statement again then).
#
# Two forms: the plain insert, and the same with `ON CONFLICT DO NOTHING` for a batch that
# holds a click already stored (a spool line read again). Clicks and offsets commit together,
# so that is rare; ON CONFLICT on every batch looked each click up in the unique index before
# inserting it (speculative insertion), about a tenth of PostgreSQL's time per stored click.
_PREPARED_NAME = "click_insert"
_IDEMPOTENT_NAME = "click_insert_idempotent"
_PREPARE_SQL = (
    f"PREPARE {_PREPARED_NAME} (interval) AS {_INSERT_SQL};"
    f" PREPARE {_IDEMPOTENT_NAME} (interval) AS {_INSERT_SQL}"
    " ON CONFLICT (click_id, occurred_at) DO NOTHING"
)
_EXECUTE_SQL = f"EXECUTE {_PREPARED_NAME} (%s)"
_EXECUTE_IDEMPOTENT_SQL = f"EXECUTE {_IDEMPOTENT_NAME} (%s)"
# The driver connections (one per database session) the insert is prepared on.
_prepared_on: weakref.WeakSet[Any] = weakref.WeakSet()

# COPY text format: these four are escaped; \N is NULL.
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_NULL = "\\N"


def _copy_text(value: str) -> str:
    return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value


@lru_cache(maxsize=8192)
def _agent_columns(user_agent: str, referrer: str, method: str, purpose: str) -> tuple[str, bool]:
    """The user agent to flag_reason columns of a staging row as COPY text, and whether the
    click is a person's (neither bot nor preview). Most clicks of a batch share them."""
    user_agent = _clean_text(user_agent, USER_AGENT_MAX)
    flags = click_flags(user_agent=user_agent, method=method, purpose=purpose)
    columns = "\t".join(
        (
            _copy_text(user_agent),
            _copy_text(_clean_text(referrer, REFERRER_MAX)),
            _copy_text(_clean_text(method, 8)),
            "t" if flags.is_bot else "f",
            "t" if flags.is_preview else "f",
            _copy_text(flags.reason),
        )
    )
    return columns, not flags.is_bot and not flags.is_preview


@lru_cache(maxsize=4096)
def _second_text(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _unix_time_text(unix_time: float) -> str:
    """The instant as `datetime.fromtimestamp(unix_time, UTC)` has it (microseconds rounded
    half to even), as timestamptz text; the whole second's text is cached."""
    if unix_time >= 0:
        second = int(unix_time)
        micro = round((unix_time - second) * 1e6)
        if micro == 1_000_000:
            second, micro = second + 1, 0
        return f"{_second_text(second)}.{micro:06d}+00"
    return datetime.fromtimestamp(unix_time, tz=UTC).isoformat()


def unix_time_valid(unix_time: float) -> bool:
    """Whether a spool line's time names an instant a timestamptz holds (not NaN, not past
    year 9999)."""
    return _UNIX_TIME_MIN <= unix_time < _UNIX_TIME_MAX


_UNIX_TIME_MIN = -62_135_596_800.0  # 0001-01-01
_UNIX_TIME_MAX = 253_402_300_800.0  # 10000-01-01


class SpooledClick(NamedTuple):
    """A spool line's fields as the drainer reads them (SPOOL_LINE_FIELDS, less the version)."""

    click_id: str
    unix_time: float
    link_id: int
    ip: str | None
    user_agent: str
    referrer: str
    method: str
    purpose: str


def clicks_insert(*, clicks: Sequence[ClickInput]) -> int:
    """Flag and insert clicks in one statement; returns how many rows were new.

    Idempotent on (`click_id`, `occurred_at`): a spool line read twice carries the same
    time, and click ids are random, so that pair names one click. Clicks of links that no
    longer exist are skipped. Must run inside a transaction (the staged rows live until
    its commit).
    """
    if not clicks:
        return 0
    # Own transactions, before the insert's: a month is created once, not rolled back
    # with a batch (and the DEFAULT partition would take the clicks anyway).
    click_partitions_ensure(months={month_of(click.occurred_at) for click in clicks})
    rows, judged_by_behaviour = _staged_rows(
        clicks,
        time_text=lambda click: click.occurred_at.isoformat(),
        imported=lambda click: click.is_imported,
    )
    return _insert_staged(
        rows=rows,
        judged_by_behaviour=judged_by_behaviour,
        first=min(click.occurred_at for click in clicks),
        last=max(click.occurred_at for click in clicks),
    )


def clicks_insert_spooled(*, clicks: Sequence[SpooledClick]) -> int:
    """`clicks_insert` for the drainer: the spool's fields go into the COPY text as they
    are, without a `ClickInput` and a datetime per click. Times must be `unix_time_valid`."""
    if not clicks:
        return 0
    first = min(click.unix_time for click in clicks)
    last = max(click.unix_time for click in clicks)
    months = {month_of(datetime.fromtimestamp(moment, tz=UTC)) for moment in (first, last)}
    if len(months) > 1:
        months = {month_of(datetime.fromtimestamp(click.unix_time, tz=UTC)) for click in clicks}
    click_partitions_ensure(months=months)
    rows, judged_by_behaviour = _staged_rows(
        clicks,
        time_text=lambda click: _unix_time_text(click.unix_time),
        imported=lambda click: False,
    )
    return _insert_staged(
        rows=rows,
        judged_by_behaviour=judged_by_behaviour,
        first=datetime.fromtimestamp(first, tz=UTC),
        last=datetime.fromtimestamp(last, tz=UTC),
    )


def _staged_rows(
    clicks: Sequence[Any],
    *,
    time_text: Callable[[Any], str],
    imported: Callable[[Any], bool],
) -> tuple[list[str], bool]:
    """The staging table's COPY text rows of `clicks` (a `ClickInput` or a `SpooledClick`:
    only their time is read differently), and whether the batch can hold a scanner: only a
    person's click from a public address can."""
    rows = []
    judged_by_behaviour = False
    for position, click in enumerate(clicks):
        agent, person = _agent_columns(
            click.user_agent, click.referrer, click.method, click.purpose
        )
        judged_by_behaviour = judged_by_behaviour or (person and address_is_public(click.ip))
        rows.append(
            f"{position}\t{_copy_text(click.click_id)}\t{time_text(click)}"
            f"\t{click.link_id}\t{_copy_text(click.ip) if click.ip else _COPY_NULL}"
            f"\t{agent}\t{'t' if imported(click) else 'f'}\n"
        )
    return rows, judged_by_behaviour


def _insert_staged(
    *, rows: list[str], judged_by_behaviour: bool, first: datetime, last: datetime
) -> int:
    """Stage the COPY text rows and insert them: three round trips."""
    # Errors raised by COPY come from the driver's cursor: as Django's, like the others.
    with connection.wrap_database_errors, connection.cursor() as cursor:
        cursor.execute(_STAGING_SQL)
        driver_connection = connection.connection
        if driver_connection not in _prepared_on:
            cursor.execute(_PREPARE_SQL)
            _prepared_on.add(driver_connection)
        with cursor.copy(_COPY_SQL) as copy:
            copy.write("".join(rows))
        window = settings.CLICK_DUPLICATE_WINDOW
        try:
            # A savepoint: a click already stored fails the plain insert, not the batch.
            with transaction.atomic():
                cursor.execute(_EXECUTE_SQL, [window])  # type: ignore[list-item]
        except IntegrityError:
            cursor.execute(_EXECUTE_IDEMPOTENT_SQL, [window])  # type: ignore[list-item]
        inserted: int = cursor.rowcount
        if judged_by_behaviour:
            clicks_flag_scanners(cursor=cursor, first=first, last=last)
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
