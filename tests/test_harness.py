"""The harness that tests and bench share: a free port, and an embedded Redis of our own."""

import socket

import redis

from harness.processes import free_port
from harness.services import EmbeddedRedis, redis_reachable


def test_a_free_port_can_be_listened_on():
    # when
    port = free_port()

    # then
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()


def test_an_embedded_redis_starts_flushes_and_stops(tmp_path):
    # given
    server = EmbeddedRedis(tmp_path).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("kept", "1")

        # when
        server.flush()

        # then
        assert client.get("kept") is None
        client.close()
    finally:
        server.stop()
    assert not redis_reachable(server.url)
