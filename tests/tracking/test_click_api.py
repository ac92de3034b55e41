from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from tests.factories import ClickFactory, LinkFactory
from tracking.models import Click, Link

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


def make_link(**fields: Any) -> Link:
    return cast(Link, LinkFactory(**fields))


def make_click(**fields: Any) -> Click:
    return cast(Click, ClickFactory(**fields))


@pytest.mark.django_db
def test_import_answers_the_new_click_ids_in_the_order_given(api_client):
    # given
    first, second = make_link(), make_link()
    items = [
        {
            "code": second.code,
            "occurred_at": "2026-01-05T10:00:00Z",
            "user_agent": PHONE,
            "ip": "203.0.113.77",
        },
        {
            "code": first.code,
            "occurred_at": "2026-01-05T11:30:00+02:00",
            "user_agent": PHONE,
            "ip": "2001:db8:1:2::9",
        },
        {
            "code": second.code,
            "occurred_at": "2026-01-05T10:20:00Z",
            "user_agent": PHONE,
            "ip": "203.0.113.5",
        },
    ]

    # when
    response = api_client.post("/api/v1/clicks/import/", items, format="json")

    # then
    assert response.status_code == 201, response.json()
    click_ids = response.json()["click_ids"]
    assert len(click_ids) == 3
    clicks = [Click.objects.get(click_id=click_id) for click_id in click_ids]
    assert [click.link_id for click in clicks] == [second.pk, first.pk, second.pk]
    assert clicks[0].occurred_at == datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    assert clicks[1].occurred_at == datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    assert [click.ip for click in clicks] == ["203.0.113.0", "2001:db8:1::", "203.0.113.0"]
    assert all(click.is_imported for click in clicks)
    assert (clicks[1].message_id, clicks[1].contact_id, clicks[1].offer_id) == (
        first.message_id,
        first.message.contact_id,
        first.message.offer_id,
    )
    # Same link, address and agent twenty minutes later: flagged like a live click.
    assert [click.is_duplicate for click in clicks] == [False, False, True]


@pytest.mark.django_db
def test_imported_bots_and_previews_are_flagged_like_live_ones(api_client):
    # given
    link = make_link()
    items = [
        {
            "code": link.code,
            "occurred_at": "2026-01-05T10:00:00Z",
            "user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "ip": "203.0.113.1",
        },
        {
            "code": link.code,
            "occurred_at": "2026-01-05T10:00:01Z",
            "user_agent": "WhatsApp/2.23.20.0 A",
            "ip": "203.0.113.1",
        },
    ]

    # when
    response = api_client.post("/api/v1/clicks/import/", items, format="json")

    # then
    bot, preview = (Click.objects.get(click_id=i) for i in response.json()["click_ids"])
    assert bot.is_bot
    assert preview.is_preview


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad_item", "field"),
    [
        ({"code": ""}, "code"),
        ({"code": "abc\x00def"}, "code"),
        ({"code": "../../etc"}, "code"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": None}, "occurred_at"),
        ({"ip": "999.1.1.1"}, "ip"),
        ({"ip": 12345}, "ip"),
        ({"user_agent": ["not", "a", "string"]}, "user_agent"),
    ],
)
def test_a_bad_item_is_named_and_nothing_is_written(api_client, bad_item, field):
    # given
    link = make_link()
    good = {
        "code": link.code,
        "occurred_at": "2026-01-05T10:00:00Z",
        "user_agent": PHONE,
        "ip": "203.0.113.1",
    }
    items = [good, good, {**good, **bad_item}]

    # when
    response = api_client.post("/api/v1/clicks/import/", items, format="json")

    # then
    assert response.status_code == 400
    body = response.json()
    assert (body["index"], body["field"]) == (2, field)
    assert "item 2" in body["error"]
    assert not Click.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("bad_item", "field", "status"),
    [
        ({"code": "nosuchcode"}, "code", 404),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at", 409),
        ({"colour": "blue"}, "colour", 400),
    ],
)
def test_an_unknown_code_a_future_time_or_an_unknown_field_is_refused_naming_it(
    api_client, bad_item, field, status
):
    # given
    link = make_link()
    good = {"code": link.code, "occurred_at": "2026-01-05T10:00:00Z"}

    # when
    response = api_client.post(
        "/api/v1/clicks/import/", [good, {**good, **bad_item}], format="json"
    )

    # then: no link by that code is 404, a time after now conflicts with the clock (409)
    assert response.status_code == status, response.json()
    assert (response.json()["index"], response.json()["field"]) == (1, field)
    assert not Click.objects.exists()


