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
