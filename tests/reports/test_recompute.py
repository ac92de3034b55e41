import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import cast

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from attribution.models import Conversion
from config.celery_app import app as celery_app
from reports.models import DailyRollup, RollupJob, RollupWatermark
from reports.services import (
    rollup_recompute_day,
    rollup_recompute_touched,
    rollup_trailing_window_days,
)
from tests.factories import CreativeFactory, OfferFactory
from tests.reports.helpers import clicks_made, conversion_credited, message_sent, rollup_cells
from tracking.models import Click, Creative, Message


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def a_message(db):
    creative = CreativeFactory()
    return message_sent(creative=creative, offer=OfferFactory(), sent_at=utc(2026, 6, 10, 9))


@override_settings(REPORTS_TIME_ZONE="Pacific/Kiritimati")
def test_days_are_days_in_the_report_time_zone_far_east_of_utc(a_message):
    # given: UTC+14, so 10:00 UTC on June 10 is already June 11 there
    message, link = a_message  # sent 09:00 UTC June 10 = 23:00 June 10 local
    clicks_made(link, utc(2026, 6, 10, 9, 30))  # 23:30 June 10 local
    clicks_made(link, utc(2026, 6, 10, 10, 0), count=2)  # 00:00 June 11 local
    conversion_credited(message, utc(2026, 6, 10, 11), payout="6.00")  # June 11 local

    # when
    rollup_recompute_day(day=date(2026, 6, 10))
    rollup_recompute_day(day=date(2026, 6, 11))

    # then
    assert rollup_cells(date(2026, 6, 10))[("message", message.pk)] == {
        "sends": 1,
        "clicks": 1,
        "unique_clicks": 1,
    }
    assert rollup_cells(date(2026, 6, 11))[("message", message.pk)] == {
        "clicks": 2,
        "unique_clicks": 2,
        "conversions": 1,
        "revenue": Decimal("6.00"),
    }


@override_settings(REPORTS_TIME_ZONE="America/Los_Angeles")
def test_the_day_clocks_fall_back_has_25_hours(a_message):
    # given: on 2026-11-01 Los Angeles goes from UTC-7 to UTC-8; the day runs
    # from 07:00 UTC that day to 08:00 UTC the next
    message, link = a_message
    clicks_made(link, utc(2026, 11, 1, 6, 59))  # Oct 31, 23:59 PDT
    clicks_made(link, utc(2026, 11, 1, 7, 0))  # Nov 1, 00:00 PDT
    clicks_made(link, utc(2026, 11, 2, 7, 30))  # Nov 1, 23:30 PST
    clicks_made(link, utc(2026, 11, 2, 8, 0))  # Nov 2, 00:00 PST

    # when
    for day in (date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)):
        rollup_recompute_day(day=day)

    # then
    clicks = {
        row.day: row.clicks
        for row in DailyRollup.objects.filter(dimension="message", key=message.pk)
    }
    assert clicks == {date(2026, 10, 31): 1, date(2026, 11, 1): 2, date(2026, 11, 2): 1}


@override_settings(REPORTS_TIME_ZONE="America/Los_Angeles")
def test_the_day_clocks_spring_forward_has_23_hours_and_touched_days_use_local_days(
    a_message,
):
    # given: on 2026-03-08 Los Angeles goes from UTC-8 to UTC-7; the day runs
    # from 08:00 UTC that day to 07:00 UTC the next
    message, link = a_message
    clicks_made(link, utc(2026, 3, 8, 7, 59))  # Mar 7, 23:59 PST
    clicks_made(link, utc(2026, 3, 8, 8, 0))  # Mar 8, 00:00 PST
    clicks_made(link, utc(2026, 3, 9, 6, 59))  # Mar 8, 23:59 PDT
    clicks_made(link, utc(2026, 3, 9, 7, 0))  # Mar 9, 00:00 PDT

    # when
    days = rollup_recompute_touched()

    # then
    assert date(2026, 3, 7) in days and date(2026, 3, 9) in days
    clicks = {
        row.day: row.clicks
        for row in DailyRollup.objects.filter(dimension="message", key=message.pk)
        if row.clicks
    }
    assert clicks == {date(2026, 3, 7): 1, date(2026, 3, 8): 2, date(2026, 3, 9): 1}


def test_recompute_touched_finds_only_the_days_of_new_rows_and_moves_the_watermark(a_message):
    # given: a first scan folded in everything so far; those rows are an hour old
    message, link = a_message
    clicks_made(link, utc(2026, 6, 10, 10))
    assert rollup_recompute_touched() == [date(2026, 6, 10)]
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Message.objects.update(created_at=an_hour_ago)
    Click.objects.update(recorded_at=an_hour_ago)
    first_watermark = RollupWatermark.objects.get().scanned_until

    # when: a late conversion of June 2 arrives
    conversion_credited(message, utc(2026, 6, 2, 15), payout="9.00")
    days = rollup_recompute_touched()

    # then
    assert days == [date(2026, 6, 2)]
    assert rollup_cells(date(2026, 6, 2))[("message", message.pk)] == {
        "conversions": 1,
        "revenue": Decimal("9.00"),
    }
    assert RollupWatermark.objects.get().scanned_until > first_watermark


