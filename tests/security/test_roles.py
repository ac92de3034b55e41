"""Three personas against the admin and the API: operator, read-only analyst, outsider."""

import hashlib
from typing import Any, cast

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client, RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from attribution.models import Network, Offer
from tests.factories import ContactFactory, NetworkFactory, OfferFactory

ADMIN_OFFERS = "/admin/attribution/offer/"
ADMIN_NETWORKS = "/admin/attribution/network/"


def _person(username: str, *, staff: bool, group: str | None) -> Any:
    user = get_user_model().objects.create_user(
        username=username, password="persona-password-123", is_staff=staff
    )
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def personas(db) -> dict[str, Any]:
    call_command("setup_roles", stdout=open("/dev/null", "w"))  # noqa: SIM115
    return {
        "operator": _person("operator-persona", staff=True, group="operator"),
        "analyst": _person("analyst-persona", staff=True, group="analyst"),
        "outsider": _person("outsider-persona", staff=False, group=None),
    }


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(user: Any) -> APIClient:
    client = APIClient()
    token = Token.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def _offer_form(offer: Offer, **changes: Any) -> dict[str, Any]:
    data = {
        "name": offer.name,
        "network": offer.network_id,
        "destination_url": offer.destination_url,
        "status": offer.status,
        "click_window_days": offer.click_window_days,
        "attribution_model": offer.attribution_model,
        "sms_window_days": offer.sms_window_days,
        "email_window_days": offer.email_window_days,
        "view_window_hours": offer.view_window_hours,
        "payout": offer.payout,
        "currency": offer.currency,
    }
    data.update(changes)
    return data


def test_setup_roles_is_safe_to_run_twice(personas):
    # when
    call_command("setup_roles", stdout=open("/dev/null", "w"))  # noqa: SIM115

    # then
    assert Group.objects.filter(name__in=["operator", "analyst"]).count() == 2
    analyst = Group.objects.get(name="analyst")
    assert analyst.permissions.exclude(codename__startswith="view_").count() == 0


@pytest.mark.parametrize(
    ("persona", "status"), [("operator", 200), ("analyst", 200), ("outsider", 302)]
)
def test_offer_list_in_the_admin(personas, persona, status):
    # given
    OfferFactory()

    # when
    response = _browser(personas[persona]).get(ADMIN_OFFERS)

    # then
    assert response.status_code == status
    if status == 302:
        assert "/admin/login/" in response["Location"]


def test_analyst_sees_the_offer_form_read_only_and_cannot_post_it(personas):
    # given
    offer = cast(Offer, OfferFactory(payout="10.00"))
    analyst = _browser(personas["analyst"])

    # when
    page = analyst.get(f"{ADMIN_OFFERS}{offer.pk}/change/")
    post = analyst.post(f"{ADMIN_OFFERS}{offer.pk}/change/", _offer_form(offer, payout="99"))

    # then
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert post.status_code == 403
    offer.refresh_from_db()
    assert str(offer.payout) == "10.0000"


def test_operator_changes_an_offer_in_the_admin(personas):
    # given
    offer = cast(Offer, OfferFactory(payout="10.00"))
    operator = _browser(personas["operator"])

    # when
    page = operator.get(f"{ADMIN_OFFERS}{offer.pk}/change/")
    post = operator.post(f"{ADMIN_OFFERS}{offer.pk}/change/", _offer_form(offer, payout="12.5"))

    # then
    assert b'name="_save"' in page.content
    assert post.status_code == 302, post.content[:2000]
    offer.refresh_from_db()
    assert str(offer.payout) == "12.5000"


def test_outsider_cannot_post_to_the_admin(personas):
    # given
    offer = cast(Offer, OfferFactory(payout="10.00"))

    # when
    response = _browser(personas["outsider"]).post(
        f"{ADMIN_OFFERS}{offer.pk}/change/", _offer_form(offer, payout="0")
    )

    # then
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    offer.refresh_from_db()
    assert str(offer.payout) == "10.0000"


def test_analyst_opens_the_daily_report(personas):
    # when
    analyst = _browser(personas["analyst"]).get("/admin/reports/daily/")
    outsider = _browser(personas["outsider"]).get("/admin/reports/daily/")

    # then
    assert analyst.status_code == 200
    assert outsider.status_code == 302


def test_analyst_sees_contacts_with_masked_phone_numbers(personas):
    # given
    ContactFactory(phone="+12015550199")

    # when
    response = _browser(personas["analyst"]).get("/admin/tracking/contact/")

    # then
    assert response.status_code == 200
    assert b"+12015550199" not in response.content


