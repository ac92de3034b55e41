"""`/api/v1/networks/`, `/api/v1/offers/`, `/api/v1/conversions/`."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from attribution.models import Network, Offer
from tests.factories import (
    ClickFactory,
    ConversionFactory,
    NetworkFactory,
    OfferFactory,
)
from tracking.services.link_cache import link_cache_generation

pytestmark = pytest.mark.django_db


def test_creating_a_network_generates_its_token_and_shows_it_once(api_client, client):
    # when
    response = api_client.post(
        "/api/v1/networks/",
        {"slug": "acme", "name": "Acme", "allowed_ips": ["203.0.113.7"], "currency": "eur"},
        format="json",
    )
    # then
    assert response.status_code == 201
    body = response.json()
    token = body["postback_token"]
    assert len(token) >= 24
    network = Network.objects.get(pk=body["id"])
    assert network.postback_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Network.objects.values().get(pk=network.pk))
    assert body["allowed_ips"] == ["203.0.113.7/32"]
    assert body["currency"] == "EUR"
    assert "postback_token" not in api_client.get(f"/api/v1/networks/{network.pk}/").json()
    # and the token works
    answer = client.get(
        "/postback/acme/", {"token": token, "click_id": "c"}, REMOTE_ADDR="203.0.113.7"
    )
    assert answer.status_code == 200


def test_a_network_may_bring_its_own_token(api_client):
    response = api_client.post(
        "/api/v1/networks/",
        {"slug": "own", "name": "Own", "postback_token": "my-own-long-token-123456"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["postback_token"] == "my-own-long-token-123456"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"slug": "x", "name": "X", "allowed_ips": ["not-an-ip"]}, "allowed_ips"),
        ({"slug": "x", "name": "X", "currency": "dollars"}, "currency"),
        ({"slug": "bad slug!", "name": "X"}, "slug"),
        ({"slug": "x", "name": "X", "postback_token": "short"}, "postback_token"),
    ],
)
def test_bad_network_input_is_400_naming_the_field(api_client, payload, field):
    response = api_client.post("/api/v1/networks/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]


def test_a_duplicate_network_slug_is_409(api_client):
    NetworkFactory.create(slug="taken")
    response = api_client.post("/api/v1/networks/", {"slug": "taken", "name": "X"}, format="json")
    assert response.status_code == 409
    assert "slug" in response.json()["fields"]


def test_creating_an_offer(api_client):
    network = NetworkFactory.create()
    response = api_client.post(
        "/api/v1/offers/",
        {
            "name": "Loans",
            "network": network.pk,
            "destination_url": "https://example.com/?c={click_id}",
            "click_window_days": 90,
            "attribution_model": "cooperative",
            "sms_window_days": 2,
            "email_window_days": 7,
            "view_window_hours": 48,
            "payout": "12.50",
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    offer = Offer.objects.get(pk=body["id"])
    assert offer.attribution_model == "cooperative"
    assert (offer.click_window_days, offer.sms_window_days, offer.email_window_days) == (90, 2, 7)
    assert body["payout"] == "12.5000"
    assert body["view_window_hours"] == 48
    assert api_client.get(f"/api/v1/offers/{offer.pk}/").json()["view_window_hours"] == 48


def test_view_through_is_off_unless_an_offer_asks_for_it_and_can_be_changed(api_client):
    # given
    network = NetworkFactory.create()
    created = api_client.post(
        "/api/v1/offers/",
        {"name": "O", "network": network.pk, "destination_url": "https://example.com/"},
        format="json",
    ).json()
    assert created["view_window_hours"] == 0
    # when
    response = api_client.patch(
        f"/api/v1/offers/{created['id']}/", {"view_window_hours": 24}, format="json"
    )
    # then
    assert response.status_code == 200
    assert api_client.get(f"/api/v1/offers/{created['id']}/").json()["view_window_hours"] == 24


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("click_window_days", 0),
        ("click_window_days", 91),
        ("sms_window_days", 0),
        ("email_window_days", 91),
        ("attribution_model", "linear"),
        ("payout", "-1"),
        ("view_window_hours", -1),
        ("view_window_hours", 721),
        ("view_window_hours", "soon"),
        ("destination_url", "javascript:alert(1)"),
        ("destination_url", "not a url"),
    ],
)
def test_offer_windows_are_1_to_90_and_models_are_known(api_client, field, value):
    network = NetworkFactory.create()
    payload = {
        "name": "O",
        "network": network.pk,
        "destination_url": "https://example.com/",
        field: value,
    }
    response = api_client.post("/api/v1/offers/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]


def test_changing_an_offer_invalidates_the_link_cache(
    api_client, django_capture_on_commit_callbacks
):
    offer = OfferFactory.create()
    before = link_cache_generation()
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.patch(
            f"/api/v1/offers/{offer.pk}/",
            {"destination_url": "https://new.example.com/?c={click_id}", "status": "paused"},
            format="json",
        )
    assert response.status_code == 200
    assert link_cache_generation() != before
    offer.refresh_from_db()
    assert offer.status == "paused"


def test_conversions_are_listed_with_the_contract_fields_and_filtered(api_client):
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    ConversionFactory.create(
        network=network,
        conversion_id="C-1",
        click_id=click.click_id,
        attributed=True,
        attribution_model="first_click",
        attribution_type="click_through",
        credited_click=click,
        message=click.message,
        creative=click.message.creative,
        campaign=click.message.campaign,
        offer=click.offer,
        contact=click.contact,
    )
    ConversionFactory.create(network=network, conversion_id="C-2", reason="unknown_click")
    ConversionFactory.create(conversion_id="C-1")
    # when
    response = api_client.get(
        "/api/v1/conversions/", {"network": network.slug, "conversion_id": "C-1"}
    )
    # then
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["conversion_id"] == "C-1"
    assert row["status"] == "approved"
    assert row["payout"] == "10.0000"
    assert row["currency"] == "USD"
    assert row["processed"] is True
    assert row["attributed"] is True
    assert row["reason"] == ""
    assert row["click_id"] == click.click_id
    assert row["message"] == click.message_id
    assert row["creative"] == click.message.creative_id
    assert row["campaign"] == click.message.campaign_id
    assert row["offer"] == click.offer_id
    assert row["contact"] == click.contact_id
    assert row["attribution_type"] == "click_through"
    unattributed = api_client.get(
        "/api/v1/conversions/", {"network": network.slug, "conversion_id": "C-2"}
    ).json()["results"][0]
    assert unattributed["attributed"] is False
    assert unattributed["click_id"] is None
    assert unattributed["reason"] == "unknown_click"
    assert unattributed["attribution_type"] is None
    assert api_client.get("/api/v1/conversions/").json()["count"] == 3


def test_odd_filter_values_find_nothing_rather_than_fail(api_client):
    response = api_client.get("/api/v1/conversions/", {"conversion_id": "a\x00b", "network": "é"})
    assert response.status_code == 200
    assert response.json()["count"] == 0


@pytest.mark.parametrize("path", ["/api/v1/networks/", "/api/v1/offers/", "/api/v1/conversions/"])
def test_the_api_is_for_staff_only(path):
    assert APIClient().get(path).status_code in (401, 403)


def test_patching_a_network_changes_its_fields_and_its_token(api_client, client):
    # given
    network = NetworkFactory.create(slug="before", currency="USD")

    # when
    response = api_client.patch(
        f"/api/v1/networks/{network.pk}/",
        {
            "slug": "after",
            "name": "Renamed",
            "currency": "eur",
            "allowed_ips": ["198.51.100.4"],
            "postback_token": "a-brand-new-token-0123456789",
        },
        format="json",
    )

    # then
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["slug"], body["name"], body["currency"]) == ("after", "Renamed", "EUR")
    assert body["allowed_ips"] == ["198.51.100.4/32"]
    assert "postback_token" not in body
    accepted = client.get(
        "/postback/after/",
        {"token": "a-brand-new-token-0123456789", "click_id": "c"},
        REMOTE_ADDR="198.51.100.4",
    )
    assert accepted.status_code == 200


@pytest.mark.parametrize(
    ("payload", "field", "status"),
    [
        ({"allowed_ips": ["not-an-ip"]}, "allowed_ips", 400),
        ({"currency": "dollars"}, "currency", 400),
        ({"slug": "taken"}, "slug", 409),
        ({"postback_token": "short"}, "postback_token", 400),
    ],
)
def test_a_bad_network_patch_is_refused_naming_the_field(api_client, payload, field, status):
    # given
    NetworkFactory.create(slug="taken")
    network = NetworkFactory.create()

    # when
    response = api_client.patch(f"/api/v1/networks/{network.pk}/", payload, format="json")

    # then
    assert response.status_code == status
    assert field in response.json()["fields"]
    assert field in response.json()["error"]


@pytest.mark.parametrize(
    ("payload", "field", "status"),
    [
        ({"destination_url": "javascript:alert(1)"}, "destination_url", 400),
        ({"click_window_days": 0}, "click_window_days", 400),
        ({"network": 999999}, "network", 404),
    ],
)
def test_a_bad_offer_patch_is_refused_naming_the_field(api_client, payload, field, status):
    # given
    offer = OfferFactory.create()

    # when
    response = api_client.patch(f"/api/v1/offers/{offer.pk}/", payload, format="json")

    # then
    assert response.status_code == status
    assert field in response.json()["fields"]


@pytest.mark.parametrize("kind", ["networks", "offers"])
def test_patching_an_unknown_id_is_404(api_client, kind):
    # when
    response = api_client.patch(f"/api/v1/{kind}/999999/", {"name": "x"}, format="json")

    # then
    assert response.status_code == 404
    assert "error" in response.json()