def test_an_import_touching_many_days_hands_the_older_ones_to_a_job(a_message):
    # given: a message sent on June 10, and clicks imported for twelve days of May
    _, link = a_message
    for offset in range(12):
        clicks_made(link, utc(2026, 5, 1) + timedelta(days=offset))

    # when
    days = rollup_recompute_touched()

    # then: the ten latest are done now, the three oldest by a worker
    may = [date(2026, 5, 1) + timedelta(days=offset) for offset in range(12)]
    assert days == [*may[3:], date(2026, 6, 10)]
    job = RollupJob.objects.get()
    assert (job.start, job.end, job.status) == (date(2026, 5, 1), date(2026, 5, 3), "queued")


def test_a_status_change_touches_the_conversions_day(a_message):
    # given
    message, _ = a_message
    conversion = conversion_credited(message, utc(2026, 6, 4, 15), payout="9.00")
    rollup_recompute_touched()
    Message.objects.update(created_at=timezone.now() - timedelta(hours=1))
    Conversion.objects.update(updated_at=timezone.now() - timedelta(hours=1))

    # when: the network reverses it
    conversion.status = "reversed"
    conversion.save()
    days = rollup_recompute_touched()

    # then
    assert days == [date(2026, 6, 4)]
    assert rollup_cells(date(2026, 6, 4))[("message", message.pk)] == {
        "reversed_conversions": 1,
        "reversed_revenue": Decimal("9.00"),
    }


@pytest.mark.django_db(transaction=True)
def test_recomputes_of_the_same_day_at_once_never_double_count():
    # given: a day with some volume, and eight threads that start together
    creative = cast(Creative, CreativeFactory())
    offer = OfferFactory()
    messages = [
        message_sent(creative=creative, offer=offer, sent_at=utc(2026, 6, 10, 9)) for _ in range(5)
    ]
    for message, link in messages:
        clicks_made(link, utc(2026, 6, 10, 10), count=4)
        conversion_credited(message, utc(2026, 6, 10, 11), payout="2.50")
    day = date(2026, 6, 10)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def recompute() -> None:
        from django.db import connection

        try:
            barrier.wait(timeout=10)
            rollup_recompute_day(day=day)
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=recompute) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    # then
    assert errors == []
    campaign_cell = rollup_cells(day)[("campaign", creative.campaign_id)]
    assert campaign_cell == {
        "sends": 5,
        "clicks": 20,
        "unique_clicks": 20,
        "conversions": 5,
        "revenue": Decimal("12.50"),
    }
    assert DailyRollup.objects.filter(day=day).count() == 5 + 1 + 1 + 1 + 1


def test_recompute_rollups_command_rebuilds_a_range(a_message, capsys):
    # given
    message, link = a_message
    clicks_made(link, utc(2026, 6, 11, 10), count=3)

    # when
    call_command("recompute_rollups", "--start", "2026-06-09", "--end", "2026-06-11")

    # then
    assert "Recomputed 3 day(s) from 2026-06-09 to 2026-06-11" in capsys.readouterr().out
    assert rollup_cells(date(2026, 6, 11))[("message", message.pk)]["clicks"] == 3
    assert rollup_cells(date(2026, 6, 10))[("message", message.pk)] == {"sends": 1}


@pytest.mark.parametrize(("start", "end"), [("2026-06-11", "2026-06-01"), ("June", "2026-06-01")])
def test_recompute_rollups_command_refuses_a_bad_range(db, start, end):
    # when / then
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("recompute_rollups", "--start", start, "--end", end)


def test_nightly_window_is_the_longest_click_window_plus_two_days(db):
    # given
    OfferFactory(click_window_days=7)
    OfferFactory(click_window_days=45)

    # when / then
    assert rollup_trailing_window_days() == 47


@pytest.mark.django_db(transaction=True)
def test_beat_schedule_entries_reach_the_database_scheduler():
    # when: beat starts with the database scheduler
    DatabaseScheduler(app=celery_app, lazy=False)

    # then: operators see (and may pause) both tasks in the admin
    touched = PeriodicTask.objects.get(name="reports-recompute-touched")
    nightly = PeriodicTask.objects.get(name="reports-recompute-trailing")
    assert touched.task == "reports.recompute_touched"
    assert touched.interval is not None and touched.interval.every == 60
    assert nightly.task == "reports.recompute_trailing"
    assert nightly.crontab is not None
