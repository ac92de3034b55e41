"""A fixed-window counter in the Django cache (Redis): how many times in the last window.

For failed postback tokens, per network and client address:

    key = f"postback-token:{network.slug}:{client_ip}"
    if ratelimit_exceeded(key=key, limit=settings.POSTBACK_FAILED_TOKEN_LIMIT):
        return 429 {"error": "too many failed token attempts, retry later"}
    if not network_token_matches(...):
        ratelimit_hit(key=key, limit=..., window=settings.POSTBACK_FAILED_TOKEN_WINDOW_SECONDS)
        return 403 ...

When Redis cannot be reached the limiter lets requests through (and logs it): a cache
outage must not turn away a network's genuine postbacks.
"""

from __future__ import annotations

import hashlib
import logging

from django.core.cache import cache
from redis import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "ratelimit:"


def _cache_key(key: str) -> str:
    # Client addresses and slugs come from the request: keep the key short and plain.
    return KEY_PREFIX + hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]


def ratelimit_hit(*, key: str, limit: int, window: int) -> bool:
    """Count one event for `key`. True when it is over `limit` events in the current
    `window` seconds (the window starts at the first event and is not extended)."""
    cache_key = _cache_key(key)
    try:
        cache.add(cache_key, 0, timeout=window)
        try:
            count = cache.incr(cache_key)
        except ValueError:
            # The window expired between add and incr: this event opens a new one.
            cache.add(cache_key, 0, timeout=window)
            count = cache.incr(cache_key)
    except RedisError:
        logger.warning("rate limiter unavailable (Redis error); letting the request through")
        return False
    return int(count) > limit


def ratelimit_exceeded(*, key: str, limit: int) -> bool:
    """True when `key` has already had `limit` events in its current window, so the next
    one should be turned away before any work is done."""
    try:
        count = cache.get(_cache_key(key), 0)
    except RedisError:
        logger.warning("rate limiter unavailable (Redis error); letting the request through")
        return False
    return int(count) >= limit


def ratelimit_reset(*, key: str) -> None:
    try:
        cache.delete(_cache_key(key))
    except RedisError:
        logger.warning("rate limiter unavailable (Redis error); could not reset a key")
