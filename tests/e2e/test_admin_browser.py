import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command

from attribution.models import Conversion

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_data(transactional_db) -> None:
    """A small demo through the real paths, committed so the app server sees it."""
    call_command("simulate", "--contacts", "15", "--days", "4", "--seed", "11", "--no-progress")


def test_operator_reads_the_daily_report_exports_csv_and_opens_a_journey(
    demo_data, logged_in_page, artifacts_dir: Path
):
    # given: the demo's rows, and a contact whose conversion credited one of their clicks
    credited = (
        Conversion.objects.filter(attributed=True)
        .select_related("credited_click")
        .order_by("pk")
        .first()
    )
    assert credited is not None and credited.credited_click is not None
    credited_click_id = credited.credited_click.click_id

    # when: the operator opens the daily report
    page = logged_in_page("/admin/reports/daily/?dimension=campaign")

    # then: the chart is drawn with the days' points, and the table has the campaigns
    chart = page.locator("svg#report-chart")
    chart.wait_for(state="visible")
    assert page.locator("svg#report-chart polyline").count() >= 3
    points = page.locator("svg#report-chart polyline").first.get_attribute("points") or ""
    assert len(points.split()) >= 2
    assert page.locator("svg#report-chart circle").count() >= 6
    assert (chart.bounding_box() or {"width": 0})["width"] > 300
    assert page.locator("#report-table").get_attribute("data-dimension") == "campaign"
    campaign_rows = page.locator("#report-table tbody tr[data-key]")
    assert campaign_rows.count() >= 2
    assert "(demo)" in page.locator("#report-table tbody").inner_text()
    page.screenshot(path=str(artifacts_dir / "reports.png"), full_page=True)

    # when: they switch the dimension to offers
    page.click("#report-dimensions a[data-dimension=offer]")
    page.wait_for_url("**dimension=offer**")

    # then: the table lists offers
    assert page.locator("#report-table").get_attribute("data-dimension") == "offer"
    offer_rows = page.locator("#report-table tbody tr[data-key]")
    shown_keys = sorted(
        offer_rows.nth(i).get_attribute("data-key") for i in range(offer_rows.count())
    )
    assert shown_keys
    assert "Meal kit (demo)" in page.locator("#report-table tbody").inner_text()

    # when: they export the CSV
    with page.expect_download() as download_info:
        page.click("#report-csv")
    download = download_info.value

    # then: it holds exactly the rows shown, with the report's columns
    assert download.suggested_filename.startswith("report-offer-")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
    assert rows[0][:4] == ["dimension", "key", "name", "sends"]
    assert {"clicks", "unique_clicks", "conversions", "revenue", "epc"} <= set(rows[0])
    assert sorted(row[1] for row in rows[1:]) == shown_keys
    assert all(row[0] == "offer" for row in rows[1:])

    # when: they open the journey of a contact with a credited conversion
    page = logged_in_page(f"/admin/reports/journey/{credited.contact_id}/")

    # then: the credited click stands out, under the offer's model
    assert page.locator("h1").inner_text().startswith("Journey of contact #")
    credited_row = page.locator(f'tr.click-row.credited[data-click-id="{credited_click_id}"]')
    assert credited_row.count() == 1
    assert "credited: conversion" in credited_row.inner_text()
    assert page.locator("tr.message-row").count() >= 1
    page.screenshot(path=str(artifacts_dir / "journey.png"), full_page=True)
