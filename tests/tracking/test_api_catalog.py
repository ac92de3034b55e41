import pytest
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

from tests.factories import CampaignFactory, CreativeFactory, LinkFactory
from tracking.models import Campaign, Creative


@pytest.mark.django_db
def test_create_campaign_answers_201_with_its_id(api_client):
    # when
    response = api_client.post(
        "/api/v1/campaigns/", {"slug": "black-friday", "name": "Black Friday"}, format="json"
    )

    # then
    assert response.status_code == 201, response.json()
    campaign = Campaign.objects.get(pk=response.json()["id"])
    assert campaign.slug == "black-friday"
    assert response.json()["name"] == "Black Friday"


@pytest.mark.django_db
def test_create_creative_answers_201_and_belongs_to_its_campaign(api_client):
    # given
    campaign = CampaignFactory.create()

    # when
    response = api_client.post(
        "/api/v1/creatives/",
        {"campaign": campaign.pk, "slug": "v1", "name": "Version 1", "body": "Hi {link}"},
        format="json",
    )

    # then
    assert response.status_code == 201, response.json()
    creative = Creative.objects.get(pk=response.json()["id"])
    assert creative.campaign == campaign
    assert creative.body == "Hi {link}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "has space", "name": "x"}, "slug"),
        ({"slug": "ok"}, "name"),
        ({"slug": "ok", "name": "x", "owner": "me"}, "owner"),
        ({"slug": 12, "name": ["a", "list"]}, "name"),
        # the length the OpenAPI document states counts the spaces sent, too
        ({"slug": "ok", "name": "\u0085" + "x" * 200}, "name"),
    ],
)
def test_bad_campaign_is_a_400_naming_the_field(api_client, body, field):
    # given
    CampaignFactory.create(slug="taken")

    # when
    response = api_client.post("/api/v1/campaigns/", body, format="json")

    # then
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert Campaign.objects.count() == 1


@pytest.mark.django_db
def test_a_creative_of_an_unknown_campaign_or_a_taken_slug_is_refused_naming_it(api_client):
    # given
    existing = CreativeFactory.create(slug="v1")

    # when
    unknown_campaign = api_client.post(
        "/api/v1/creatives/", {"campaign": 99999, "slug": "v2", "name": "x"}, format="json"
    )
    duplicate = api_client.post(
        "/api/v1/creatives/",
        {"campaign": existing.campaign_id, "slug": "v1", "name": "x"},
        format="json",
    )

    # then: well-formed, but naming what does not exist, or what exists already
    assert unknown_campaign.status_code == 404
    assert "campaign" in unknown_campaign.json()["fields"]
    assert duplicate.status_code == 409
    assert "slug" in duplicate.json()["error"]
    assert Creative.objects.count() == 1


@pytest.mark.django_db
def test_a_taken_campaign_slug_is_a_409_naming_it(api_client):
    # given
    CampaignFactory.create(slug="taken")

    # when
    response = api_client.post("/api/v1/campaigns/", {"slug": "taken", "name": "x"}, format="json")

    # then
    assert response.status_code == 409
    assert response.json()["fields"] == {"slug": ["campaign with this slug already exists."]}
    assert Campaign.objects.count() == 1


@pytest.mark.django_db
def test_campaigns_and_creatives_are_listed_paginated_and_shown(api_client):
    # given
    creatives = [CreativeFactory.create() for _ in range(3)]

    # when
    campaigns = api_client.get("/api/v1/campaigns/?page_size=2")
    listing = api_client.get("/api/v1/creatives/")
    detail = api_client.get(f"/api/v1/creatives/{creatives[0].pk}/")
    campaign = api_client.get(f"/api/v1/campaigns/{creatives[0].campaign_id}/")
    missing = api_client.get("/api/v1/campaigns/999999/")

    # then
    assert campaigns.json()["count"] == 3
    assert len(campaigns.json()["results"]) == 2
    assert listing.json()["count"] == 3
    assert detail.json()["slug"] == creatives[0].slug
    assert campaign.json()["slug"] == creatives[0].campaign.slug
    assert missing.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/v1/campaigns/", "/api/v1/creatives/"])
def test_catalog_is_staff_only(client, url):
    # when
    response = client.post(url, {"slug": "x", "name": "x"})

    # then
    assert response.status_code in (401, 403)


