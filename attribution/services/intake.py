"""Postback intake: check who is calling, keep the raw request, answer.

The raw row is committed before the answer and the processing task is enqueued
only after that commit, so a postback we said `accepted` to is always in the
database, whatever happens to the queue afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from attribution.models import Conversion, Network, Postback
from attribution.services.parsing import (
    TOKEN,
    FieldNames,
    PostbackInvalid,
    body_fields,
    body_without,
    clean_text,
    field_names,
    first_values,
    postback_parse_fields,
    query_pairs,
    query_without,
    token_among,
)
from attribution.services.wakeup import postback_wake_worker_soon
from config.generation import SharedGeneration
from config.ratelimit import ratelimit_exceeded, ratelimit_hit

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Postback-Token"  # noqa: S105 (a header name)
SECRET_HEADERS = {"x-postback-token", "authorization", "cookie", "proxy-authorization"}
MAX_HEADER_LENGTH = 1000
MAX_SLUG_LENGTH = 64
MAX_CACHED_NETWORKS = 10_000


@dataclass(frozen=True)
class IncomingPostback:
    """What the view read from the request, and nothing Django-specific. Header names
    are spelled as Django's `request.headers` spells them (`X-Postback-Token`)."""

    method: str
    query_string: str
    body: str
    content_type: str
    headers: Mapping[str, str]
    client_ip: str
    body_problem: str = ""


@dataclass(frozen=True)
class IntakeAnswer:
    status_code: int
    payload: dict[str, Any]
    postback_id: int | None = None
    text_response: bool = False
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IntakeNetwork:
    """A network as the intake uses it: the row, and its parameter names worked out once."""

    network: Network
    names: FieldNames
    secret_names: frozenset[str]

    @classmethod
    def of(cls, network: Network) -> IntakeNetwork:
        names = field_names(network.parameter_aliases)
        return cls(network=network, names=names, secret_names=frozenset(names[TOKEN]))


# Networks as the intake last read them, per process: {slug: (generation, read at, network)}.
_networks: dict[str, tuple[str, float, IntakeNetwork]] = {}
NETWORK_GENERATION_KEY = "attribution:network-generation"
# Changes whenever any network changes; read at most every POSTBACK_NETWORK_CHECK_SECONDS.
_generation = SharedGeneration(
    key=NETWORK_GENERATION_KEY, check_seconds=lambda: settings.POSTBACK_NETWORK_CHECK_SECONDS
)


def network_for_intake(*, slug: str) -> IntakeNetwork | None:
    """The network by slug, from this process's memory while no network has changed.

    No PostgreSQL query per postback; entries are also dropped after
    `POSTBACK_NETWORK_CACHE_SECONDS` in case a row was edited by hand.
    """
    now = time.monotonic()
    # None while Redis is unreachable: then nothing is cached, as no change could be seen.
    generation = _generation.current(now)
    cached = _networks.get(slug)
    if (
        generation
        and cached is not None
        and cached[0] == generation
        and now - cached[1] < settings.POSTBACK_NETWORK_CACHE_SECONDS
    ):
        return cached[2]
    network = Network.objects.filter(slug=slug).first()
    if network is None:
        _networks.pop(slug, None)
        return None
    intake_network = IntakeNetwork.of(network)
    if generation:
        if len(_networks) > MAX_CACHED_NETWORKS:
            _networks.clear()
        _networks[slug] = (generation, now, intake_network)
    return intake_network


def network_cache_invalidate() -> None:
    """After a network changes: every process reads networks again (after the commit)."""

    def bump() -> None:
        _generation.bump()
        # Again after the commit: a request between the first clear and the commit may
        # have cached the row as it was.
        _networks.clear()

    _networks.clear()
    transaction.on_commit(bump)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", errors="surrogatepass")).hexdigest()


def network_token_matches(*, network: Network, token: str, now: datetime) -> bool:
    """Constant time in the token: both hashes are always compared."""
    offered = token_hash(token)
    current = hmac.compare_digest(offered, network.postback_token_hash)
    previous_valid = bool(
        network.previous_token_hash
        and network.previous_token_valid_until
        and network.previous_token_valid_until > now
    )
    previous = hmac.compare_digest(offered, network.previous_token_hash or "-" * 64)
    return current or (previous and previous_valid)


def network_allows_ip(*, network: Network, client_ip: str) -> bool:
    if not network.allowed_ips:
        return True
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for cidr in network.allowed_ips:
        try:
            if address in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            logger.warning("network %s has a malformed allowlist entry", network.slug)
    return False


def _stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        clean_text(name)[:200]: clean_text(value)[:MAX_HEADER_LENGTH]
        for name, value in headers.items()
        if name.lower() not in SECRET_HEADERS
    }


# Networks call from few addresses: each is parsed once per process, not per postback.
@functools.lru_cache(maxsize=4096)
def _stored_ip(client_ip: str) -> str | None:
    try:
        return str(ipaddress.ip_address(client_ip))
    except ValueError:
        return None


def postback_receive(*, network_slug: str, incoming: IncomingPostback) -> IntakeAnswer:
    """Authenticate, store and acknowledge one postback (see INTERFACES.md, Postbacks).

    PostgreSQL unreachable (an uncached network, or the INSERT itself): `503` with
    `Retry-After`. Nothing was stored, so nothing is acknowledged: the network sends again.
    """
    try:
        return _receive(network_slug=network_slug, incoming=incoming)
    except DatabaseError:
        logger.warning("postback intake: database unavailable")
        return IntakeAnswer(
            503,
            {"error": "temporarily unavailable, retry later"},
            headers={"Retry-After": str(settings.POSTBACK_RETRY_AFTER_SECONDS)},
        )


