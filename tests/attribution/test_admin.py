"""Operators' pages: networks, offers, postbacks and conversions, and the replay command."""

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.utils import timezone

from attribution.models import Conversion, ConversionEvent, Network, Offer, Postback
from attribution.services.processing import postback_process
from tests.factories import (
    TEST_POSTBACK_TOKEN,
    ClickFactory,
    NetworkFactory,
    OfferFactory,
)
from tracking.services.link_cache import link_cache_generation

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversion_postback(client):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    response = client.get(
        f"/postback/{click.offer.network.slug}/",
        {"token": TEST_POSTBACK_TOKEN, "click_id": click.click_id, "txid": "ADM-1"},
    )
    postback_id = response.json()["postback_id"]
    postback_process(postback_id=postback_id, batch_size=10)
    return Postback.objects.get(pk=postback_id)


@pytest.mark.parametrize(
    "path",
    [
        "/admin/attribution/network/",
        "/admin/attribution/network/add/",
        "/admin/attribution/offer/",
        "/admin/attribution/offer/add/",
        "/admin/attribution/postback/",
        "/admin/attribution/postback/?status__exact=processed",
        "/admin/attribution/conversion/",
        "/admin/attribution/conversion/?attributed__exact=1",
    ],
)
def test_every_list_page_answers(admin_client_logged_in, conversion_postback, path):
    assert admin_client_logged_in.get(path).status_code == 200


def test_a_postback_page_shows_the_raw_payload_without_the_token(
    admin_client_logged_in, conversion_postback
):
    response = admin_client_logged_in.get(
        f"/admin/attribution/postback/{conversion_postback.pk}/change/"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "ADM-1" in page
    assert TEST_POSTBACK_TOKEN not in page


def test_a_conversion_page_shows_its_decision_and_history(
    admin_client_logged_in, conversion_postback
):
    conversion = Conversion.objects.get()
    response = admin_client_logged_in.get(f"/admin/attribution/conversion/{conversion.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"click #{conversion.credited_click_id}" in page
    assert f"message #{conversion.message_id}" in page
    assert f"contact #{conversion.contact_id}" in page
    assert "approved" in page


def test_adding_a_network_shows_its_token_once(admin_client_logged_in):
    # when
    response = admin_client_logged_in.post(
        "/admin/attribution/network/add/",
        {
            "slug": "from-admin",
            "name": "From admin",
            "currency": "USD",
            "allowed_ips": "198.51.100.0/24",
            "parameter_aliases": "{}",
            "status_map": "{}",
            "response_format": "json",
        },
        follow=True,
    )
    # then
    assert response.status_code == 200
    [message] = [str(m) for m in get_messages(response.wsgi_request) if "token" in str(m)]
    token = message.rsplit(" ", 1)[-1]
    network = Network.objects.get(slug="from-admin")
    assert network.postback_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert network.allowed_ips == ["198.51.100.0/24"]


def test_rotating_a_token_keeps_the_old_one_for_a_grace_period(admin_client_logged_in, client):
    network = NetworkFactory.create()
    response = admin_client_logged_in.post(
        "/admin/attribution/network/",
        {"action": "rotate_token", "_selected_action": [network.pk]},
        follow=True,
    )
    [message] = [str(m) for m in get_messages(response.wsgi_request) if "token" in str(m)]
    token = message.rsplit(" ", 1)[-1]
    for usable in (token, TEST_POSTBACK_TOKEN):
        answer = client.get(f"/postback/{network.slug}/", {"token": usable, "click_id": "c"})
        assert answer.status_code == 200


def test_saving_an_offer_in_the_admin_invalidates_the_link_cache(
    admin_client_logged_in, django_capture_on_commit_callbacks
):
    offer = OfferFactory.create()
    before = link_cache_generation()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_logged_in.post(
            f"/admin/attribution/offer/{offer.pk}/change/",
            {
                "name": offer.name,
                "network": offer.network_id,
                "destination_url": offer.destination_url,
                "status": "active",
                "click_window_days": 14,
                "attribution_model": "last_click",
                "sms_window_days": 1,
                "email_window_days": 5,
                "view_window_hours": 12,
                "payout": "10",
                "currency": "USD",
            },
        )
    assert response.status_code == 302
    assert Offer.objects.get(pk=offer.pk).attribution_model == "last_click"
    assert Offer.objects.get(pk=offer.pk).view_window_hours == 12
    assert link_cache_generation() != before


def test_the_replay_action_leaves_processed_postbacks_unchanged(
    admin_client_logged_in, conversion_postback
):
    before = Conversion.objects.values().get()
    response = admin_client_logged_in.post(
        "/admin/attribution/postback/",
        {"action": "replay", "_selected_action": [conversion_postback.pk]},
        follow=True,
    )
    postback_process(postback_id=conversion_postback.pk, batch_size=10)
    assert "1 already processed" in response.content.decode()
    assert Conversion.objects.values().get() == before
    assert ConversionEvent.objects.count() == 1


def test_the_replay_command_filters_and_requeues(client, django_capture_on_commit_callbacks):
    # given: one failed postback of network A, one of network B
    network_a, network_b = NetworkFactory.create(slug="net-a"), NetworkFactory.create(slug="net-b")
    ids = {}
    for network in (network_a, network_b):
        ids[network.slug] = client.get(
            f"/postback/{network.slug}/", {"token": TEST_POSTBACK_TOKEN, "click_id": "c"}
        ).json()["postback_id"]
    Postback.objects.update(status=Postback.Status.FAILED, reason="database was down")
    out = StringIO()
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        call_command(
            "replay_postbacks",
            "--network",
            "net-a",
            "--status",
            "failed",
            "--since",
            "2020-01-01",
            stdout=out,
            stderr=StringIO(),
        )
    # then
    assert "1 postback(s) selected: 1 queued again" in out.getvalue()
    assert len(callbacks) == 1
    assert Postback.objects.get(pk=ids["net-a"]).status == Postback.Status.RECEIVED
    assert Postback.objects.get(pk=ids["net-b"]).status == Postback.Status.FAILED
