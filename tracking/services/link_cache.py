"""The redirect's link lookup: an in-process cache, and its invalidation.

Each web process keeps resolved links in a dict. Anything that changes what a
link resolves to (an offer's destination or status, a link's message) calls
`link_cache_invalidate()` inside its transaction; after the commit the shared
generation in Redis changes (`config.generation`), and every process, which compares
it at most every `LINK_CACHE_CHECK_SECONDS`, stops trusting its entries.

An entry that is no longer trusted (older generation, or older than
`LINK_CACHE_MAX_AGE_SECONDS`, a safety net for a lost invalidation) is read again
from PostgreSQL; while PostgreSQL is unreachable it is still served, so a known
link keeps redirecting through a database outage. While Redis is unreachable the
entries are kept and the check is retried later.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils.encoding import iri_to_uri

from config.generation import SharedGeneration
from tracking.selectors import link_target_get

logger = logging.getLogger(__name__)

GENERATION_KEY = "linkcache:generation"
CLICK_ID_MACRO = "{click_id}"
# A code nobody has asked for recently is not worth a dict slot for long.
NEGATIVE_ENTRY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class CachedLink:
    link_id: int
    # The destination with every macro but {click_id} filled in, already ASCII.
    location: str
    # False when the offer is paused or its destination is unusable.
    available: bool
    forward_query_string: bool


class _State:
    def __init__(self) -> None:
        self.entries: dict[str, tuple[CachedLink | None, int, float]] = {}
        self.epoch = 0
        self.generation: str | None = None
        self.lock = threading.Lock()


_state = _State()
_generation = SharedGeneration(
    key=GENERATION_KEY, check_seconds=lambda: settings.LINK_CACHE_CHECK_SECONDS
)


def link_cache_generation() -> str | None:
    """The shared generation in Redis now (None while Redis is unreachable)."""
    return _generation.read()


def link_cache_invalidate() -> None:
    """Call inside the transaction that changed an offer or a link."""
    # This process forgets at once too: its own next request (same connection, or after the
    # commit) reads the change without waiting for the commit hook or the next check.
    link_cache_clear()

    def bump() -> None:
        # When Redis is down, other processes pick the change up within
        # LINK_CACHE_MAX_AGE_SECONDS.
        _generation.bump()
        link_cache_clear()

    transaction.on_commit(bump)


def link_cache_clear() -> None:
    """Forget every entry of this process (after an invalidation, or for a cold start)."""
    with _state.lock:
        _state.entries.clear()
        _state.epoch += 1
    _generation.forget()


def link_cache_lookup(*, code: str) -> CachedLink | None:
    """The cached answer for `code`, reading PostgreSQL once on a miss.

    Raises `django.db.DatabaseError` only when PostgreSQL is unreachable and this
    process has never resolved `code`.
    """
    now = time.monotonic()
    state = _state
    if now >= _generation.next_check:
        _check_generation(now)
    hit = state.entries.get(code)
    if hit is not None:
        link, epoch, loaded_at = hit
        max_age = NEGATIVE_ENTRY_SECONDS if link is None else settings.LINK_CACHE_MAX_AGE_SECONDS
        if epoch == state.epoch and now - loaded_at < max_age:
            return link
    epoch = state.epoch
    try:
        row = link_target_get(code=code)
    except DatabaseError:
        if hit is not None and hit[0] is not None:
            logger.warning("database unavailable: serving a link from the cache")
            return hit[0]
        raise
    link = cached_link_from_row(row) if row is not None else None
    with state.lock:
        # An invalidation that arrived while we were reading wins over what we read.
        if epoch == state.epoch:
            if len(state.entries) >= settings.LINK_CACHE_MAX_ENTRIES:
                state.entries.clear()
            state.entries[code] = (link, epoch, now)
    return link


def _check_generation(now: float) -> None:
    state = _state
    generation = _generation.current(now)
    # None: Redis is unreachable; keep the entries (LINK_CACHE_MAX_AGE_SECONDS still holds).
    if generation is not None and generation != state.generation:
        with state.lock:
            if state.generation is not None:
                state.epoch += 1
            state.generation = generation


def cached_link_from_row(row: dict[str, Any]) -> CachedLink:
    destination: str = row["message__offer__destination_url"] or ""
    values = {
        "{message_id}": str(row["message_id"]),
        "{offer_id}": str(row["message__offer_id"]),
        "{campaign}": row["message__campaign__slug"],
        "{creative}": row["message__creative__slug"],
        "{channel}": row["message__channel"],
    }
    location = destination
    for macro in (*values, CLICK_ID_MACRO):
        # An operator may paste a destination whose braces are already percent-encoded.
        name = macro[1:-1]
        for encoded in (f"%7B{name}%7D", f"%7b{name}%7d"):
            location = location.replace(encoded, macro)
    for macro, value in values.items():
        location = location.replace(macro, quote(value, safe=""))
    location = CLICK_ID_MACRO.join(iri_to_uri(part) for part in location.split(CLICK_ID_MACRO))
    usable = _is_http_url(location)
    if not usable:
        logger.error("link %s: offer destination is not an http(s) URL", row["id"])
    return CachedLink(
        link_id=row["id"],
        location=location,
        available=usable and row["message__offer__status"] == "active",
        forward_query_string=bool(row["message__offer__forward_query_string"]),
    )


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url.replace(CLICK_ID_MACRO, "x"))
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
