"""Stored clicks classified again for a date range: conversions and rollups follow."""

import time
from datetime import timedelta
from typing import cast

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from attribution.models import Conversion
from attribution.services.recredit import conversions_redecide
from reports.models import DailyTotal
from tests.factories import ConversionFactory, LinkFactory
from tests.tracking.helpers import drain
from tracking.models import Click, Link

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
# Checkly's API checks (checklyhq.com/docs/monitoring/allowlisting): a bot today; stored
# as a person below, as the rules before this one's were added would have stored it.
MONITOR = "Checkly/1.0 (https://www.checklyhq.com)"


def stored_as_person_then_a_person(client, spool_dir) -> tuple[Link, Click, Click]:
    link = cast(Link, LinkFactory())
    start = timezone.now() - timedelta(hours=2)
    if timezone.localdate(start) != timezone.localdate(start + timedelta(minutes=30)):
        start -= timedelta(minutes=30)  # both clicks on one day, whenever the test runs
    with time_machine.travel(start):
        assert client.get(f"/{link.code}", HTTP_USER_AGENT=MONITOR).status_code == 302
    with time_machine.travel(start + timedelta(minutes=30)):
        assert client.get(f"/{link.code}", HTTP_USER_AGENT=PHONE).status_code == 302
    drain(spool_dir)
    monitor = Click.objects.get(user_agent=MONITOR)
    Click.objects.filter(pk=monitor.pk).update(is_bot=False, is_preview=False, flag_reason="")
    person = Click.objects.get(user_agent=PHONE)
    return link, monitor, person


@pytest.mark.django_db
def test_a_reclassified_click_loses_its_credit_to_the_person_and_the_report_follows(
    client, spool_dir
):
    # given: a first-click conversion credited to the monitor's click stored as a person's
    link, monitor, person = stored_as_person_then_a_person(client, spool_dir)
    conversion = cast(
        Conversion,
        ConversionFactory(network=link.message.offer.network, click_id=monitor.click_id),
    )
    conversions_redecide(conversion_ids=[conversion.pk], changed_by_id=None, why="setup")
    conversion.refresh_from_db()
    assert conversion.credited_click_id == monitor.pk
    day = timezone.localdate(monitor.occurred_at)
    call_command("recompute_rollups", "--start", str(day), "--end", str(day), "--no-progress")
    assert DailyTotal.objects.get(day=day, dimension="campaign").bot_clicks == 0

    # when
    call_command("reclassify_clicks", "--start", str(day), "--end", str(day), "--now")

    # then
    monitor.refresh_from_db()
    assert (monitor.is_bot, monitor.is_preview, monitor.flag_reason) == (
        True,
        False,
        "rule:monitor-named",
    )
    conversion.refresh_from_db()
    assert conversion.credited_click_id == person.pk
    assert conversion.credit_changes.count() == 2
    assert DailyTotal.objects.get(day=day, dimension="campaign").bot_clicks == 1


@pytest.mark.django_db
def test_reclassifying_twice_changes_nothing_the_second_time(client, spool_dir, capsys):
    # given
    _, monitor, _ = stored_as_person_then_a_person(client, spool_dir)
    day = str(timezone.localdate(monitor.occurred_at))
    call_command("reclassify_clicks", "--start", day, "--end", day, "--now")
    capsys.readouterr()

    # when
    call_command("reclassify_clicks", "--start", day, "--end", day, "--now")

    # then
    assert "2 clicks checked, 0 changed" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_prefetch_preview_keeps_its_flag_when_its_agent_is_a_persons(client, spool_dir):
    # given: a Chrome prefetch (the header is not stored, only the reason names it)
    link = cast(Link, LinkFactory())
    client.get(f"/{link.code}", HTTP_USER_AGENT=PHONE, HTTP_SEC_PURPOSE="prefetch")
    drain(spool_dir)
    day = str(timezone.localdate())

    # when
    call_command("reclassify_clicks", "--start", day, "--end", day, "--now")

    # then
    click = Click.objects.get()
    assert (click.is_preview, click.flag_reason) == (True, "header:prefetch")


def test_a_backwards_range_is_refused():
    # when / then
    with pytest.raises(Exception, match="after the end"):
        call_command("reclassify_clicks", "--start", "2026-03-02", "--end", "2026-03-01")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_command_hands_the_range_to_a_worker(client, spool_dir, worker):
    # given
    _, monitor, _ = stored_as_person_then_a_person(client, spool_dir)
    day = str(timezone.localdate(monitor.occurred_at))

    # when
    call_command("reclassify_clicks", "--start", day, "--end", day)

    # then: the worker classifies it again
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        monitor.refresh_from_db()
        if monitor.is_bot:
            break
        time.sleep(0.2)
    assert (monitor.is_bot, monitor.flag_reason) == (True, "rule:monitor-named")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_operator_reclassifies_from_the_clicks_admin(client, spool_dir, worker, staff_user):
    # given
    _, monitor, _ = stored_as_person_then_a_person(client, spool_dir)
    client.force_login(staff_user)

    # when: the action on the selected click
    response = client.post(
        "/admin/tracking/click/",
        {"action": "reclassify_days", "_selected_action": [str(monitor.pk)]},
        follow=True,
    )

    # then
    assert "will be classified again" in response.content.decode()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        monitor.refresh_from_db()
        if monitor.is_bot:
            break
        time.sleep(0.2)
    assert (monitor.is_bot, monitor.flag_reason) == (True, "rule:monitor-named")
