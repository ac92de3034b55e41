import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import CreativeFactory, LinkFactory, OfferFactory
from tracking.models import Contact, Link, Message


@pytest.fixture
def catalog(db):
    creative = CreativeFactory.create(slug="spring", campaign__slug="spring-sale")
    offer = OfferFactory.create()
    return creative, offer


def payload(offer_row, number: int = 1, **overrides) -> dict:
    body = {
        "contact": {"phone": f"+1201555{number:04d}"},
        "channel": "sms",
        "campaign": "spring-sale",
        "creative": "spring",
        "offer": offer_row.pk,
        "sent_at": "2026-03-01T12:00:00Z",
        "external_id": f"send-{number}",
    }
    body.update(overrides)
    return body


@pytest.mark.django_db
def test_post_message_answers_201_with_its_id_and_short_links(api_client, catalog, settings):
    # given
    settings.SHORT_LINK_BASE_URL = "https://sh.example"
    _, offer = catalog

    # when
    response = api_client.post("/api/v1/messages/", payload(offer), format="json")

    # then
    assert response.status_code == 201, response.json()
    body = response.json()
    message = Message.objects.get(pk=body["id"])
    code = message.links.get().code
    assert body["links"] == [{"code": code, "short_url": f"https://sh.example/{code}"}]
    assert body["campaign"] == "spring-sale"
    assert body["creative"] == "spring"
    assert body["offer"] == offer.pk
    assert message.contact.phone == "+12015550001"


@pytest.mark.django_db
def test_post_message_again_with_the_same_external_id_returns_the_same_message(api_client, catalog):
    # given
    _, offer = catalog
    first = api_client.post("/api/v1/messages/", payload(offer), format="json").json()

    # when
    again = api_client.post("/api/v1/messages/", payload(offer), format="json")

    # then
    assert again.status_code == 201
    assert again.json()["id"] == first["id"]
    assert again.json()["links"] == first["links"]
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_bulk_answers_201_with_every_message_in_order_and_is_idempotent(api_client, catalog):
    # given
    _, offer = catalog
    items = [payload(offer, number) for number in range(50)]

    # when
    first = api_client.post("/api/v1/messages/bulk/", items, format="json")
    again = api_client.post("/api/v1/messages/bulk/", items, format="json")

    # then
    assert first.status_code == 201, first.json()
    assert [m["external_id"] for m in first.json()] == [f"send-{n}" for n in range(50)]
    assert all(len(m["links"]) == 1 for m in first.json())
    assert again.status_code == 201
    assert again.json() == first.json()
    assert Message.objects.count() == 50
    assert Link.objects.count() == 50


@pytest.mark.django_db
def test_bulk_accepts_an_items_object_too(api_client, catalog):
    # given
    _, offer = catalog

    # when
    response = api_client.post(
        "/api/v1/messages/bulk/", {"items": [payload(offer, 1, links=2)]}, format="json"
    )

    # then
    assert response.status_code == 201, response.json()
    assert len(response.json()[0]["links"]) == 2


@pytest.mark.django_db
@override_settings(MESSAGES_BULK_MAX=5)
def test_bulk_over_the_limit_is_a_400_and_writes_nothing(api_client, catalog):
    # given
    _, offer = catalog

    # when
    response = api_client.post(
        "/api/v1/messages/bulk/", [payload(offer, n) for n in range(6)], format="json"
    )

    # then
    assert response.status_code == 400
    assert "items" in response.json()["fields"]
    assert "At most 5" in response.json()["error"]
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_bulk_with_one_bad_phone_names_the_item_and_field_and_writes_nothing(api_client, catalog):
    # given
    _, offer = catalog
    items = [payload(offer, n) for n in range(3)]
    items[2]["contact"] = {"phone": "call me maybe"}

    # when
    response = api_client.post("/api/v1/messages/bulk/", items, format="json")

    # then
    assert response.status_code == 400
    body = response.json()
    assert set(body["fields"]["items"]) == {"2"}
    assert "phone" in body["fields"]["items"]["2"]["contact"]
    assert "phone" in body["error"]
    assert Message.objects.count() == 0
    assert Contact.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "path"),
    [
        ({"contact": {"phone": "+1 000"}}, ("contact", "phone")),
        ({"contact": {"email": "nope"}}, ("contact", "email")),
        ({"contact": {}}, ("contact",)),
        ({"contact": {"phone": "+12015550001", "fax": "1"}}, ("contact", "fax")),
        ({"channel": "pigeon"}, ("channel",)),
        ({"offer": "one"}, ("offer",)),
        ({"sent_at": "yesterday"}, ("sent_at",)),
        ({"sent_at": None}, ("sent_at",)),
        ({"colour": "blue"}, ("colour",)),
        ({"links": 0}, ("links",)),
    ],
)
def test_bad_message_is_a_400_naming_the_field(api_client, catalog, overrides, path):
    # given
    _, offer = catalog

    # when
    response = api_client.post("/api/v1/messages/", payload(offer, **overrides), format="json")

    # then
    assert response.status_code == 400, response.json()
    body = response.json()
    node = body["fields"]
    for part in path:
        assert part in node, body
        node = node[part]
    assert path[-1] in body["error"] or path[0] in body["error"]
    assert Message.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/messages/", "/api/v1/messages/bulk/"])
@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"offer": "1"}, "offer"), ({"offer": True}, "offer"), ({"campaign": 7}, "campaign")],
)
def test_a_value_of_another_json_type_than_documented_is_a_400(
    api_client, catalog, url, overrides, field
):
    # given: what the OpenAPI document calls an integer or a string, sent as another type
    _, offer = catalog
    body = payload(offer, **overrides)

    # when
    response = api_client.post(url, [body] if url.endswith("bulk/") else body, format="json")

    # then
    assert response.status_code == 400, response.json()
    assert field in json.dumps(response.json()["fields"])
    assert Message.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["campaign", "creative", "offer"])
