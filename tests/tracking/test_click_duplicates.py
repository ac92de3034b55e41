from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from tests.tracking.helpers import drain, make_link
from tracking.models import Click, Link

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
OTHER_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


pytestmark = pytest.mark.usefixtures("spool_dir")


def click_at(client: Client, link: Link, when: datetime, **headers: str) -> None:
    headers.setdefault("HTTP_USER_AGENT", PHONE)
    headers.setdefault("REMOTE_ADDR", "198.51.100.20")
    with time_machine.travel(when, tick=False):
        assert client.get(f"/{link.code}", **headers).status_code == 302  # type: ignore[arg-type]


def duplicate_flags(link: Link) -> list[bool]:
    return list(
        Click.objects.filter(link=link)
        .order_by("occurred_at")
        .values_list("is_duplicate", flat=True)
    )


@pytest.mark.django_db
@pytest.mark.parametrize("drained_between", [False, True], ids=["same batch", "across batches"])
@pytest.mark.parametrize(
    ("seconds_later", "duplicate"),
    [(1, True), (3599, True), (3600, True), (3601, False)],
    ids=["1s", "59m59s", "exactly 1h", "1h and 1s"],
)
def test_same_person_on_the_same_link_within_the_window_is_a_duplicate(
    client, spool_dir, seconds_later, duplicate, drained_between
):
    # given
    link = make_link()
    click_at(client, link, START)
    if drained_between:
        drain(spool_dir)

    # when
    click_at(client, link, START + timedelta(seconds=seconds_later))
    drain(spool_dir)

    # then
    assert duplicate_flags(link) == [False, duplicate]


@pytest.mark.django_db
def test_the_window_is_a_setting(client, spool_dir, settings):
    # given
    settings.CLICK_DUPLICATE_WINDOW = timedelta(minutes=10)
    link = make_link()

    # when
    click_at(client, link, START)
    click_at(client, link, START + timedelta(minutes=10))
    click_at(client, link, START + timedelta(minutes=20, seconds=1))
    drain(spool_dir)

    # then
    assert duplicate_flags(link) == [False, True, False]


@pytest.mark.django_db
def test_another_agent_another_network_or_another_link_is_not_a_duplicate(client, spool_dir):
    # given
    link = make_link()
    other_link = make_link(message=link.message)

    # when
    click_at(client, link, START)
    click_at(client, link, START + timedelta(minutes=1), HTTP_USER_AGENT=OTHER_PHONE)
    click_at(client, link, START + timedelta(minutes=2), REMOTE_ADDR="198.51.101.20")
    click_at(client, other_link, START + timedelta(minutes=3))
    # Same /24 after truncation: the same visitor as far as we may know.
    click_at(client, link, START + timedelta(minutes=4), REMOTE_ADDR="198.51.100.99")
    drain(spool_dir)

    # then
    assert duplicate_flags(link) == [False, False, False, True]
    assert duplicate_flags(other_link) == [False]


@pytest.mark.django_db
def test_a_preview_fetch_does_not_make_the_persons_click_a_duplicate(client, spool_dir):
    # given: the phone's own prefetch, then the person taps the link
    link = make_link()
    click_at(client, link, START, HTTP_SEC_PURPOSE="prefetch")

    # when
    click_at(client, link, START + timedelta(seconds=5))
    drain(spool_dir)

    # then
    first, second = Click.objects.filter(link=link).order_by("occurred_at")
    assert (first.is_preview, first.is_duplicate) == (True, False)
    assert (second.is_preview, second.is_duplicate) == (False, False)


@pytest.mark.django_db
def test_clicks_without_an_address_are_duplicates_of_each_other_across_imports(api_client):
    # given: imported history knows no address; one click already stored
    link = make_link()
    item = {"code": link.code, "user_agent": PHONE, "ip": None}
    first = api_client.post(
        "/api/v1/clicks/import/", [{**item, "occurred_at": START.isoformat()}], format="json"
    )

    # when: the same agent again 10 minutes later, and once from an address
    later = (START + timedelta(minutes=10)).isoformat()
    second = api_client.post(
        "/api/v1/clicks/import/",
        [{**item, "occurred_at": later}, {**item, "ip": "198.51.100.20", "occurred_at": later}],
        format="json",
    )

    # then
    assert (first.status_code, second.status_code) == (201, 201)
    flags = dict(Click.objects.filter(link=link).values_list("click_id", "is_duplicate"))
    no_address_again, with_address = second.json()["click_ids"]
    assert flags == {
        first.json()["click_ids"][0]: False,
        no_address_again: True,
        with_address: False,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("minutes_later", "duplicate"), [(30, True), (61, False)], ids=["30m", "1h and 1m"]
)
def test_other_agents_clicks_in_between_neither_hide_nor_make_a_duplicate(
    client, spool_dir, minutes_later, duplicate
):
    # given: the person's click, then other agents on the same link and address, each
    # stored in a batch of its own; one of them right at the person's next click
    link = make_link()
    click_at(client, link, START)
    drain(spool_dir)
    for minute in (1, 2, 40, minutes_later):
        click_at(client, link, START + timedelta(minutes=minute), HTTP_USER_AGENT=OTHER_PHONE)
        drain(spool_dir)

    # when
    click_at(client, link, START + timedelta(minutes=minutes_later, seconds=1))
    drain(spool_dir)

    # then: the other agent's own clicks are duplicates of each other within the hour
    flags = dict(Click.objects.filter(link=link).values_list("occurred_at", "is_duplicate"))
    assert flags[START + timedelta(minutes=minutes_later, seconds=1)] is duplicate
    assert flags[START] is False
    assert flags[START + timedelta(minutes=1)] is False
    assert flags[START + timedelta(minutes=2)] is True
