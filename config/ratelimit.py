"""A fixed-window counter in Redis: how many times in the last window.

For failed postback tokens, per network and client address:

    key = f"postback-token:{network.slug}:{client_ip}"
    if ratelimit_exceeded(key=key, limit=settings.POSTBACK_FAILED_TOKEN_LIMIT):
        return 429 {"error": "too many failed token attempts, retry later"}
    if not network_token_matches(...):
        ratelimit_hit(key=key, limit=..., window=settings.POSTBACK_FAILED_TOKEN_WINDOW_SECONDS)
        return 403 ...

`ratelimit_exceeded` runs on every postback, so it is one GET on the shared client.
When Redis cannot be reached the limiter lets requests through (and logs it): a cache
outage must not turn away a network's genuine postbacks.
"""

from __future__ import annotations

import hashlib
import logging

from redis import RedisError

from config.redis_client import redis_client, redis_key

logger = logging.getLogger(__name__)

KEY_PREFIX = "ratelimit:"


def _redis_key(key: str) -> str:
    # Client addresses and slugs come from the request: keep the key short and plain.
    digest = hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]
    return redis_key(KEY_PREFIX + digest)


def ratelimit_hit(*, key: str, limit: int, window: int) -> bool:
    """Count one event for `key`. True when it is over `limit` events in the current
    `window` seconds (the window starts at the first event and is not extended)."""
    name = _redis_key(key)
    try:
        with redis_client().pipeline(transaction=True) as pipe:
            # The first event of a window creates the key with its expiry; INCR keeps it.
            pipe.set(name, 0, ex=window, nx=True)
            pipe.incr(name)
            _, count = pipe.execute()
    except RedisError:
        logger.warning("rate limiter unavailable (Redis error); letting the request through")
        return False
    return int(count) > limit


def ratelimit_exceeded(*, key: str, limit: int) -> bool:
    """True when `key` has already had `limit` events in its current window, so the next
    one should be turned away before any work is done."""
    try:
        count = redis_client().get(_redis_key(key))
    except RedisError:
        logger.warning("rate limiter unavailable (Redis error); letting the request through")
        return False
    return int(count or 0) >= limit


def ratelimit_reset(*, key: str) -> None:
    try:
        redis_client().delete(_redis_key(key))
    except RedisError:
        logger.warning("rate limiter unavailable (Redis error); could not reset a key")
