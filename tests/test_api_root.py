"""`GET /api/v1/` lists the API's endpoints, for staff only."""

import pytest
from rest_framework.test import APIClient


@pytest.mark.django_db
def test_the_api_root_lists_every_endpoint_with_its_methods(api_client):
    # when
    response = api_client.get("/api/v1/")

    # then
    assert response.status_code == 200
    endpoints = {endpoint["path"]: endpoint for endpoint in response.json()["endpoints"]}
    for path in [
        "/api/v1/networks/",
        "/api/v1/offers/",
        "/api/v1/campaigns/",
        "/api/v1/creatives/",
        "/api/v1/messages/",
        "/api/v1/messages/bulk/",
        "/api/v1/clicks/import/",
        "/api/v1/conversions/",
        "/api/v1/reports/daily/",
        "/api/v1/schema/",
    ]:
        assert path in endpoints, path
    assert endpoints["/api/v1/networks/"]["url"] == "http://testserver/api/v1/networks/"
    assert set(endpoints["/api/v1/offers/"]["methods"]) == {"GET", "POST"}
    assert "PATCH" in endpoints["/api/v1/offers/{pk}/"]["methods"]
    # and every listed URL answers
    for endpoint in endpoints.values():
        if "url" in endpoint and "GET" in endpoint["methods"]:
            assert api_client.get(endpoint["path"]).status_code != 404, endpoint


@pytest.mark.django_db
def test_the_api_root_is_for_staff_only(django_user_model):
    # given
    client = APIClient()
    customer = django_user_model.objects.create_user(username="customer", password="x" * 12)

    # when
    anonymous = client.get("/api/v1/")
    client.force_authenticate(customer)
    not_staff = client.get("/api/v1/")

    # then
    assert anonymous.status_code in (401, 403)
    assert not_staff.status_code == 403
    assert "error" in not_staff.json()
