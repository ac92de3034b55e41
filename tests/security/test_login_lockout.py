"""Admin login brute force: 10 failures for one username from one address lock that pair out."""

import io
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

ATTACKER = "203.0.113.5"
PASSWORD = "operator-password"


def log_in(username: str, password: str, address: str) -> int:
    """A fresh browser posting the admin login form; the answer's status code."""
    response = Client().post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )
    return response.status_code


def fail_ten_times(username: str, address: str) -> list[int]:
    return [log_in(username, "wrong-password", address) for _ in range(10)]


@pytest.mark.django_db
def test_ten_failures_lock_out_that_username_from_that_address_even_with_the_right_password(
    staff_user,
):
    # when
    failures = fail_ten_times("operator", ATTACKER)
    right_password = log_in("operator", PASSWORD, ATTACKER)

    # then: each failure re-shows the form; the locked-out pair is refused
    assert failures[:9] == [200] * 9
    assert failures[9] in (403, 429)
    assert right_password in (403, 429)


@pytest.mark.django_db
def test_nine_failures_do_not_lock_out(staff_user):
    # when
    failures = [log_in("operator", "wrong-password", ATTACKER) for _ in range(9)]

    # then
    assert failures == [200] * 9
    assert log_in("operator", PASSWORD, ATTACKER) == 302


@pytest.mark.django_db
def test_a_lockout_leaves_other_usernames_and_other_addresses_alone(staff_user):
    # given
    get_user_model().objects.create_user(
        username="colleague", password="colleague-password", is_staff=True
    )
    fail_ten_times("operator", ATTACKER)

    # when
    colleague_same_address = log_in("colleague", "colleague-password", ATTACKER)
    operator_elsewhere = log_in("operator", PASSWORD, "198.51.100.20")

    # then
    assert colleague_same_address == 302
    assert operator_elsewhere == 302


@pytest.mark.django_db
def test_the_lockout_ends_after_15_minutes(staff_user):
    # given
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail_ten_times("operator", ATTACKER)

    # when
    with time_machine.travel(start + timedelta(minutes=14), tick=False):
        still_locked = log_in("operator", PASSWORD, ATTACKER)
    with time_machine.travel(start + timedelta(minutes=15, seconds=1), tick=False):
        let_in = log_in("operator", PASSWORD, ATTACKER)

    # then
    assert still_locked in (403, 429)
    assert let_in == 302


@pytest.mark.django_db
def test_after_the_lockout_the_count_starts_again(staff_user):
    # given: locked out once, and the 15 minutes are over
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail_ten_times("operator", ATTACKER)

    # when: one more wrong password after the cool-off
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        one_more_failure = log_in("operator", "wrong-password", ATTACKER)
        right_password = log_in("operator", PASSWORD, ATTACKER)

    # then: that one failure alone does not lock the pair out again
    assert one_more_failure == 200
    assert right_password == 302


@pytest.mark.django_db
def test_the_address_behind_a_trusted_proxy_is_the_one_locked_out(staff_user, settings):
    # given: one proxy in front, which appends the client's address
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.2"
    for _ in range(10):
        Client().post(
            "/admin/login/",
            {"username": "operator", "password": "wrong"},
            REMOTE_ADDR=proxy,
            HTTP_X_FORWARDED_FOR=f"1.2.3.4, {ATTACKER}",
        )

    # when
    attacker = Client().post(
        "/admin/login/",
        {"username": "operator", "password": PASSWORD},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR=ATTACKER,
    )
    someone_else = Client().post(
        "/admin/login/",
        {"username": "operator", "password": PASSWORD},
        REMOTE_ADDR=proxy,
        HTTP_X_FORWARDED_FOR="198.51.100.20",
    )

    # then
    assert attacker.status_code in (403, 429)
    assert someone_else.status_code == 302


@pytest.mark.django_db
def test_an_operator_can_lift_a_lockout_early(staff_user):
    # given
    fail_ten_times("operator", ATTACKER)

    # when
    call_command("axes_reset_ip_username", ATTACKER, "operator", stdout=io.StringIO())

    # then
    assert log_in("operator", PASSWORD, ATTACKER) == 302


@pytest.mark.django_db
def test_a_login_without_a_request_still_works(staff_user):
    # given: Django's test client logs in without a request, as a shell would
    browser = Client()

    # when
    logged_in = browser.login(username="operator", password=PASSWORD)

    # then
    assert logged_in
    assert browser.get("/admin/").status_code == 200
