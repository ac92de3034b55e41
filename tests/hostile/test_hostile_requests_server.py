"""Hostile bodies and headers sent to a real granian server: a clear 4xx every time, never a 5xx,
never a dropped connection. Raw sockets (http.client), so nothing smooths the bytes over."""

import contextlib
import http.client
import json
from collections.abc import Iterator

import pytest
from django.conf import settings

from tests.hostile.server import ApiServer, staff_token

WRITE_PATHS = [
    "/api/v1/messages/bulk/",
    "/api/v1/messages/",
    "/api/v1/clicks/import/",
    "/api/v1/campaigns/",
    "/api/v1/networks/",
    "/api/v1/offers/",
]


@pytest.fixture
def server(transactional_db) -> Iterator[tuple[ApiServer, str]]:
    token = staff_token()
    running = ApiServer().start()
    yield running, token
    running.stop()


def _send(
    server: ApiServer,
    token: str,
    path: str,
    body: bytes,
    content_type: str = "application/json",
    **headers: str,
) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    connection.putrequest("POST", path)
    connection.putheader("Authorization", f"Token {token}")
    connection.putheader("Content-Type", content_type)
    connection.putheader("Content-Length", str(len(body)))
    for name, value in headers.items():
        connection.putheader(name.replace("_", "-"), value)
    connection.endheaders()
    # The server may answer before it has read everything; the answer must still come.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        connection.send(body)
    response = connection.getresponse()
    raw = response.read()
    connection.close()
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = {"raw": raw[:200].decode("latin-1")}
    return response.status, answer


@pytest.mark.slow
def test_hostile_bodies_get_a_clear_4xx_from_the_real_server(server):
    # given
    running, token = server
    deep = b"[" * 5000 + b"]" * 5000
    cases = [
        (deep, "application/json", 400, "nested"),
        (b'{"a": 1, "a": 2}', "application/json", 400, "duplicate key"),
        (b'[{"code": 1e999}]', "application/json", 400, "out of range"),
        (b'[{"code": "\\ud800"}]', "application/json", 400, "surrogate"),
        (b"\xff\xfe\x00garbage", "application/json", 400, "JSON"),
        (b'{"x": 1}', "application/json; charset=no-such-charset", 400, ""),
        (b"slug=a&name=b", "application/x-www-form-urlencoded", 415, "Unsupported"),
        (b"<a/>", "application/xml", 415, "Unsupported"),
    ]

    for path in WRITE_PATHS:
        for body, content_type, status, reason in cases:
            # when
            answered, answer = _send(running, token, path, body, content_type)

            # then
            assert (path, answered) == (path, status), (body[:40], answer)
            assert reason in answer["error"], (path, body[:40], answer)


@pytest.mark.slow
def test_a_body_over_the_limit_is_413_naming_the_limit_not_a_dropped_connection(server):
    # given: 12 MB, more than DATA_UPLOAD_MAX_MEMORY_SIZE
    running, token = server
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = b"[" + b" " * (12 * 1024 * 1024) + b"]"

    for path in ("/api/v1/messages/bulk/", "/api/v1/clicks/import/"):
        # when
        status, answer = _send(running, token, path, body)

        # then
        assert status == 413, answer
        assert str(limit) in answer["error"]


@pytest.mark.slow
def test_huge_headers_and_huge_numbers_are_4xx(server):
    # given
    running, token = server

    # when
    big_header, _ = _send(running, token, "/api/v1/campaigns/", b"{}", X_Padding="a" * 1_000_000)
    big_number, answer = _send(
        running,
        token,
        "/api/v1/messages/",
        json.dumps({"offer": 10**40, "links": -(10**40)}).encode(),
    )

    # then
    assert 400 <= big_header < 500
    assert big_number == 400
    assert {"offer", "links"} <= set(answer["fields"])
