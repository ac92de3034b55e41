"""Catalog edits (API PATCH and admin) reach the redirect of every web process within 2 s.

The server is real granian with two worker processes, and the link cache is checked at its
default interval, so a change must travel through the shared generation in Redis.
"""

import http.client
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import LinkFactory
from tests.tracking.test_redirect_server import Server
from tracking.models import Link

DESTINATION = "https://offer.example.com/land?cid={click_id}&c={campaign}&cr={creative}"
PROPAGATION_SECONDS = 2.0
# More requests than workers, so each worker answers at least one of them in practice.
REQUESTS_PER_CHECK = 8


@pytest.fixture(scope="module")
def default_server(django_db_setup, django_db_blocker) -> Iterator[Server]:
    running = Server(check_seconds=settings.LINK_CACHE_CHECK_SECONDS)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def token(transactional_db) -> str:
    user = get_user_model().objects.create_user(
        username="catalog-editor", password="x" * 20, is_staff=True, is_superuser=True
    )
    return str(Token.objects.create(user=user).key)


def patch(server: Server, path: str, token: str, body: dict[str, Any]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(
        "PATCH",
        path,
        body=json.dumps(body),
        headers={
            "Host": f"127.0.0.1:{server.port}",
            "Authorization": f"Token {token}",
            "Content-Type": "application/json",
        },
    )
    response = connection.getresponse()
    answer = json.loads(response.read() or b"null")
    connection.close()
    return response.status, answer


def warmed_link(server: Server) -> Link:
    """A link every worker has cached with its old values."""
    link = cast(Link, LinkFactory(message__offer__destination_url=DESTINATION))
    for _ in range(REQUESTS_PER_CHECK):
        assert server.get(f"/{link.code}").status == 302
    return link


def seconds_until_every_answer(server: Server, link: Link, wanted: Callable[[str], bool]) -> float:
    """Time until REQUESTS_PER_CHECK answers in a row all redirect where `wanted` says."""
    started = time.monotonic()
    while time.monotonic() - started < PROPAGATION_SECONDS + 3:
        locations = [
            server.get(f"/{link.code}").getheader("Location") or ""
            for _ in range(REQUESTS_PER_CHECK)
        ]
        if all(wanted(location) for location in locations):
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"still redirecting to {locations}")


def query(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_patched_campaign_slug_reaches_every_worker_within_2_seconds(default_server, token):
    # given
    link = warmed_link(default_server)

    # when
    status, answer = patch(
        default_server,
        f"/api/v1/campaigns/{link.message.campaign_id}/",
        token,
        {"slug": "renamed-campaign"},
    )

    # then
    assert status == 200, answer
    assert answer["slug"] == "renamed-campaign"
    took = seconds_until_every_answer(
        default_server, link, lambda location: query(location)["c"] == ["renamed-campaign"]
    )
    assert took < PROPAGATION_SECONDS


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_patched_creative_slug_reaches_every_worker_within_2_seconds(default_server, token):
    # given
    link = warmed_link(default_server)

    # when
    status, answer = patch(
        default_server,
        f"/api/v1/creatives/{link.message.creative_id}/",
        token,
        {"slug": "renamed-creative"},
    )

    # then
    assert status == 200, answer
    took = seconds_until_every_answer(
        default_server, link, lambda location: query(location)["cr"] == ["renamed-creative"]
    )
    assert took < PROPAGATION_SECONDS


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_patched_offer_destination_reaches_every_worker_within_2_seconds(default_server, token):
    # given
    link = warmed_link(default_server)

    # when
    status, answer = patch(
        default_server,
        f"/api/v1/offers/{link.message.offer_id}/",
        token,
        {"destination_url": "https://moved.example.net/new?click={click_id}"},
    )

    # then
    assert status == 200, answer
    took = seconds_until_every_answer(
        default_server,
        link,
        lambda location: location.startswith("https://moved.example.net/new?click="),
    )
    assert took < PROPAGATION_SECONDS


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_admin_edit_of_a_creative_slug_reaches_every_worker_within_2_seconds(
    default_server, token
):
    # given: an operator logged in to the admin
    link = warmed_link(default_server)
    creative = link.message.creative
    operator = Client()
    operator.force_login(Token.objects.get(key=token).user)

    # when
    response = operator.post(
        f"/admin/tracking/creative/{creative.pk}/change/",
        {
            "campaign": creative.campaign_id,
            "slug": "edited-in-admin",
            "name": creative.name,
            "body": creative.body,
        },
    )

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    took = seconds_until_every_answer(
        default_server, link, lambda location: query(location)["cr"] == ["edited-in-admin"]
    )
    assert took < PROPAGATION_SECONDS


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_admin_edit_of_a_campaign_slug_reaches_every_worker_within_2_seconds(
    default_server, token
):
    # given
    link = warmed_link(default_server)
    campaign = link.message.campaign
    operator = Client()
    operator.force_login(Token.objects.get(key=token).user)

    # when
    response = operator.post(
        f"/admin/tracking/campaign/{campaign.pk}/change/",
        {"slug": "campaign-edited-in-admin", "name": campaign.name},
    )

    # then
    assert response.status_code == 302, response.content.decode()[:2000]
    took = seconds_until_every_answer(
        default_server,
        link,
        lambda location: query(location)["c"] == ["campaign-edited-in-admin"],
    )
    assert took < PROPAGATION_SECONDS
