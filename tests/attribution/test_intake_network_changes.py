"""A network changed by another process (admin, API, another web worker) reaches the intake."""

import time

import pytest

from attribution.models import Network
from attribution.services.intake import NETWORK_GENERATION_KEY, token_hash
from config.redis_client import redis_client, redis_key
from tests.factories import TEST_POSTBACK_TOKEN, NetworkFactory

pytestmark = pytest.mark.django_db

CHECK_SECONDS = 0.3


def test_a_token_rotated_in_another_process_is_enforced_within_the_check_interval(client, settings):
    # given: this process has the network cached
    settings.POSTBACK_NETWORK_CHECK_SECONDS = CHECK_SECONDS
    network = NetworkFactory.create(slug="elsewhere")
    params = {"token": TEST_POSTBACK_TOKEN, "click_id": "c1"}
    assert client.get("/postback/elsewhere/", params).status_code == 200

    # when: another process rotates the token, which bumps the generation after its commit
    Network.objects.filter(pk=network.pk).update(
        postback_token_hash=token_hash("rotated-token-0123456789abcdef")
    )
    redis_client().set(redis_key(NETWORK_GENERATION_KEY), "bumped-by-another-process")
    time.sleep(CHECK_SECONDS + 0.1)

    # then
    assert client.get("/postback/elsewhere/", params).status_code == 403
    rotated = {**params, "token": "rotated-token-0123456789abcdef"}
    assert client.get("/postback/elsewhere/", rotated).status_code == 200
