"""Mail security scanners with browser user agents, caught by behaviour in the drainer."""

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import time_machine
from django.utils import timezone

from tests.factories import ContactFactory, MessageFactory
from tests.tracking.helpers import drain, make_link
from tracking.models import Channel, Click, Link, Message

BROWSER = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/125.0.0.0 Safari/537.36"
)
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# Documentation addresses (RFC 5737): public, nobody's scanner.
SCANNER_ADDRESS = "198.51.100.23"
PERSON_ADDRESS = "203.0.113.80"

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("spool_dir")]


def email_message(**fields: Any) -> Message:
    return cast(Message, MessageFactory(channel=Channel.EMAIL, **fields))


def tap(client, link: Link, *, address: str, user_agent: str = BROWSER) -> None:
    response = client.get(f"/{link.code}", HTTP_USER_AGENT=user_agent, REMOTE_ADDR=address)
    assert response.status_code == 302


def flags_of(link: Link) -> list[tuple[bool, bool, str]]:
    return [
        (click.is_bot, click.is_preview, click.flag_reason)
        for click in Click.objects.filter(link=link).order_by("occurred_at")
    ]


def test_a_click_within_seconds_of_an_email_send_is_a_scanner_and_a_later_tap_a_person(
    client, spool_dir
):
    # given: an email sent just now
    sent_at = timezone.now()
    link = make_link(message=email_message(sent_at=sent_at))

    # when: the gateway opens the link on delivery, the reader taps it half an hour later
    tap(client, link, address=SCANNER_ADDRESS)
    drain(spool_dir)
    with time_machine.travel(sent_at + timedelta(minutes=30)):
        tap(client, link, address=PERSON_ADDRESS, user_agent=PHONE)
        drain(spool_dir)

    # then
    assert flags_of(link) == [
        (False, True, "behaviour:soon-after-send"),
        (False, False, ""),
    ]


def test_an_sms_tapped_at_once_is_still_a_person(client, spool_dir):
    # given: SMS has no gateway opening links on delivery
    link = make_link(message=MessageFactory(channel=Channel.SMS, sent_at=timezone.now()))

    # when
    tap(client, link, address=PERSON_ADDRESS, user_agent=PHONE)
    drain(spool_dir)

    # then
    assert flags_of(link) == [(False, False, "")]


def test_every_link_of_one_message_opened_within_a_second_is_a_scanner(client, spool_dir):
    # given: an email of three links, sent an hour ago
    message = email_message(sent_at=timezone.now() - timedelta(hours=1))
    links = [make_link(message=message) for _ in range(3)]

    # when: a sandbox opens them one after the other, each from another address
    for number, link in enumerate(links):
        tap(client, link, address=f"198.51.100.{30 + number}")
    drain(spool_dir)

    # then
    assert [flags_of(link) for link in links] == [
        [(False, True, "behaviour:message-links-burst")]
    ] * 3


def test_many_people_on_one_link_and_the_other_link_seconds_apart_are_people(client, spool_dir):
    # given: a two-link email sent an hour ago, forwarded: many people tap its first link
    message = email_message(sent_at=timezone.now() - timedelta(hours=1))
    first, second = make_link(message=message), make_link(message=message)
    start = timezone.now()
    for number in range(6):
        with time_machine.travel(start + timedelta(milliseconds=200 * number), tick=False):
            tap(client, first, address=f"198.51.100.{40 + number}", user_agent=PHONE)

    # when: someone taps the second link 3 s after the last of them (the window is 2 s)
    with time_machine.travel(start + timedelta(seconds=4), tick=False):
        tap(client, second, address=PERSON_ADDRESS, user_agent=PHONE)
    drain(spool_dir)

    # then
    assert flags_of(first) == [(False, False, "")] * 6
    assert flags_of(second) == [(False, False, "")]


def test_a_burst_split_over_two_drains_flags_the_click_already_stored(client, spool_dir):
    # given: a two-link email sent an hour ago; the first link's click is already stored
    message = email_message(sent_at=timezone.now() - timedelta(hours=1))
    first, second = make_link(message=message), make_link(message=message)
    tap(client, first, address=SCANNER_ADDRESS)
    drain(spool_dir)
    assert flags_of(first) == [(False, False, "")]

    # when: the second link a moment later, in the next batch
    tap(client, second, address=SCANNER_ADDRESS)
    drain(spool_dir)

    # then
    assert flags_of(first) == [(False, True, "behaviour:message-links-burst")]
    assert flags_of(second) == [(False, True, "behaviour:message-links-burst")]