def _receive(*, network_slug: str, incoming: IncomingPostback) -> IntakeAnswer:
    known = None
    if len(network_slug) <= MAX_SLUG_LENGTH and "\x00" not in network_slug:
        known = network_for_intake(slug=network_slug)
    if known is None:
        return IntakeAnswer(404, {"error": "unknown network"})
    network = known.network

    now = timezone.now()
    # The query string and body are read once, here: the token, what is stored and the
    # 400 check all come from these fields.
    pairs = query_pairs(incoming.query_string)
    fields: dict[str, Any] = first_values(pairs)
    body_problem = incoming.body_problem
    if incoming.body:
        try:
            fields.update(body_fields(body=incoming.body, content_type=incoming.content_type))
        except PostbackInvalid as error:
            # The body is unreadable; the token may still be in the query string.
            body_problem = body_problem or str(error)
    token = incoming.headers.get(TOKEN_HEADER) or token_among(fields, known.names[TOKEN])
    # Per network and address, never the token itself: guessing is slowed, and one
    # noisy address does not lock out the network's other senders.
    failures_key = f"postback-token:{network.slug}:{incoming.client_ip}"
    limit = settings.POSTBACK_FAILED_TOKEN_LIMIT
    window = settings.POSTBACK_FAILED_TOKEN_WINDOW_SECONDS
    if ratelimit_exceeded(key=failures_key, limit=limit):
        return IntakeAnswer(
            429,
            {"error": "too many failed token attempts, retry later"},
            headers={"Retry-After": str(window)},
        )
    if not token:
        ratelimit_hit(key=failures_key, limit=limit, window=window)
        return IntakeAnswer(403, {"error": "postback token missing"})
    if not network_token_matches(network=network, token=token, now=now):
        ratelimit_hit(key=failures_key, limit=limit, window=window)
        return IntakeAnswer(403, {"error": "postback token is wrong"})
    if not network_allows_ip(network=network, client_ip=incoming.client_ip):
        return IntakeAnswer(403, {"error": "address not allowed for this network"})

    secret_names = known.secret_names
    query_string = incoming.query_string
    if any(name in secret_names for name, _ in pairs):
        query_string = query_without(query_string, secret_names)
    body = body_without(body=incoming.body, content_type=incoming.content_type, names=secret_names)
    problem = body_problem or _problem(
        known=known,
        # What the worker will read from the stored row: the fields without the token.
        fields={name: value for name, value in fields.items() if name not in secret_names},
        now=now,
    )
    postback_id = postback_insert(
        network_id=network.pk,
        received_at=now,
        method=clean_text(incoming.method)[:8],
        query_string=clean_text(query_string),
        body=clean_text(body),
        content_type=clean_text(incoming.content_type)[:200],
        headers=_stored_headers(incoming.headers),
        source_ip=_stored_ip(incoming.client_ip),
        status=Postback.Status.INVALID if problem else Postback.Status.RECEIVED,
        reason=problem[:500],
    )
    if problem:
        return IntakeAnswer(400, {"error": problem, "postback_id": postback_id}, postback_id)
    postback_wake_worker_soon(postback_id=postback_id)
    return IntakeAnswer(
        200,
        {"status": "accepted", "postback_id": postback_id},
        postback_id,
        text_response=network.response_format == Network.ResponseFormat.TEXT,
    )


_POSTBACK_INSERT = f"""
    INSERT INTO {Postback._meta.db_table}
        (network_id, received_at, method, query_string, body, content_type, headers,
         source_ip, status, reason, attempts)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0)
    RETURNING id
"""  # noqa: S608 (the table name is ours, every value a parameter)


def postback_insert(
    *,
    network_id: int,
    received_at: datetime,
    method: str,
    query_string: str,
    body: str,
    content_type: str,
    headers: dict[str, str],
    source_ip: str | None,
    status: str,
    reason: str,
) -> int:
    """One row, committed on return outside a transaction; its id.

    Plain SQL on Django's own connection instead of `Postback.save()`: the ORM's INSERT
    (SQL compiler, client-side binding, a health-check `SELECT 1`) cost more CPU than
    the rest of the intake together. Errors surface as Django's `DatabaseError`, and
    the connection is recycled after them as after any query.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            _POSTBACK_INSERT,
            (
                network_id,
                received_at,
                method,
                query_string,
                body,
                content_type,
                Jsonb(headers),
                source_ip,
                status,
                reason,
            ),
        )
        row = cursor.fetchone()
    if row is None:
        raise DatabaseError("INSERT ... RETURNING gave no row")
    return int(row[0])


def _problem(*, known: IntakeNetwork, fields: Mapping[str, Any], now: datetime) -> str:
    network = known.network
    try:
        parsed = postback_parse_fields(
            fields=fields,
            names=known.names,
            received_at=now,
            status_map=network.status_map,
            default_currency=network.currency,
        )
    except PostbackInvalid as error:
        return str(error)
    if not parsed.click_id and not parsed.person and parsed.conversion_id:
        # The conversion may still be in this network's backlog (an approval and its
        # reversal sent seconds apart): the worker decides once the backlog is done.
        known_conversion = (
            Conversion.objects.filter(network=network, conversion_id=parsed.conversion_id).exists()
            or Postback.objects.filter(network=network, status=Postback.Status.RECEIVED).exists()
        )
        if not known_conversion:
            return "click_id is required (conversion_id names no known conversion)"
    return ""
