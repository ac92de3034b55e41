"""The production entry point (`config.wsgi.application`): short links and postbacks on the
short middleware stack, everything else on the whole one."""

import io
import json
from http.cookies import SimpleCookie
from typing import Any

import pytest

from attribution.models import Postback
from config.wsgi import application
from tests.factories import TEST_POSTBACK_TOKEN, NetworkFactory
from tests.tracking.helpers import drain, make_link
from tracking.models import Click

pytestmark = pytest.mark.django_db(transaction=True)


class Answer:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status_code = int(status.split()[0])
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        found = [value for key, value in self.headers if key.lower() == name.lower()]
        return found[0] if found else None

    @property
    def cookies(self) -> list[str]:
        return [
            name
            for key, value in self.headers
            if key.lower() == "set-cookie"
            for name in SimpleCookie(value)
        ]


def call(path: str, query_string: str = "", **extra: Any) -> Answer:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query_string,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        "REMOTE_ADDR": "203.0.113.7",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        **extra,
    }
    started: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.append((status, headers))

    chunks = application(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = started[0]
    return Answer(status, headers, body)


def test_a_short_link_redirects_and_records_its_click_without_session_or_csrf_cookies(spool_dir):
    # given
    link = make_link()

    # when
    answer = call(f"/{link.code}")
    drain(spool_dir)

    # then
    assert answer.status_code == 302
    click = Click.objects.get(link=link)
    assert answer.header("Location") == (
        f"https://offer.example.com/land?cid={click.click_id}&m={link.message_id}"
    )
    assert answer.header("Cache-Control") == "no-store"
    assert answer.header("X-Request-ID")
    assert answer.header("X-Content-Type-Options") == "nosniff"
    assert answer.cookies == []
    assert "Cookie" not in (answer.header("Vary") or "")


def test_a_postback_is_stored_and_accepted():
    # given
    network = NetworkFactory()

    # when
    answer = call(
        f"/postback/{network.slug}/",
        f"token={TEST_POSTBACK_TOKEN}&click_id=abcdefghijklmnop&txid=T-1&payout=2.50",
    )

    # then
    assert answer.status_code == 200
    body = json.loads(answer.body)
    assert body["status"] == "accepted"
    stored = Postback.objects.get(pk=body["postback_id"])
    assert "txid=T-1" in stored.query_string
    assert "token" not in stored.query_string
    assert answer.cookies == []


def test_the_admin_keeps_csrf_and_framing_protection(db):
    # when
    answer = call("/admin/login/")

    # then
    assert answer.status_code == 200
    assert "csrftoken" in answer.cookies
    assert answer.header("X-Frame-Options") == "DENY"


@pytest.mark.parametrize("path", ["/admin", "/api", "/healthz", "/metrics", "/static"])
def test_the_projects_own_top_level_paths_are_not_treated_as_short_links(path):
    # when
    answer = call(path)

    # then: answered by the whole stack (framing protection), not as a link code
    assert answer.header("X-Frame-Options") == "DENY"


def test_a_short_link_with_a_foreign_host_header_is_refused(spool_dir):
    # given
    link = make_link()

    # when
    answer = call(f"/{link.code}", HTTP_HOST="evil.example")

    # then
    assert answer.status_code == 400
    assert answer.header("Location") is None
