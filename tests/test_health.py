import pytest
from django.db import connections
from django.test import override_settings

from harness.processes import free_port


@pytest.fixture(autouse=True)
def empty_click_spool(settings, tmp_path):
    """A spool of these tests' own: clicks other tests left behind cannot make them degraded."""
    settings.CLICK_SPOOL_DIR = tmp_path / "click-spool"
    settings.CLICK_SPOOL_DIR.mkdir()
    return settings.CLICK_SPOOL_DIR


@pytest.mark.django_db
def test_healthz_reports_database_and_redis_up(client):
    # when
    response = client.get("/healthz")

    # then
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is True
    assert isinstance(body["redis"]["queue_depth"], int)


@pytest.mark.django_db
def test_healthz_answers_503_when_redis_is_down(client):
    # given: a Redis address where nothing listens
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        # when
        response = client.get("/healthz")

    # then
    assert response.status_code == 503
    assert response.json()["redis"]["ok"] is False
    assert response.json()["database"]["ok"] is True


@pytest.mark.django_db(transaction=True)
def test_healthz_answers_503_when_the_database_is_down(client):
    # given: this process's connection pointed at a port where nothing listens
    # (the shared PostgreSQL server keeps running for everyone else)
    database = connections["default"]
    saved = dict(database.settings_dict)
    database.close()
    database.settings_dict.update(HOST="127.0.0.1", PORT=str(free_port()))
    try:
        # when
        response = client.get("/healthz")
    finally:
        database.close()
        database.settings_dict.clear()
        database.settings_dict.update(saved)

    # then
    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False
    assert response.json()["redis"]["ok"] is True
    assert response.json()["status"] != "ok"