def test_a_message_naming_an_unknown_campaign_creative_or_offer_is_a_404_naming_it(
    api_client, catalog, field
):
    # given
    _, offer = catalog
    unknown: dict[str, Any] = {"campaign": "unknown", "creative": "unknown", "offer": 999999}

    # when
    response = api_client.post(
        "/api/v1/messages/", payload(offer, **{field: unknown[field]}), format="json"
    )

    # then
    assert response.status_code == 404, response.json()
    assert field in response.json()["fields"]
    assert field in response.json()["error"]
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_missing_fields_are_named(api_client, catalog):
    # when
    response = api_client.post("/api/v1/messages/", {}, format="json")

    # then
    assert response.status_code == 400
    assert {"contact", "channel", "campaign", "creative", "offer", "sent_at"} <= set(
        response.json()["fields"]
    )


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/messages/", "/api/v1/messages/bulk/"])
def test_malformed_json_is_a_400(api_client, catalog, url):
    # when
    response = api_client.post(url, data='{"contact": ', content_type="application/json")

    # then
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


@pytest.mark.django_db
def test_bulk_that_is_not_a_list_is_a_400(api_client, catalog):
    # when
    response = api_client.post(
        "/api/v1/messages/bulk/", data=json.dumps("hello"), content_type="application/json"
    )

    # then
    assert response.status_code == 400
    assert "items" in response.json()["fields"]


@pytest.mark.django_db
def test_messages_list_is_paginated_with_links_and_filters(api_client):
    # given
    links = [LinkFactory.create() for _ in range(3)]
    wanted = links[1].message

    # when
    page = api_client.get("/api/v1/messages/?page_size=2")
    filtered = api_client.get(f"/api/v1/messages/?campaign={wanted.campaign.slug}")
    detail = api_client.get(f"/api/v1/messages/{wanted.pk}/")

    # then
    assert page.status_code == 200
    assert page.json()["count"] == 3
    assert len(page.json()["results"]) == 2
    assert page.json()["next"] is not None
    assert page.json()["previous"] is None
    assert [m["id"] for m in filtered.json()["results"]] == [wanted.pk]
    assert detail.json()["links"][0]["code"] == links[1].code


@pytest.mark.django_db
def test_message_list_runs_a_fixed_number_of_queries(api_client, django_assert_max_num_queries):
    # given
    for _ in range(30):
        LinkFactory.create()

    # when
    with django_assert_max_num_queries(8):
        response = api_client.get("/api/v1/messages/?page_size=1000")

    # then
    assert len(response.json()["results"]) == 30


@pytest.mark.django_db
def test_anonymous_callers_are_refused(client, catalog):
    # when
    response = client.post(
        "/api/v1/messages/", data=json.dumps(payload(catalog[1])), content_type="application/json"
    )
    listing = client.get("/api/v1/messages/")

    # then
    assert response.status_code in (401, 403)
    assert listing.status_code in (401, 403)
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_non_staff_users_are_refused(catalog):
    # given
    user = get_user_model().objects.create_user(username="someone", password="pw-123456789")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    # when
    response = client.post("/api/v1/messages/", payload(catalog[1]), format="json")

    # then
    assert response.status_code == 403
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_a_session_login_of_staff_works_too(client, staff_user, catalog):
    # given
    client.force_login(staff_user)

    # when
    response = client.get("/api/v1/messages/")

    # then
    assert response.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/messages/", "/api/v1/messages/bulk/"])
@pytest.mark.parametrize(
    "overrides",
    [
        {"sent_at": "2026-03-01T14:00:00+02:00"},
        {"sent_at": "2026-03-01T12:00:00", "external_id": " send-1 "},
    ],
)
def test_equivalent_spellings_are_stored_alike(api_client, catalog, url, overrides):
    # given: an offset time, a naive time (UTC), padded text
    _, offer = catalog
    body = payload(offer, **overrides)

    # when
    response = api_client.post(url, [body] if url.endswith("bulk/") else body, format="json")

    # then
    assert response.status_code == 201, response.json()
    message = response.json()[0] if url.endswith("bulk/") else response.json()
    assert message["sent_at"] == "2026-03-01T12:00:00Z"
    assert message["offer"] == offer.pk
    assert message["external_id"] == "send-1"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"external_id": "a\x00b"}, "external_id"),
        ({"campaign": "spring\x00"}, "campaign"),
        ({"contact": {"external_id": "a\x00b"}}, "contact"),
        ({"offer": 10**30}, "offer"),
        ({"links": 10**30}, "links"),
        ({"sent_at": "99999-01-01T00:00:00Z"}, "sent_at"),
        ({"campaign": "x" * 1000}, "campaign"),
    ],
)
def test_hostile_values_are_a_400_not_a_500(api_client, catalog, overrides, field):
    # given
    _, offer = catalog

    # when
    single = api_client.post("/api/v1/messages/", payload(offer, **overrides), format="json")
    bulk = api_client.post("/api/v1/messages/bulk/", [payload(offer, **overrides)], format="json")

    # then
    assert single.status_code == 400
    assert field in single.json()["fields"]
    assert bulk.status_code == 400
    assert field in bulk.json()["fields"]["items"]["0"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["campaign", "external_id"])
def test_a_list_filter_with_a_null_character_is_a_400(api_client, name):
    # when
    response = api_client.get(f"/api/v1/messages/?{name}=a%00b")

    # then
    assert response.status_code == 400
    assert name in response.json()["fields"]
