"""Raw clicks older than the retention go as whole months, only once their days are final."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from attribution.models import Conversion
from reports.models import DailyRollup, RollupWatermark
from reports.retention import clicks_retention_apply
from reports.services import rollup_recompute_day
from tests.factories import ClickFactory, ConversionFactory, LinkFactory
from tracking.models import Click
from tracking.services.partitions import (
    click_partitions,
    click_partitions_ensure,
    click_partitions_forget,
    month_of,
)

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
OLD = datetime(2026, 3, 10, 15, tzinfo=UTC)  # nine months before NOW
RECENT = datetime(2026, 10, 10, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _partitions_looked_up_again():
    click_partitions_forget()
    yield
    click_partitions_forget()


def months_stored() -> list[date]:
    return [partition.month for partition in click_partitions()]


def rollup_scan_done(at: datetime) -> None:
    RollupWatermark.objects.update_or_create(name="touched", defaults={"scanned_until": at})


def clicks_of_message_rollup(day: date) -> int:
    return sum(
        DailyRollup.objects.filter(dimension="message", day=day).values_list("clicks", flat=True)
    )


@pytest.fixture
def history():
    link = LinkFactory.create()
    old_click = ClickFactory.create(link=link, occurred_at=OLD)
    ClickFactory.create(link=link, occurred_at=RECENT)
    click_partitions_ensure(months=[month_of(OLD), month_of(RECENT)])
    # Recorded by the drainer a moment after they happened, months ago.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE tracking_click SET recorded_at = occurred_at + interval '1 second'")
    conversion = ConversionFactory.create(
        network=link.message.offer.network,
        occurred_at=OLD + timedelta(hours=1),
        credited_click=old_click,
        attributed=True,
        message=link.message,
        creative=link.message.creative,
        campaign=link.message.campaign,
        offer=link.message.offer,
        contact=link.message.contact,
    )
    return link, old_click, conversion


@pytest.mark.django_db
def test_a_month_past_the_retention_whose_days_are_final_is_dropped(history, api_client):
    # given: the old day's rollups were computed after its clicks, and the scan moved on
    link, _old_click, conversion = history
    rollup_recompute_day(day=OLD.date())
    rollup_scan_done(NOW)

    # when
    dropped = clicks_retention_apply(months=6, now=NOW)

    # then: the raw clicks of that month are gone; its rollups and the conversion's credit stay
    assert dropped == ["tracking_click_p202603"]
    assert month_of(OLD) not in months_stored()
    assert list(Click.objects.values_list("occurred_at", flat=True)) == [RECENT]
    assert clicks_of_message_rollup(OLD.date()) == 1
    kept = Conversion.objects.get(pk=conversion.pk)
    assert (kept.message_id, kept.offer_id, kept.attributed) == (
        link.message_id,
        link.message.offer_id,
        True,
    )
    response = api_client.get(f"/api/v1/conversions/?conversion_id={conversion.conversion_id}")
    assert response.status_code == 200
    assert response.json()["results"][0]["message"] == link.message_id


@pytest.mark.django_db
def test_a_day_whose_clicks_were_dropped_keeps_its_rollups_when_recomputed(history):
    # given
    rollup_recompute_day(day=OLD.date())
    rollup_scan_done(NOW)
    clicks_retention_apply(months=6, now=NOW)

    # when: the nightly task or an operator's job recomputes that day again
    written = rollup_recompute_day(day=OLD.date())

    # then
    assert written == 0
    assert clicks_of_message_rollup(OLD.date()) == 1


@pytest.mark.django_db
def test_a_month_whose_days_were_never_rolled_up_is_kept(history):
    # given: the scan moved on, but no rollup was computed for the old day
    rollup_scan_done(NOW)

    # when
    dropped = clicks_retention_apply(months=6, now=NOW)

    # then
    assert dropped == []
    assert Click.objects.count() == 2


@pytest.mark.django_db
def test_a_month_with_clicks_the_rollup_scan_has_not_reached_is_kept(history):
    # given: rollups exist, but a click was recorded after the last scan
    rollup_recompute_day(day=OLD.date())
    rollup_scan_done(NOW)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE tracking_click SET recorded_at = %s WHERE occurred_at = %s", [NOW, OLD]
        )

    # when
    dropped = clicks_retention_apply(months=6, now=NOW)

    # then
    assert dropped == []


@pytest.mark.django_db
def test_months_inside_the_retention_are_kept(history):
    # given
    rollup_recompute_day(day=OLD.date())
    rollup_recompute_day(day=RECENT.date())
    rollup_scan_done(NOW)

    # when: ten months kept
    dropped = clicks_retention_apply(months=10, now=NOW)

    # then
    assert dropped == []
    assert Click.objects.count() == 2


@pytest.mark.django_db
def test_no_retention_setting_keeps_every_click(history, settings):
    # given
    settings.CLICK_RETENTION_MONTHS = 0
    rollup_recompute_day(day=OLD.date())
    rollup_scan_done(NOW)

    # when
    dropped = clicks_retention_apply(now=NOW)

    # then
    assert dropped == []
    assert Click.objects.count() == 2
