"""The shared "something changed" token both in-process caches rely on (links, networks)."""

import time

from config.generation import SharedGeneration
from config.redis_client import redis_client, redis_key

CHECK_SECONDS = 0.3


def _process(key: str) -> SharedGeneration:
    """One web process's view of the generation."""
    return SharedGeneration(key=key, check_seconds=lambda: CHECK_SECONDS)


def test_a_change_in_one_process_is_seen_by_another_within_the_check_interval():
    # given: two processes that have read the same token
    here, there = _process("test:generation"), _process("test:generation")
    now = time.monotonic()
    before = there.current(now)
    assert here.current(now) == before is not None

    # when
    here.bump()

    # then: not before the interval is over (no round trip per call), then at once
    assert there.current(now + CHECK_SECONDS / 2) == before
    after = there.current(now + CHECK_SECONDS)
    assert after is not None and after != before


def test_a_lost_key_comes_back_as_a_token_never_seen_before():
    # given
    process = _process("test:generation-lost")
    first = process.current(time.monotonic())

    # when: Redis loses the key (a flush, a failover)
    redis_client().delete(redis_key("test:generation-lost"))
    process.forget()
    again = process.current(time.monotonic())

    # then
    assert again is not None and again != first


def test_while_redis_is_unreachable_the_token_is_unknown_and_asked_for_again_later(settings):
    # given
    process = _process("test:generation-down")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    # when
    now = time.monotonic()
    unknown = process.current(now)
    process.bump()  # must not raise either

    # then: unknown, and not asked again on every call
    assert unknown is None
    assert process.next_check > now + CHECK_SECONDS
