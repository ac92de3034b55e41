"""A shared "something changed" token in Redis, read by each process at most every N seconds.

In-process caches (the redirect's links, the intake's networks) cannot be told directly
that a row changed in another process. Whoever changes one calls `bump()` after the
commit; every process compares the token it last read with Redis at most every
`check_seconds` and stops trusting what it cached when the token differs. A check costs a
clock read and a comparison; one Redis round trip per process per interval.

The token is random, not a counter: after Redis loses the key (a flush, a failover) the
next reader makes a new one, which differs from every token seen before, so a cache can
never mistake a lost generation for its own.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
from collections.abc import Callable

from redis import RedisError

from config.redis_client import redis_client, redis_key

logger = logging.getLogger(__name__)

# While Redis cannot be reached, ask it again after this long, not on every request.
REDIS_RETRY_SECONDS = 5.0


class SharedGeneration:
    def __init__(self, *, key: str, check_seconds: Callable[[], float]) -> None:
        self.key = key
        self._check_seconds = check_seconds
        self._lock = threading.Lock()
        # The token as last read; None until read, and while Redis is unreachable.
        self.value: str | None = None
        # Read `value` freely until the monotonic clock reaches this.
        self.next_check = -math.inf

    def current(self, now: float) -> str | None:
        """The token, read from Redis only when `now` (monotonic) is past the next check."""
        if now < self.next_check:
            return self.value
        with self._lock:
            if now >= self.next_check:
                self.value = self.read()
                retry = self._check_seconds() if self.value is not None else REDIS_RETRY_SECONDS
                self.next_check = now + retry
        return self.value

    def read(self) -> str | None:
        """The token in Redis now (made when missing); None when Redis is unreachable."""
        client = redis_client()
        name = redis_key(self.key)
        try:
            value = client.get(name)
            if value is None:
                client.set(name, secrets.token_hex(8), nx=True)
                value = client.get(name) or b""
        except RedisError:
            logger.warning("generation %s unknown: Redis unavailable", self.key)
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def bump(self) -> None:
        """Tell every process that what it cached is stale (call after the commit)."""
        try:
            redis_client().set(redis_key(self.key), secrets.token_hex(8))
        except RedisError:
            # Caches fall back on their own maximum age.
            logger.warning("generation %s not bumped: Redis unavailable", self.key)

    def forget(self) -> None:
        """Read Redis again at the next check, whatever the interval."""
        self.next_check = -math.inf
