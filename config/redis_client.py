"""One plain Redis client per process, for the hot paths (postback intake, rate limits).

redis-py clients are thread-safe and pool their connections. Django's cache builds a
new client object on every call, which costs more than the round trip itself on the
intake's path; code that talks to Redis per request uses this one instead.
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_clients: dict[str, redis.Redis] = {}
_lock = threading.Lock()


def redis_client() -> redis.Redis:
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
                _clients[url] = client
    return client


def redis_key(name: str) -> str:
    """`name` in this deployment's key space (`REDIS_KEY_PREFIX`)."""
    return f"{settings.REDIS_KEY_PREFIX}{name}"
