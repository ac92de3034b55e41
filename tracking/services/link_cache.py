"""Invalidation of the redirect's link lookup cache.

Each web process keeps resolved links in memory. Anything that changes what a
link resolves to (an offer's destination or status, a link's message) calls
`link_cache_invalidate()` after its commit; every process notices the new
generation and drops its entries.
"""

from django.core.cache import cache
from django.db import transaction

GENERATION_KEY = "linkcache:generation"


def link_cache_generation() -> int:
    return int(cache.get(GENERATION_KEY) or 0)


def link_cache_invalidate() -> None:
    def bump() -> None:
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:
            cache.add(GENERATION_KEY, 1, timeout=None)
            cache.incr(GENERATION_KEY)

    transaction.on_commit(bump)
