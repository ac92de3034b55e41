"""The intake while PostgreSQL cannot be reached: 503 with Retry-After, nothing acknowledged."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from attribution.models import Postback
from tests.factories import TEST_POSTBACK_TOKEN, NetworkFactory

pytestmark = pytest.mark.django_db(transaction=True)

PARAMS = {"token": TEST_POSTBACK_TOKEN, "click_id": "abcdefghijklmnop", "txid": "T-down"}


class Database:
    """This process's connection, pointed at a port nobody listens on and back."""

    def __init__(self) -> None:
        self.saved: dict[str, Any] = dict(connection.settings_dict)

    def down(self) -> None:
        connection.close()
        connection.settings_dict.update({"HOST": "127.0.0.1", "PORT": "1"})

    def up(self) -> None:
        connection.close()
        connection.settings_dict.update(self.saved)


@pytest.fixture
def database() -> Iterator[Database]:
    database = Database()
    yield database
    database.up()


def test_a_postback_that_cannot_be_stored_is_answered_503(client, database):
    # given: the network is known to this process
    NetworkFactory.create(slug="down")
    assert client.get("/postback/down/", {**PARAMS, "txid": "T-up"}).status_code == 200

    # when
    database.down()
    response = client.get("/postback/down/", PARAMS)

    # then
    assert response.status_code == 503
    assert response.json() == {"error": "temporarily unavailable, retry later"}
    assert int(response["Retry-After"]) > 0


def test_an_uncached_network_with_the_database_down_is_503(client, database):
    # given
    NetworkFactory.create(slug="never-seen")

    # when
    database.down()
    response = client.get("/postback/never-seen/", PARAMS)

    # then
    assert response.status_code == 503


def test_the_network_sending_again_after_the_outage_is_stored(client, database):
    # given
    NetworkFactory.create(slug="back")
    client.get("/postback/back/", {**PARAMS, "txid": "T-warm"})
    database.down()
    assert client.get("/postback/back/", PARAMS).status_code == 503

    # when
    database.up()
    response = client.get("/postback/back/", PARAMS)

    # then
    assert response.status_code == 200
    stored = Postback.objects.get(pk=response.json()["postback_id"])
    assert "txid=T-down" in stored.query_string
    assert Postback.objects.filter(query_string__contains="txid=T-down").count() == 1