@pytest.mark.parametrize(
    ("persona", "status"), [("operator", 200), ("analyst", 200), ("outsider", 403)]
)
def test_reading_the_api(personas, persona, status):
    # given
    OfferFactory()

    # when
    response = _api(personas[persona]).get("/api/v1/offers/")

    # then
    assert response.status_code == status


def test_analyst_cannot_create_or_change_offers_or_networks_through_the_api(personas):
    # given
    offer = cast(Offer, OfferFactory(payout="10.00"))
    api = _api(personas["analyst"])

    # when
    created_network = api.post(
        "/api/v1/networks/", {"slug": "sneaky", "name": "Sneaky"}, format="json"
    )
    created_offer = api.post(
        "/api/v1/offers/",
        {
            "name": "Sneaky offer",
            "network": offer.network_id,
            "destination_url": "https://example.com/?c={click_id}",
        },
        format="json",
    )
    changed = api.patch(f"/api/v1/offers/{offer.pk}/", {"payout": "99"}, format="json")

    # then
    assert created_network.status_code == 403
    assert created_offer.status_code == 403
    assert changed.status_code in {403, 405}
    assert not Network.objects.filter(slug="sneaky").exists()
    offer.refresh_from_db()
    assert str(offer.payout) == "10.0000"


def test_operator_creates_an_offer_through_the_api(personas):
    # given
    network = cast(Network, NetworkFactory())

    # when
    response = _api(personas["operator"]).post(
        "/api/v1/offers/",
        {
            "name": "Operator offer",
            "network": network.pk,
            "destination_url": "https://example.com/?c={click_id}",
        },
        format="json",
    )

    # then
    assert response.status_code == 201, response.content


def test_outsider_cannot_write_through_the_api(personas):
    # when
    response = _api(personas["outsider"]).post(
        "/api/v1/networks/", {"slug": "outsider", "name": "Outsider"}, format="json"
    )

    # then
    assert response.status_code == 403
    assert not Network.objects.filter(slug="outsider").exists()


def test_network_tokens_are_stored_only_as_hashes(personas):
    # when
    response = _api(personas["operator"]).post(
        "/api/v1/networks/", {"slug": "hashed", "name": "Hashed"}, format="json"
    )

    # then
    token = response.json()["postback_token"]
    network = Network.objects.get(slug="hashed")
    assert network.postback_token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(Network.objects.filter(slug="hashed").values().first())


def test_analyst_cannot_rotate_a_network_token(personas):
    # given
    network = cast(Network, NetworkFactory())
    token_hash_before = network.postback_token_hash

    # when
    response = _browser(personas["analyst"]).post(
        ADMIN_NETWORKS, {"action": "rotate_token", "_selected_action": [network.pk]}
    )

    # then
    assert response.status_code in {200, 302, 403}
    network.refresh_from_db()
    assert network.postback_token_hash == token_hash_before
    assert network.previous_token_hash in {None, ""}


def test_operator_rotates_a_network_token(personas):
    # given
    network = cast(Network, NetworkFactory())
    token_hash_before = network.postback_token_hash

    # when
    response = _browser(personas["operator"]).post(
        ADMIN_NETWORKS, {"action": "rotate_token", "_selected_action": [network.pk]}, follow=True
    )

    # then
    assert response.status_code == 200
    assert b"New postback token for" in response.content
    network.refresh_from_db()
    assert network.postback_token_hash != token_hash_before
    assert network.previous_token_hash == token_hash_before


def _admin_actions_offered(user: Any) -> dict[str, list[str]]:
    offered = {}
    for model, model_admin in admin.site._registry.items():
        request = RequestFactory().get("/admin/")
        request.user = user
        if model_admin.has_view_or_change_permission(request):
            offered[model._meta.label] = sorted(model_admin.get_actions(request))
    return offered


def test_the_analyst_is_offered_no_admin_action_anywhere(personas):
    # when
    offered = _admin_actions_offered(personas["analyst"])

    # then
    assert "attribution.Network" in offered
    assert {label: actions for label, actions in offered.items() if actions} == {}


def test_the_operator_is_offered_the_admin_actions(personas):
    # when
    offered = _admin_actions_offered(personas["operator"])

    # then
    assert "rotate_token" in offered["attribution.Network"]
    assert "replay" in offered["attribution.Postback"]
    assert "recompute_selected_days" in offered["reports.DailyRollup"]
