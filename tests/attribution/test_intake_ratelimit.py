"""Failed postback tokens are rate limited per network and client address."""

import pytest

from tests.factories import TEST_POSTBACK_TOKEN, NetworkFactory

pytestmark = pytest.mark.django_db


def _postback(client, network, *, token: str, ip: str):
    return client.get(
        f"/postback/{network.slug}/", {"token": token, "click_id": "abc123"}, REMOTE_ADDR=ip
    )


def _fail_twenty_times(client, network, *, ip: str) -> list[int]:
    return [_postback(client, network, token=f"guess-{n}", ip=ip).status_code for n in range(20)]


def test_after_twenty_wrong_tokens_even_the_right_token_gets_429_with_a_reason(client, settings):
    # given
    settings.POSTBACK_FAILED_TOKEN_LIMIT = 20
    settings.POSTBACK_FAILED_TOKEN_WINDOW_SECONDS = 300
    network = NetworkFactory.create()
    failures = _fail_twenty_times(client, network, ip="203.0.113.7")

    # when
    response = _postback(client, network, token=TEST_POSTBACK_TOKEN, ip="203.0.113.7")

    # then
    assert failures == [403] * 20
    assert response.status_code == 429
    assert response.json() == {"error": "too many failed token attempts, retry later"}
    assert response["Retry-After"] == "300"


def test_a_missing_token_counts_as_a_failure(client, settings):
    # given
    settings.POSTBACK_FAILED_TOKEN_LIMIT = 3
    network = NetworkFactory.create()
    for _ in range(3):
        client.get(f"/postback/{network.slug}/", {"click_id": "abc"}, REMOTE_ADDR="203.0.113.8")

    # when
    response = _postback(client, network, token=TEST_POSTBACK_TOKEN, ip="203.0.113.8")

    # then
    assert response.status_code == 429


def test_another_address_is_not_limited(client, settings):
    # given
    settings.POSTBACK_FAILED_TOKEN_LIMIT = 20
    network = NetworkFactory.create()
    _fail_twenty_times(client, network, ip="203.0.113.9")

    # when
    response = _postback(client, network, token=TEST_POSTBACK_TOKEN, ip="198.51.100.9")

    # then
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"


def test_another_network_is_not_limited(client, settings):
    # given
    settings.POSTBACK_FAILED_TOKEN_LIMIT = 20
    network, other = NetworkFactory.create(), NetworkFactory.create()
    _fail_twenty_times(client, network, ip="203.0.113.10")

    # when
    response = _postback(client, other, token=TEST_POSTBACK_TOKEN, ip="203.0.113.10")

    # then
    assert response.status_code == 200
