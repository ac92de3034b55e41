"""A fixed-window counter in Redis: how many times in the last window.

For failed postback tokens, per network and client address:

    key = f"postback-token:{network.slug}:{client_ip}"
    if ratelimit_exceeded(key=key, limit=settings.POSTBACK_FAILED_TOKEN_LIMIT):
        return 429 {"error": "too many failed token attempts, retry later"}
    if not network_token_matches(...):
        ratelimit_hit(key=key, limit=..., window=settings.POSTBACK_FAILED_TOKEN_WINDOW_SECONDS)
        return 403 ...

The count lives in Redis, so every web process adds to it. `ratelimit_exceeded` runs
on every postback, so it asks no server: each process remembers, until the window ends,
the keys whose count reached the limit when it counted a failure itself. A process that
has not yet counted a failure of that key lets one more through and, counting it,
learns the key is blocked; with P processes a window allows at most limit + P - 1
failures. When Redis cannot be reached the limiter lets requests through (and logs it):
a cache outage must not turn away a network's genuine postbacks.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from redis import RedisError

from config.redis_client import redis_client, redis_key

logger = logging.getLogger(__name__)

KEY_PREFIX = "ratelimit:"
MAX_REMEMBERED_KEYS = 10_000


class _BlockedKeys:
    """The keys this process saw reach their limit: {key: (count, blocked until)}."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.until: dict[str, tuple[int, float]] = {}

    def remember(self, key: str, *, count: int, seconds: float) -> None:
        with self.lock:
            if len(self.until) >= MAX_REMEMBERED_KEYS:
                now = time.monotonic()
                self.until = {name: entry for name, entry in self.until.items() if entry[1] > now}
            if len(self.until) >= MAX_REMEMBERED_KEYS:
                # Many addresses blocked at once: forget them all rather than grow; the
                # counts stay in Redis and the next failure of each key blocks it again.
                self.until = {}
            self.until[key] = (count, time.monotonic() + seconds)

    def blocked(self, key: str, *, limit: int) -> bool:
        entry = self.until.get(key)
        return entry is not None and entry[0] >= limit and entry[1] > time.monotonic()

    def forget(self, key: str) -> None:
        with self.lock:
            self.until.pop(key, None)


def _redis_key(key: str) -> str:
    # Client addresses and slugs come from the request: keep the key short and plain.
    digest = hashlib.sha256(key.encode("utf-8", errors="surrogatepass")).hexdigest()[:32]
    return redis_key(KEY_PREFIX + digest)


class RateLimiter:
    """The counts in Redis, and what this process learned from them (one per process)."""

    def __init__(self) -> None:
        self._blocked = _BlockedKeys()

    def hit(self, *, key: str, limit: int, window: int) -> bool:
        """Count one event for `key`. True when it is over `limit` events in the current
        `window` seconds (the window starts at the first event and is not extended)."""
        name = _redis_key(key)
        try:
            with redis_client().pipeline(transaction=True) as pipe:
                # The first event of a window creates the key with its expiry; INCR keeps it.
                pipe.set(name, 0, ex=window, nx=True)
                pipe.incr(name)
                pipe.pttl(name)
                _, count, milliseconds_left = pipe.execute()
        except RedisError:
            logger.warning("rate limiter unavailable (Redis error); letting the request through")
            return False
        if int(count) >= limit:
            seconds = max(int(milliseconds_left), 0) / 1000
            self._blocked.remember(key, count=int(count), seconds=seconds)
        return int(count) > limit

    def exceeded(self, *, key: str, limit: int) -> bool:
        """True when `key` has already had `limit` events in its current window, as far as
        this process has counted them, so the next one should be turned away before any
        work is done. No round trip: see the module docstring."""
        return self._blocked.blocked(key, limit=limit)

    def reset(self, *, key: str) -> None:
        """Clear the count (other processes forget the key when its window ends)."""
        self._blocked.forget(key)
        try:
            redis_client().delete(_redis_key(key))
        except RedisError:
            logger.warning("rate limiter unavailable (Redis error); could not reset a key")


_limiter = RateLimiter()


def ratelimit_hit(*, key: str, limit: int, window: int) -> bool:
    """`RateLimiter.hit` of this process's limiter."""
    return _limiter.hit(key=key, limit=limit, window=window)


def ratelimit_exceeded(*, key: str, limit: int) -> bool:
    """`RateLimiter.exceeded` of this process's limiter."""
    return _limiter.exceeded(key=key, limit=limit)


def ratelimit_reset(*, key: str) -> None:
    """`RateLimiter.reset` of this process's limiter."""
    _limiter.reset(key=key)
