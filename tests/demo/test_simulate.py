from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Q, Sum
from django.test import override_settings

from attribution.models import Conversion, ConversionEvent, Postback
from reports.models import DailyRollup
from tracking.models import Click, Message


@pytest.mark.django_db
# The worker waits this long for a click it does not know yet before `unknown_click`.
@override_settings(CLICK_VISIBILITY_GRACE_SECONDS=0)
def test_a_small_simulation_fills_messages_clicks_conversions_and_rollups():
    # when
    call_command("simulate", "--contacts", "20", "--days", "3", "--seed", "7", "--no-progress")

    # then: sends on both channels
    messages = Message.objects.filter(campaign__slug__startswith="demo-")
    assert messages.filter(channel="sms").exists()
    assert messages.filter(channel="email").exists()
    # clicks of people, previews and bots, duplicates; history imported, today through the redirect
    clicks = Click.objects.filter(message__in=messages)
    assert clicks.filter(is_bot=False, is_preview=False, is_duplicate=False).exists()
    assert clicks.filter(Q(is_preview=True) | Q(is_bot=True)).exists()
    assert clicks.filter(is_imported=True).exists()
    assert clicks.filter(is_imported=False).exists()
    # conversions decided by the worker's code, some credited to a click
    assert Postback.objects.filter(status="processed").exists()
    assert Postback.objects.filter(status="invalid").exists()
    assert not Postback.objects.filter(status="received").exists()
    assert Conversion.objects.filter(processed=True, attributed=True).exists()
    assert Conversion.objects.filter(attributed=False, reason="unknown_click").exists()
    # rollups for the simulated days with what the report shows
    totals = DailyRollup.objects.filter(dimension="campaign").aggregate(
        sends=Sum("sends"), clicks=Sum("clicks"), bot_clicks=Sum("bot_clicks")
    )
    assert totals["sends"] == messages.count()
    assert totals["clicks"] > 0 and totals["bot_clicks"] > 0
    assert DailyRollup.objects.filter(dimension="network", revenue__gt=0).exists()
    assert ConversionEvent.objects.exists()


@pytest.mark.django_db
def test_simulate_again_adds_nothing_unless_forced():
    # given
    call_command("simulate", "--contacts", "3", "--days", "1", "--no-progress")
    sent = Message.objects.count()
    out = StringIO()

    # when
    call_command("simulate", "--contacts", "3", "--days", "1", "--no-progress", stdout=out)

    # then
    assert "already there" in out.getvalue()
    assert Message.objects.count() == sent

    # when forced
    call_command("simulate", "--contacts", "3", "--days", "1", "--no-progress", "--force")

    # then
    assert Message.objects.count() > sent


@pytest.mark.django_db
def test_simulate_refuses_out_of_range_sizes():
    # when / then
    with pytest.raises(CommandError, match="--days"):
        call_command("simulate", "--contacts", "3", "--days", "0", "--no-progress")
