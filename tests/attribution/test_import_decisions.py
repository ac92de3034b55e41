"""An import decides its rows as it stores them, exactly as the postback workers would."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from attribution.models import Conversion, ConversionEvent, ConversionImport, Postback
from attribution.services.import_run import conversion_import_run
from attribution.services.imports import conversion_import_create
from attribution.services.processing import postback_process
from tests.factories import (
    TEST_POSTBACK_TOKEN,
    ClickFactory,
    ContactFactory,
    MessageFactory,
    NetworkFactory,
    OfferFactory,
)

pytestmark = pytest.mark.django_db

# What a conversion's credit is, without its ids and times.
CREDIT_FIELDS = (
    "conversion_id",
    "click_id",
    "person_key",
    "status",
    "payout",
    "currency",
    "attributed",
    "reason",
    "attribution_model",
    "attribution_type",
    "credited_click_id",
    "message_id",
    "creative_id",
    "campaign_id",
    "offer_id",
    "contact_id",
)


def imported(network, csv_text: str) -> ConversionImport:
    conversion_import = conversion_import_create(network_slug=network.slug, data=csv_text.encode())
    conversion_import_run(import_id=conversion_import.pk)
    conversion_import.refresh_from_db()
    return conversion_import


def credits() -> list[tuple]:
    return sorted(
        Conversion.objects.values_list(*CREDIT_FIELDS), key=lambda row: [str(cell) for cell in row]
    )


def test_an_import_decides_its_rows_without_waiting_for_the_postback_workers():
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    # when: no processing task runs, only the import
    conversion_import = imported(
        network,
        "click_id,order_id,payout,status\n"
        f"{click.click_id},O-1,8,pending\n"
        f"{click.click_id},O-1,8,approved\n",
    )
    # then
    assert (conversion_import.status, conversion_import.rows_done) == ("done", 2)
    assert (conversion_import.accepted, conversion_import.rejected) == (2, 0)
    conversion = Conversion.objects.get()
    assert (conversion.status, conversion.attributed, conversion.credited_click_id) == (
        "approved",
        True,
        click.pk,
    )
    rows = list(Postback.objects.order_by("import_row"))
    assert [(row.status, row.conversion_id) for row in rows] == [
        ("processed", conversion.pk),
        ("processed", conversion.pk),
    ]
    assert [row.reason for row in rows] == ["new conversion (pending)", "pending -> approved"]
    events = ConversionEvent.objects.filter(conversion=conversion).order_by("pk")
    assert [(event.postback_id, event.to_status) for event in events] == [
        (rows[0].pk, "pending"),
        (rows[1].pk, "approved"),
    ]


def test_imported_rows_get_the_credit_the_same_postbacks_get(client):
    # given: a click, a person with a send in an offer's view window, an unknown person
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=3))
    network = click.offer.network
    offer = OfferFactory.create(network=network, view_window_hours=6)
    ann = ContactFactory.create(email="ann@example.com")
    MessageFactory.create(contact=ann, offer=offer, sent_at=timezone.now() - timedelta(hours=2))
    rows = [
        {"click_id": click.click_id, "order_id": "A-1", "payout": "12.5", "status": "approved"},
        {"click_id": click.click_id, "order_id": "A-2", "payout": "", "status": "pending"},
        {"click_id": "", "order_id": "A-2", "payout": "3", "status": "rejected"},
        {"email": "Ann@Example.com", "offer": str(offer.pk), "payout": "9", "status": ""},
        {"email": "bob@example.com", "offer": str(offer.pk), "payout": "4", "status": ""},
        {"click_id": click.click_id, "order_id": "A-1", "payout": "12.5", "status": "reversed"},
    ]
    columns = ["click_id", "order_id", "email", "offer", "payout", "status"]
    csv_text = ",".join(columns) + "\n"
    csv_text += "".join(",".join(row.get(name, "") for name in columns) + "\n" for row in rows)
    # when: imported
    imported(network, csv_text)
    from_import = credits()
    # when: the same rows as postbacks, decided by the postback worker
    ConversionEvent.objects.all().delete()
    Postback.objects.all().delete()
    Conversion.objects.all().delete()
    for row in rows:
        params = {name: value for name, value in row.items() if value}
        response = client.get(
            f"/postback/{network.slug}/", {"token": TEST_POSTBACK_TOKEN, **params}
        )
        assert response.status_code == 200, response.content
    postback_process(postback_id=Postback.objects.earliest("pk").pk, batch_size=50)
    # then
    assert Postback.objects.filter(status="processed").count() == len(rows)
    assert credits() == from_import
    assert len(from_import) == 4
    by_order = {row[0]: row for row in from_import}
    assert by_order["A-1"][3] == "reversed"
    assert by_order["A-2"][3] == "rejected"
    assert {row[9] for row in from_import} == {"click_through", "view_through", None}


def test_an_imported_row_whose_click_is_not_visible_yet_waits_for_a_worker():
    # given: a click id that names no click yet (its click may still be in the spool)
    network = NetworkFactory.create()
    # when
    conversion_import = imported(network, "click_id,txid\nlate-1,T-1\n")
    # then: kept waiting, accepted, not decided
    waiting = Postback.objects.get()
    assert (waiting.status, waiting.last_enqueued_at is not None) == ("received", True)
    assert (conversion_import.accepted, Conversion.objects.count()) == (1, 0)
    # when: the click becomes visible and a worker takes the row
    click = ClickFactory.create(
        click_id="late-1",
        occurred_at=timezone.now() - timedelta(minutes=5),
        link__message__offer__network=network,
    )
    postback_process(postback_id=waiting.pk, batch_size=50)
    # then
    assert Conversion.objects.get().credited_click_id == click.pk


def test_running_an_import_again_decides_each_row_once():
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    conversion_import = imported(
        click.offer.network,
        f"click_id,txid,status\n{click.click_id},T-1,pending\n{click.click_id},T-1,approved\n",
    )
    # when: the task comes round again (a redelivery)
    ConversionImport.objects.filter(pk=conversion_import.pk).update(status="running")
    conversion_import_run(import_id=conversion_import.pk)
    # then
    assert Postback.objects.count() == 2
    assert Conversion.objects.get().status == "approved"
    assert ConversionEvent.objects.count() == 2


def test_a_chunk_that_cannot_be_stored_decided_is_left_to_the_workers_row_by_row():
    # given: the database refuses one conversion of the chunk
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE attribution_conversion "
            "ADD CONSTRAINT refuse_bad CHECK (conversion_id IS DISTINCT FROM 'BAD')"
        )
    # when
    conversion_import = imported(
        click.offer.network,
        f"click_id,txid\n{click.click_id},GOOD\n{click.click_id},BAD\n",
    )
    # then: both rows are kept, waiting; nothing was half decided
    assert conversion_import.accepted == 2
    assert list(Postback.objects.values_list("status", flat=True)) == ["received"] * 2
    assert Conversion.objects.count() == 0
    # when: the workers take them, failing the batch and then each row on its own
    for postback in Postback.objects.order_by("pk"):
        postback_process(postback_id=postback.pk, batch_size=50)
    # then
    statuses = dict(Postback.objects.values_list("import_row", "status"))
    assert statuses == {1: "processed", 2: "failed"}
    assert Conversion.objects.get().conversion_id == "GOOD"
