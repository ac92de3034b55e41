"""CSV imports of conversions: refused files, row errors, re-imports, a real worker."""

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from attribution.models import Conversion, ConversionImport, Postback
from attribution.services.import_run import conversion_import_run
from attribution.services.processing import postback_process
from tests.factories import ClickFactory, ContactFactory, MessageFactory, NetworkFactory

IMPORT = "/api/v1/conversions/import/"


def upload(api_client, network_slug, body, content_type="text/csv"):
    return api_client.post(f"{IMPORT}?network={network_slug}", data=body, content_type=content_type)


def status_of(api_client, import_id):
    response = api_client.get(f"/api/v1/conversions/imports/{import_id}/")
    assert response.status_code == 200
    return response.json()


def run_and_decide(import_id: int) -> None:
    """What the workers do: store the rows, then decide the waiting postbacks."""
    conversion_import_run(import_id=import_id)
    for postback_id in Postback.objects.filter(status="received").values_list("pk", flat=True):
        postback_process(postback_id=postback_id, batch_size=500)


def wait_until(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("click_id,payout\nabc,caf\xe9\n".encode("latin-1"), "UTF-8"),
        (b"name,colour\nann,blue\n", "names no postback field"),
        (b"click_id,payout\n", "no conversions"),
    ],
)
def test_a_file_that_is_not_a_csv_of_conversions_is_400_and_stores_nothing(
    api_client, body, reason
):
    network = NetworkFactory.create()
    response = upload(api_client, network.slug, body)
    assert response.status_code == 400, response.content
    assert reason in response.json()["error"]
    assert ConversionImport.objects.count() == 0
    assert Postback.objects.count() == 0


@pytest.mark.django_db
def test_an_unknown_network_is_404_and_a_missing_file_400(api_client):
    unknown = upload(api_client, "nope", b"click_id\nabc\n")
    assert unknown.status_code == 404
    assert "network" in unknown.json()["fields"]
    network = NetworkFactory.create()
    no_file = api_client.post(f"{IMPORT}?network={network.slug}", {}, format="multipart")
    assert no_file.status_code == 400
    assert "file" in no_file.json()["fields"]
    assert ConversionImport.objects.count() == 0


@pytest.mark.django_db
def test_a_file_over_the_limit_is_413_naming_it(api_client, settings):
    settings.CONVERSION_IMPORT_MAX_BYTES = 64
    network = NetworkFactory.create()
    body = b"click_id,payout\n" + b"abcdefgh,1\n" * 10
    raw = upload(api_client, network.slug, body)
    as_file = api_client.post(
        f"{IMPORT}?network={network.slug}",
        {"file": SimpleUploadedFile("big.csv", body, content_type="text/csv")},
        format="multipart",
    )
    for response in (raw, as_file):
        assert response.status_code == 413
        assert "64 bytes" in response.json()["error"]
    assert ConversionImport.objects.count() == 0


@pytest.mark.django_db
def test_rows_are_postbacks_and_bad_rows_are_listed_with_their_row_and_field(api_client):
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=2))
    network = click.offer.network
    csv_text = (
        "clickid,order_id,amount,conversion_status\n"
        f"{click.click_id},ORD-1,12.50,approved\n"
        "\n"
        f"{click.click_id},ORD-2,-3,approved\n"
        ",,5,approved\n"
        f"{click.click_id},ORD-3,4,maybe\n"
        f'"{click.click_id}"x,ORD-4,4,approved\n'
    )
    # when
    response = api_client.post(
        f"{IMPORT}?network={network.slug}",
        {"file": SimpleUploadedFile("orders.csv", csv_text.encode(), content_type="text/csv")},
        format="multipart",
    )
    # then
    assert response.status_code == 202, response.content
    import_id = response.json()["import_id"]
    assert response.json()["rows"] == 5
    assert status_of(api_client, import_id)["status"] == "queued"
    run_and_decide(import_id)
    answer = status_of(api_client, import_id)
    assert answer["status"] == "done"
    assert (answer["rows"], answer["accepted"], answer["rejected"]) == (5, 1, 4)
    assert [error["row"] for error in answer["errors"]] == [2, 3, 4, 5]
    assert "amount" in answer["errors"][0]["error"]
    assert "click_id" in answer["errors"][1]["error"]
    assert "conversion_status" in answer["errors"][2]["error"]
    assert "not a CSV row" in answer["errors"][3]["error"]
    conversion = Conversion.objects.get()
    assert (conversion.conversion_id, str(conversion.payout), conversion.attributed) == (
        "ORD-1",
        "12.5000",
        True,
    )
    # nothing lost: every row is kept as a postback, the bad ones marked invalid
    assert Postback.objects.filter(conversion_import_id=import_id).count() == 5
    assert Postback.objects.filter(status="invalid").count() == 4