@pytest.mark.django_db
def test_import_refuses_more_than_the_limit(api_client, settings):
    # given
    settings.CLICKS_IMPORT_MAX = 2
    link = make_link()
    item = {
        "code": link.code,
        "occurred_at": "2026-01-05T10:00:00Z",
        "user_agent": PHONE,
        "ip": "203.0.113.1",
    }

    # when
    response = api_client.post("/api/v1/clicks/import/", [item] * 3, format="json")

    # then
    assert response.status_code == 400
    assert "at most 2" in response.json()["error"]
    assert not Click.objects.exists()


@pytest.mark.django_db
def test_import_of_ten_thousand_clicks_is_one_call(api_client):
    # given
    links = [make_link() for _ in range(5)]
    start = datetime(2026, 1, 5, tzinfo=UTC)
    items = [
        {
            "code": links[n % 5].code,
            "occurred_at": (start + timedelta(seconds=n)).isoformat(),
            "user_agent": PHONE,
            "ip": f"10.{n % 250}.{n // 250 % 250}.1",
        }
        for n in range(10_000)
    ]

    # when
    response = api_client.post("/api/v1/clicks/import/", items, format="json")

    # then
    assert response.status_code == 201
    assert len(set(response.json()["click_ids"])) == 10_000
    assert Click.objects.filter(is_imported=True).count() == 10_000


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{"code": "x"}, "text", []])
def test_import_needs_a_non_empty_list(api_client, body):
    # when
    response = api_client.post("/api/v1/clicks/import/", body, format="json")

    # then
    assert response.status_code == 400
    assert response.json()["error"]


@pytest.mark.django_db
def test_clicks_of_a_message_newest_first(api_client):
    # given
    link = make_link()
    other = make_link()
    now = datetime(2026, 2, 1, 12, tzinfo=UTC)
    old = make_click(link=link, occurred_at=now - timedelta(hours=2))
    new = make_click(link=link, occurred_at=now)
    make_click(link=other, occurred_at=now)

    # when
    by_message = api_client.get(f"/api/v1/clicks/?message={link.message_id}")
    by_code = api_client.get(f"/api/v1/clicks/?code={link.code}")

    # then
    for response in (by_message, by_code):
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 2
        assert [row["click_id"] for row in body["results"]] == [new.click_id, old.click_id]
        assert body["results"][0]["code"] == link.code


@pytest.mark.django_db
def test_click_detail_by_click_id(api_client):
    # given
    click = make_click()

    # when
    found = api_client.get(f"/api/v1/clicks/{click.click_id}/")
    missing = api_client.get("/api/v1/clicks/no-such-click-id-000/")

    # then
    assert found.status_code == 200
    assert found.json()["click_id"] == click.click_id
    assert found.json()["message"] == click.message_id
    assert missing.status_code == 404


@pytest.mark.django_db
def test_click_api_is_staff_only(client):
    # when
    response = client.get("/api/v1/clicks/")

    # then
    assert response.status_code in (401, 403)


@pytest.mark.django_db
def test_message_filter_must_be_an_id(api_client):
    # when
    response = api_client.get("/api/v1/clicks/?message=abc")

    # then
    assert response.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/clicks/?code=%00",
        "/api/v1/clicks/?code=" + "x" * 500,
        "/api/v1/clicks/?message=%00",
        "/api/v1/clicks/?message=99999999999999999999999999",
        "/api/v1/clicks/a%00b/",
    ],
)
def test_hostile_filters_are_4xx_never_5xx(api_client, url):
    # when
    response = api_client.get(url)

    # then
    assert 400 <= response.status_code < 500 or response.json()["count"] == 0