@pytest.mark.django_db
def test_openapi_schema_documents_the_tracking_endpoints(api_client):
    # when
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/json")

    # then
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/campaigns/",
        "/api/v1/creatives/{id}/",
        "/api/v1/messages/",
        "/api/v1/messages/bulk/",
        "/api/v1/messages/{id}/",
    ]:
        assert path in paths


@pytest.mark.django_db
def test_api_docs_page_loads_its_assets_from_our_own_static_files(admin_client_logged_in):
    # when
    response = admin_client_logged_in.get("/api/v1/docs/")

    # then
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/drf_spectacular_sidecar/redoc/" in page
    assert "cdn" not in page.lower()


def test_openapi_schema_of_the_tracking_endpoints_has_no_warnings():
    # given
    GENERATOR_STATS.reset()

    # when
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)

    # then
    problems = [
        message
        for message in [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
        if "tracking/apis/" in message or "tracking/serializers" in message
    ]
    assert problems == []
    assert "/api/v1/messages/bulk/" in schema["paths"]


@pytest.mark.django_db
def test_patching_a_campaign_and_a_creative_changes_them(api_client):
    # given
    creative = CreativeFactory.create(slug="old")
    other_campaign = CampaignFactory.create()

    # when
    campaign_answer = api_client.patch(
        f"/api/v1/campaigns/{creative.campaign_id}/", {"slug": "spring"}, format="json"
    )
    creative_answer = api_client.patch(
        f"/api/v1/creatives/{creative.pk}/",
        {"slug": "new", "body": "Hello {link}", "campaign": other_campaign.pk},
        format="json",
    )

    # then
    assert campaign_answer.status_code == 200, campaign_answer.json()
    assert campaign_answer.json()["slug"] == "spring"
    assert creative_answer.status_code == 200, creative_answer.json()
    creative.refresh_from_db()
    assert (creative.slug, creative.body, creative.campaign) == (
        "new",
        "Hello {link}",
        other_campaign,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "payload", "field", "status"),
    [
        ("campaigns", {"slug": "taken"}, "slug", 409),
        ("campaigns", {"slug": "has space"}, "slug", 400),
        ("campaigns", {"owner": "me"}, "owner", 400),
        ("creatives", {"slug": "taken-creative"}, "slug", 409),
        ("creatives", {"campaign": 999999}, "campaign", 404),
        ("creatives", {"name": ""}, "name", 400),
    ],
)
def test_a_bad_catalog_patch_is_refused_naming_the_field(api_client, kind, payload, field, status):
    # given
    CampaignFactory.create(slug="taken")
    creative = CreativeFactory.create()
    CreativeFactory.create(campaign=creative.campaign, slug="taken-creative")
    target = creative.campaign_id if kind == "campaigns" else creative.pk

    # when
    response = api_client.patch(f"/api/v1/{kind}/{target}/", payload, format="json")

    # then: 409 for a taken slug, 404 for an unknown campaign, else 400
    assert response.status_code == status, response.json()
    assert field in response.json()["fields"]
    assert field in response.json()["error"]


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["campaigns", "creatives"])
def test_patching_an_unknown_catalog_id_is_404(api_client, kind):
    # when
    response = api_client.patch(f"/api/v1/{kind}/999999/", {"name": "x"}, format="json")

    # then
    assert response.status_code == 404


@pytest.mark.django_db
def test_a_patched_slug_is_in_the_next_redirect_of_this_process(api_client, client, spool_dir):
    # given: a link this process has already redirected (and cached)
    link = LinkFactory.create(
        message__offer__destination_url="https://offer.example.com/?c={campaign}&cr={creative}"
    )
    before = client.get(f"/{link.code}")["Location"]

    # when
    api_client.patch(
        f"/api/v1/campaigns/{link.message.campaign_id}/", {"slug": "new-campaign"}, format="json"
    )
    api_client.patch(
        f"/api/v1/creatives/{link.message.creative_id}/", {"slug": "new-creative"}, format="json"
    )

    # then
    after = client.get(f"/{link.code}")["Location"]
    assert "c=new-campaign" not in before
    assert after == "https://offer.example.com/?c=new-campaign&cr=new-creative"
