import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import override_settings

from config.ratelimit import RateLimiter, ratelimit_exceeded, ratelimit_hit, ratelimit_reset


@pytest.fixture
def key(request) -> str:
    """A key of this test's own: what this process remembers outlives a test."""
    return f"postback-token:{request.node.name}:203.0.113.7"


def test_the_limit_allows_n_failures_then_blocks(key):
    # when
    over = [ratelimit_hit(key=key, limit=5, window=60) for _ in range(6)]

    # then
    assert over == [False, False, False, False, False, True]
    assert ratelimit_exceeded(key=key, limit=5) is True
    assert ratelimit_exceeded(key=key.replace("203.0.113.7", "203.0.113.8"), limit=5) is False
    assert (
        ratelimit_exceeded(key=key.replace("postback-token:", "postback-token:other-"), limit=5)
        is False
    )


def test_the_window_ends(key):
    # given
    for _ in range(3):
        ratelimit_hit(key=key, limit=3, window=1)
    assert ratelimit_exceeded(key=key, limit=3) is True

    # when
    time.sleep(1.2)

    # then
    assert ratelimit_exceeded(key=key, limit=3) is False
    assert ratelimit_hit(key=key, limit=3, window=1) is False


def test_another_process_learns_of_the_block_on_its_next_failure(key):
    # given: the limit was reached by another web process; this one counted none of it
    for _ in range(5):
        ratelimit_hit(key=key, limit=5, window=60)
    this_process = RateLimiter()
    assert this_process.exceeded(key=key, limit=5) is False

    # when: one more failure reaches this process
    over = this_process.hit(key=key, limit=5, window=60)

    # then: counted on the shared total, and this process blocks from now on
    assert over is True
    assert this_process.exceeded(key=key, limit=5) is True


def test_a_reset_clears_the_count(key):
    # given
    for _ in range(3):
        ratelimit_hit(key=key, limit=3, window=60)

    # when
    ratelimit_reset(key=key)

    # then
    assert ratelimit_exceeded(key=key, limit=3) is False


def test_concurrent_failures_are_all_counted(key):
    # when: 50 attempts at once from 10 threads
    with ThreadPoolExecutor(max_workers=10) as pool:
        over = list(pool.map(lambda _: ratelimit_hit(key=key, limit=10, window=60), range(50)))

    # then: exactly the ten first got through, none was lost in a race
    assert over.count(False) == 10
    assert over.count(True) == 40


def test_requests_go_through_when_redis_is_down(key):
    # when: nothing listens on port 1
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        over = ratelimit_hit(key=key, limit=0, window=60)
        exceeded = ratelimit_exceeded(key=key, limit=0)

    # then
    assert over is False
    assert exceeded is False
