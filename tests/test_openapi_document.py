"""The OpenAPI document lists every error answer an operation can give, with its body."""

import pytest

ERROR_REF = "#/components/schemas/Error"


@pytest.fixture
def document(api_client):
    response = api_client.get("/api/v1/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_operation_documents_its_error_answers_with_the_error_body(document):
    # then
    assert document["components"]["schemas"]["Error"]["required"] == ["error"]
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        expected = {"401", "403", "405", "406"}
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        if "{" in path:
            expected.add("404")
        assert expected <= set(responses), (method, path, sorted(responses))
        for code in expected:
            schema = responses[code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": ERROR_REF}, (method, path, code)


def test_an_api_path_that_matches_nothing_answers_the_json_error(api_client):
    # when
    response = api_client.get("/api/v1/offers/not-a-number/")

    # then
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_with_debug_on_as_make_run_serves_an_unknown_api_path_is_the_json_error(
    api_client, settings, method
):
    # given: `make run` serves with DEBUG on, where Django's handler404 gives way to its HTML page
    settings.DEBUG = True

    # when
    response = getattr(api_client, method)("/api/v1/offers/null,null/")

    # then
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}


def _walk(schema):
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _walk(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _walk(value)


def test_the_document_is_openapi_3_1_json_schema_with_no_3_0_nullable(document):
    # then: null is a type (`["string", "null"]`), as JSON Schema validators read it
    assert document["openapi"] == "3.1.0"
    assert not [schema for schema in _walk(document) if "nullable" in schema]
    page = document["components"]["schemas"]["PaginatedOfferList"]["properties"]["next"]
    assert page["type"] == ["string", "null"]


def test_request_objects_with_free_keys_say_a_key_cannot_hold_nul(document, api_client):
    # given: status_map and parameter_aliases are stored as jsonb, which refuses NUL
    schemas = document["components"]["schemas"]
    network = api_client.post(
        "/api/v1/networks/", {"slug": "acme", "name": "Acme"}, format="json"
    ).json()

    # when
    refused = api_client.patch(
        f"/api/v1/networks/{network['id']}/",
        {"status_map": {"paid\x00": "approved"}},
        format="json",
    )

    # then: the document states it, and the server refuses it as the document says
    for name in ("NetworkRequest", "PatchedNetworkRequest"):
        for field in ("status_map", "parameter_aliases"):
            schema = schemas[name]["properties"][field]
            assert schema["propertyNames"] == {"pattern": "^[^\\x00]*$"}, (name, field)
    assert refused.status_code == 400
    assert "status_map" in refused.json()["fields"]