def test_a_burst_across_midnight_at_a_month_end_flags_both_months_clicks(client, spool_dir):
    # given: a two-link email; the first link opened half a second before a month ends
    # (clicks are stored in one partition per month)
    month_end = datetime(2026, 1, 31, 23, 59, 59, 500_000, tzinfo=UTC)
    message = email_message(sent_at=month_end - timedelta(hours=1))
    first, second = make_link(message=message), make_link(message=message)
    with time_machine.travel(month_end, tick=False):
        tap(client, first, address=SCANNER_ADDRESS)
        drain(spool_dir)

    # when: the second link a second later, in the next month and the next batch
    with time_machine.travel(month_end + timedelta(seconds=1), tick=False):
        tap(client, second, address=SCANNER_ADDRESS)
        drain(spool_dir)

    # then
    assert flags_of(first) == [(False, True, "behaviour:message-links-burst")]
    assert flags_of(second) == [(False, True, "behaviour:message-links-burst")]


def test_one_link_tapped_twice_is_a_person(client, spool_dir):
    # given
    link = make_link(message=email_message(sent_at=timezone.now() - timedelta(hours=1)))

    # when: a double tap on the same link is no burst of links
    tap(client, link, address=PERSON_ADDRESS, user_agent=PHONE)
    tap(client, link, address=PERSON_ADDRESS, user_agent=PHONE)
    drain(spool_dir)

    # then
    assert [flags[:2] for flags in flags_of(link)] == [(False, False), (False, False)]


def test_one_address_clicking_many_contacts_links_is_a_scanner(client, spool_dir, settings):
    # given: ten contacts of one company, each sent an SMS an hour ago
    settings.CLICK_SCANNER_SHARED_ADDRESS_CONTACTS = 10
    sent_at = timezone.now() - timedelta(hours=1)
    links = [
        make_link(message=MessageFactory(contact=ContactFactory(), sent_at=sent_at))
        for _ in range(10)
    ]
    other = make_link(message=MessageFactory(sent_at=sent_at))

    # when: one address and agent opens all ten; someone else opens their own link
    for link in links:
        tap(client, link, address=SCANNER_ADDRESS)
    tap(client, other, address=PERSON_ADDRESS)
    drain(spool_dir)

    # then
    assert {flags_of(link)[0] for link in links} == {(False, True, "behaviour:shared-address")}
    assert flags_of(other) == [(False, False, "")]


def test_nine_contacts_from_one_address_are_still_people(client, spool_dir, settings):
    # given: a threshold of ten
    settings.CLICK_SCANNER_SHARED_ADDRESS_CONTACTS = 10
    sent_at = timezone.now() - timedelta(hours=1)
    links = [make_link(message=MessageFactory(sent_at=sent_at)) for _ in range(9)]

    # when
    for link in links:
        tap(client, link, address=SCANNER_ADDRESS)
    drain(spool_dir)

    # then
    assert {flags_of(link)[0] for link in links} == {(False, False, "")}


@pytest.mark.parametrize(
    ("address", "vendor"),
    [
        # Ranges from tracking/data/scanner_networks.csv, each with its vendor's page.
        ("205.139.110.61", "mimecast"),
        ("209.222.82.7", "barracuda"),
        ("148.163.150.9", "proofpoint"),
    ],
)
def test_a_click_from_a_published_scanner_range_is_a_scanner(client, spool_dir, address, vendor):
    # given
    link = make_link(message=MessageFactory(sent_at=timezone.now() - timedelta(days=1)))

    # when
    tap(client, link, address=address)
    drain(spool_dir)

    # then: decided on the truncated address that is stored
    click = Click.objects.get(link=link)
    assert click.ip == ".".join(address.split(".")[:3]) + ".0"
    assert (click.is_preview, click.flag_reason) == (True, f"behaviour:scanner-network:{vendor}")


def test_loopback_clicks_are_never_judged_by_behaviour(client, spool_dir):
    # given: an email sent just now, its two links
    message = email_message(sent_at=timezone.now())
    links = [make_link(message=message) for _ in range(2)]

    # when: both clicked at once through an undeclared local proxy
    for link in links:
        tap(client, link, address="127.0.0.1")
    drain(spool_dir)

    # then
    assert [flags_of(link) for link in links] == [[(False, False, "")]] * 2


def test_thresholds_are_settings(client, spool_dir, settings):
    # given: the after-send signal on for SMS too
    settings.CLICK_SCANNER_AFTER_SEND_CHANNELS = ["email", "sms"]
    link = make_link(message=MessageFactory(channel=Channel.SMS, sent_at=timezone.now()))

    # when
    tap(client, link, address=SCANNER_ADDRESS)
    drain(spool_dir)

    # then
    assert flags_of(link) == [(False, True, "behaviour:soon-after-send")]


def test_a_known_bot_stays_a_bot(client, spool_dir):
    # given
    link = make_link(message=email_message(sent_at=timezone.now()))

    # when
    tap(client, link, address=SCANNER_ADDRESS, user_agent="curl/8.5.0")
    drain(spool_dir)

    # then
    assert flags_of(link)[0][:2] == (True, False)