@pytest.mark.django_db
def test_the_same_file_imported_twice_counts_once(api_client):
    # given
    ann = ContactFactory.create(email="ann@example.com")
    message = MessageFactory.create(contact=ann, sent_at=timezone.now() - timedelta(hours=2))
    message.offer.view_window_hours = 6
    message.offer.save()
    body = (
        "email,offer,payout,status\n"
        f"Ann@Example.com,{message.offer_id},9,approved\n"
        f"bob@example.com,{message.offer_id},5,approved\n"
    ).encode()
    # when
    first = upload(api_client, message.offer.network.slug, body).json()["import_id"]
    run_and_decide(first)
    second = upload(api_client, message.offer.network.slug, body).json()["import_id"]
    run_and_decide(second)
    # then
    assert Conversion.objects.count() == 2
    credited = Conversion.objects.get(contact=ann)
    assert (credited.attribution_type, credited.message_id) == ("view_through", message.pk)
    assert Conversion.objects.exclude(contact=ann).get().reason == "unknown_person"
    assert status_of(api_client, second)["accepted"] == 2


@pytest.mark.django_db
def test_running_an_import_again_stores_each_row_once(api_client):
    network = NetworkFactory.create()
    import_id = upload(api_client, network.slug, b"click_id,txid\nc1,t1\nc2,t2\n").json()[
        "import_id"
    ]
    conversion_import_run(import_id=import_id)
    ConversionImport.objects.filter(pk=import_id).update(status="running")
    conversion_import_run(import_id=import_id)
    assert Postback.objects.count() == 2
    assert status_of(api_client, import_id)["rows"] == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_import_runs_on_a_real_worker_to_the_end(worker, api_client):
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    rows = "".join(f"{click.click_id},W-{n},{n}\n" for n in range(1, 51))
    # when
    response = upload(api_client, network.slug, f"click_id,txid,payout\n{rows}x,W-bad,-1\n")
    assert response.status_code == 202, response.content
    import_id = response.json()["import_id"]
    # then
    wait_until(
        lambda: status_of(api_client, import_id)["status"] == "done",
        what="the worker to import and decide every row",
    )
    answer = status_of(api_client, import_id)
    assert (answer["rows"], answer["accepted"], answer["rejected"]) == (51, 50, 1)
    assert answer["errors"] == [{"row": 51, "error": answer["errors"][0]["error"]}]
    assert Conversion.objects.filter(network=network, attributed=True).count() == 50


@pytest.mark.django_db
def test_an_operator_imports_from_the_admin_and_sees_the_job(admin_client_logged_in):
    # given
    network = NetworkFactory.create()
    csv_file = SimpleUploadedFile(
        "orders.csv", b"click_id,order_id,amount\nc-1,O-1,3\nc-2,O-2,-1\n", "text/csv"
    )
    # when
    response = admin_client_logged_in.post(
        "/admin/attribution/conversionimport/add/", {"network": network.pk, "file": csv_file}
    )
    # then
    assert response.status_code == 302, response.content[:2000]
    conversion_import = ConversionImport.objects.get()
    assert (conversion_import.rows, conversion_import.status) == (2, "queued")
    conversion_import_run(import_id=conversion_import.pk)
    page = admin_client_logged_in.get(
        f"/admin/attribution/conversionimport/{conversion_import.pk}/change/"
    )
    assert page.status_code == 200
    assert b"2 of 2" in page.content
    assert b"payout" in page.content  # the amount column maps onto the payout field
    errors = admin_client_logged_in.get(
        f"/admin/attribution/conversionimport/{conversion_import.pk}/errors.csv"
    )
    assert errors.content.decode().splitlines()[1].startswith("2,amount")
    assert admin_client_logged_in.get("/admin/attribution/conversionimport/").status_code == 200
    assert admin_client_logged_in.get("/admin/attribution/conversionimport/add/").status_code == 200


@pytest.mark.django_db
def test_an_operator_previews_the_columns_then_imports_without_choosing_the_file_again(
    admin_client_logged_in,
):
    # given
    network = NetworkFactory.create()
    csv_file = SimpleUploadedFile("o.csv", b"clickid,txid,amount\nc-1,T-1,3\n", "text/csv")
    # when: preview
    preview = admin_client_logged_in.post(
        "/admin/attribution/conversionimport/add/",
        {"network": network.pk, "file": csv_file, "_preview": "Preview"},
    )
    # then: each column's field and the first row, and nothing imported
    assert preview.status_code == 200
    table = preview.content.decode()
    assert "import-preview" in table
    assert "click_id" in table and "conversion_id" in table and "payout" in table
    assert "T-1" in table
    assert 'name="previewed" value="clickid,txid,amount' in table
    assert ConversionImport.objects.count() == 0
    # when: import, the file carried over from the preview
    response = admin_client_logged_in.post(
        "/admin/attribution/conversionimport/add/",
        {
            "network": network.pk,
            "previewed": "clickid,txid,amount\nc-1,T-1,3\n",
            "previewed_name": "o.csv",
            "_save": "Import",
        },
    )
    # then
    assert response.status_code == 302
    assert ConversionImport.objects.get().file_name == "o.csv"


@pytest.mark.django_db
def test_the_admin_refuses_a_file_that_is_not_a_csv_of_conversions(admin_client_logged_in):
    network = NetworkFactory.create()
    response = admin_client_logged_in.post(
        "/admin/attribution/conversionimport/add/",
        {"network": network.pk, "file": SimpleUploadedFile("x.csv", b"a,b\n1,2\n", "text/csv")},
    )
    assert response.status_code == 200
    assert b"names no postback field" in response.content
    assert ConversionImport.objects.count() == 0
