"""What if through the API on a real worker: compare models, then re-attribute an offer.

The history: contact A clicked an SMS (message 1) then an email (message 2) of the offer
and converted; contact B clicked once (message 3) and converted. First click credits A's
conversion to message 1, last click to message 2; B's stays with message 3.
"""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from attribution.models import Conversion, CreditChange, Offer, Postback
from attribution.services.processing import postback_process
from reports.models import Comparison, DailyRollup, Reattribution
from reports.services import rollup_recompute_day
from reports.whatif import (
    comparison_run,
    reattribution_create,
    reattribution_run,
    whatif_jobs_sweep,
)
from tests.factories import (
    TEST_POSTBACK_TOKEN,
    ClickFactory,
    ContactFactory,
    LinkFactory,
    MessageFactory,
    OfferFactory,
)

COMPARE = "/api/v1/attribution/compare/"
REATTRIBUTE = "/api/v1/attribution/reattribute/"


def wait_until(condition: Callable[[], Any], *, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not true after {timeout}s")


def click(offer, contact, *, at, channel):
    message = MessageFactory.create(offer=offer, contact=contact, channel=channel)
    return ClickFactory.create(link=LinkFactory.create(message=message), occurred_at=at)


def convert(offer, click_id: str, txid: str, *, payout: str = "10", status: str = "") -> int:
    params = {"token": TEST_POSTBACK_TOKEN, "click_id": click_id, "txid": txid, "payout": payout}
    if status:
        params["status"] = status
    response = Client().get(f"/postback/{offer.network.slug}/", params)
    assert response.status_code == 200, response.content
    postback_id = int(response.json()["postback_id"])
    postback_process(postback_id=postback_id, batch_size=50)
    return postback_id


@pytest.fixture
def history(db):
    now = timezone.now()
    offer = OfferFactory.create(attribution_model="first_click", payout=Decimal("10"))
    a, b = ContactFactory.create(), ContactFactory.create()
    sms = click(offer, a, at=now - timedelta(hours=30), channel="sms")
    email = click(offer, a, at=now - timedelta(hours=20), channel="email")
    single = click(offer, b, at=now - timedelta(hours=10), channel="sms")
    convert(offer, sms.click_id, "A-1", payout="30")
    convert(offer, single.click_id, "B-1", payout="5")
    return {"offer": offer, "sms": sms, "email": email, "single": single, "now": now}


def _recorded() -> list[dict[str, Any]]:
    return [dict(row) for row in Conversion.objects.order_by("pk").values()]


@pytest.mark.slow
def test_first_and_last_click_compared_side_by_side_change_nothing_recorded(
    worker, api_client, history
):
    # given
    offer, sms, email, single = (history[k] for k in ("offer", "sms", "email", "single"))
    today = timezone.localdate(history["now"])
    before = _recorded()
    # when
    response = api_client.post(
        COMPARE,
        {
            "start": str(today - timedelta(days=2)),
            "end": str(today),
            "dimension": "message",
            "offer": offer.pk,
            "models": [
                {"name": "first", "attribution_model": "first_click"},
                {"name": "last", "attribution_model": "last_click"},
            ],
        },
        format="json",
    )
    assert response.status_code == 202, response.content
    url = f"{COMPARE}{response.json()['id']}/"
    result = wait_until(lambda: (r := api_client.get(url).json())["status"] == "done" and r)
    # then
    rows = {row["key"]: row for row in result["rows"]}
    assert rows[sms.message_id]["first"]["conversions"] == 1
    assert rows[sms.message_id]["last"]["conversions"] == 0
    assert rows[sms.message_id]["last"]["revenue_change"] == "-30.0000"
    assert rows[email.message_id]["first"]["conversions"] == 0
    assert rows[email.message_id]["last"] == {
        "conversions": 1,
        "revenue": "30.0000",
        "conversions_change": 1,
        "revenue_change": "30.0000",
    }
    assert rows[single.message_id]["first"]["conversions"] == 1
    assert rows[single.message_id]["last"]["conversions"] == 1
    assert result["moved"] == 1
    moves = api_client.get(f"{url}moves/").json()["results"]
    assert [move["conversion_id"] for move in moves] == ["A-1"]
    assert [credit["message"] for credit in moves[0]["credits"]] == [
        sms.message_id,
        email.message_id,
    ]
    assert moves[0]["credits"][1]["why"].startswith("email click at ")
    into_email = api_client.get(f"{url}moves/", {"key": email.message_id}).json()
    assert into_email["count"] == 1
    assert api_client.get(f"{url}moves/", {"key": single.message_id}).json()["count"] == 0
    assert _recorded() == before


@pytest.mark.slow
def test_an_offer_reattributed_under_new_settings_then_restored(worker, api_client, history):
    # given: the offer now credits the last click
    offer, sms, email = history["offer"], history["sms"], history["email"]
    today = timezone.localdate(history["now"])
    day = timezone.localdate(Conversion.objects.get(conversion_id="A-1").occurred_at)
    rollup_recompute_day(day=day)

    def reattribute() -> dict[str, Any]:
        response = api_client.post(
            REATTRIBUTE,
            {"start": str(today - timedelta(days=3)), "end": str(today), "offer": offer.pk},
            format="json",
        )
        assert response.status_code == 202, response.content
        url = f"{REATTRIBUTE}{response.json()['id']}/"
        return wait_until(lambda: (r := api_client.get(url).json())["status"] == "done" and r)

    def credited_message() -> int:
        found = api_client.get("/api/v1/conversions/", {"conversion_id": "A-1"}).json()
        return found["results"][0]["message"]

    def message_revenue(message_id: int) -> Decimal:
        cell = DailyRollup.objects.filter(dimension="message", key=message_id, day=day).first()
        return cell.revenue if cell else Decimal(0)

    assert (
        api_client.patch(
            f"/api/v1/offers/{offer.pk}/", {"attribution_model": "last_click"}, format="json"
        ).status_code
        == 200
    )
    # when
    job = reattribute()
    # then
    assert (job["changed"], job["settings_applied"]["attribution_model"]) == (1, "last_click")
    assert credited_message() == email.message_id
    assert (message_revenue(sms.message_id), message_revenue(email.message_id)) == (0, 30)
    change = CreditChange.objects.get()
    assert change.before["message_id"] == sms.message_id
    assert change.after["message_id"] == email.message_id
    assert change.changed_by is not None and "re-attribution" in change.why

    # when: the old settings again
    Offer.objects.filter(pk=offer.pk).update(attribution_model="first_click")
    restored = reattribute()
    # then
    assert restored["changed"] == 1
    assert credited_message() == sms.message_id
    assert (message_revenue(sms.message_id), message_revenue(email.message_id)) == (30, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"models": [{"name": "only", "attribution_model": "last_click"}]}, "models"),
        ({"dimension": "planet"}, "dimension"),
        ({"offer": 999999}, "offer"),
        (
            {
                "models": [
                    {"name": "same", "attribution_model": "last_click"},
                    {"name": "same", "attribution_model": "first_click"},
                ]
            },
            "error",
        ),
        (
            {
                "models": [
                    {"name": "a", "attribution_model": "last_click", "click_window_days": 0},
                    {"name": "b", "attribution_model": "first_click"},
                ]
            },
            "models",
        ),
    ],
)
def test_a_comparison_that_cannot_run_is_refused_with_the_reason(api_client, body, field):
    # given
    valid = {
        "start": "2026-02-01",
        "end": "2026-02-28",
        "dimension": "campaign",
        "models": [
            {"name": "first", "attribution_model": "first_click"},
            {"name": "coop", "attribution_model": "cooperative", "sms_window_days": 2},
        ],
    }
    # when
    response = api_client.post(COMPARE, valid | body, format="json")
    # then: an offer that does not exist is a 404, two models under one name a 409, else 400
    duplicate_names = field == "error" and "models" in body
    assert response.status_code == (404 if field == "offer" else 409 if duplicate_names else 400)
    answer = response.json()
    assert answer["error"]
    assert field == "error" or field in answer["fields"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "end"), [("1990-01-01", "2026-01-01"), ("2026-02-01", "2026-01-01")]
)
def test_a_comparison_takes_a_range_of_any_length_either_way_round(api_client, start, end):
    # when
    response = api_client.post(
        COMPARE,
        {
            "start": start,
            "end": end,
            "dimension": "campaign",
            "models": [
                {"name": "first", "attribution_model": "first_click"},
                {"name": "last", "attribution_model": "last_click"},
            ],
        },
        format="json",
    )

    # then: the days between two dates, whichever is named first
    assert response.status_code == 202, response.json()
    job = api_client.get(f"{COMPARE}{response.json()['id']}/").json()
    assert (job["start"], job["end"]) == tuple(sorted([start, end]))


@pytest.mark.django_db
def test_unknown_jobs_answer_404_and_the_api_is_staff_only(api_client, client):
    assert api_client.get(f"{COMPARE}424242/").status_code == 404
    assert api_client.get(f"{REATTRIBUTE}424242/").status_code == 404
    assert client.get(COMPARE).status_code in (401, 403)
    assert client.post(REATTRIBUTE, {}).status_code in (401, 403)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_reattribution_while_postbacks_keep_arriving_loses_and_doubles_nothing():
    # given: 60 conversions credited to first clicks, and the offer switched to last click
    now = timezone.now()
    offer = OfferFactory.create(attribution_model="first_click", payout=Decimal("10"))
    lasts = {}
    for number in range(60):
        contact = ContactFactory.create()
        first = click(offer, contact, at=now - timedelta(hours=5), channel="sms")
        lasts[f"T-{number}"] = click(offer, contact, at=now - timedelta(hours=2), channel="sms")
        convert(offer, first.click_id, f"T-{number}")
    Offer.objects.filter(pk=offer.pk).update(attribution_model="last_click")
    job = reattribution_create(
        start=timezone.localdate(now) - timedelta(days=1),
        end=timezone.localdate(now),
        offer_id=offer.pk,
        requested_by_id=None,
    )
    errors: list[BaseException] = []

    def live() -> None:
        # Reversals of half of them and 20 new conversions, while the job runs.
        try:
            for number in range(0, 60, 2):
                convert(offer, lasts[f"T-{number}"].click_id, f"T-{number}", status="reversed")
            for number in range(60, 80):
                contact = ContactFactory.create()
                click(offer, contact, at=now - timedelta(hours=5), channel="sms")
                lasts[f"T-{number}"] = click(
                    offer, contact, at=now - timedelta(hours=2), channel="sms"
                )
                convert(offer, lasts[f"T-{number}"].click_id, f"T-{number}")
        except BaseException as error:  # shown by the main thread's assertion
            errors.append(error)
        finally:
            connection.close()

    def reattribution() -> None:
        try:
            reattribution_run(reattribution_id=job.pk)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    # when
    threads = [threading.Thread(target=live), threading.Thread(target=reattribution)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    # then
    assert not errors, errors
    conversions = {c.conversion_id: c for c in Conversion.objects.filter(offer=offer)}
    assert len(conversions) == Conversion.objects.count() == 80
    for number in range(80):
        conversion = conversions[f"T-{number}"]
        assert conversion.credited_click_id == lasts[f"T-{number}"].pk, number
        expected = "reversed" if number < 60 and number % 2 == 0 else "approved"
        assert conversion.status == expected, number
    assert CreditChange.objects.filter(conversion__in=conversions.values()).count() == 60
    assert CreditChange.objects.values("conversion").distinct().count() == 60


@pytest.mark.django_db
def test_the_admin_compares_shows_the_shift_and_exports_it(admin_client_logged_in, history):
    # given
    client = admin_client_logged_in
    offer, sms, email = history["offer"], history["sms"], history["email"]
    today = timezone.localdate(history["now"])
    form = {
        "start": str(today - timedelta(days=2)),
        "end": str(today),
        "dimension": "message",
        "offer": offer.pk,
        "name_1": "first",
        "attribution_model_1": "first_click",
        "name_2": "last",
        "attribution_model_2": "last_click",
        "name_3": "",
        "attribution_model_3": "",
    }
    assert client.get("/admin/reports/comparison/add/").status_code == 200
    # when
    response = client.post("/admin/reports/comparison/add/", form)
    # then: queued, shown with its progress until a worker has run it
    assert response.status_code == 302
    comparison = Comparison.objects.get()
    page = client.get(response["Location"])
    assert b"comparison-progress" in page.content
    comparison_run(comparison_id=comparison.pk)
    page = client.get(response["Location"]).content.decode()
    assert 'id="shift-chart"' in page and 'id="comparison-moved">1<' in page
    assert f'data-key="{email.message_id}"' in page and "email click at" in page
    csv_lines = client.get(f"/admin/reports/comparison/{comparison.pk}/csv/").content.decode()
    header, *lines = csv_lines.strip().splitlines()
    assert header.startswith("message,name,first conversions,first revenue")
    by_key = {line.split(",")[0]: line.split(",") for line in lines}
    assert by_key[str(sms.message_id)][2:] == ["1", "30.0000", "0.0000", "0", "0.0000", "-30.0000"]
    assert client.get("/admin/reports/comparison/").status_code == 200
    # a key that is no number (superscript one, two minus signs, past bigint) is no filter:
    # each was a 500
    for key in ("\u00b9", "--5", "9" * 30):
        assert client.get(response["Location"], {"key": key}).status_code == 200


@pytest.mark.django_db
def test_the_admin_queues_a_reattribution_and_refuses_a_backwards_range(
    admin_client_logged_in, history
):
    # given
    client = admin_client_logged_in
    offer = history["offer"]
    # when
    backwards = client.post(
        "/admin/reports/reattribution/add/",
        {"offer": offer.pk, "start": "2026-03-02", "end": "2026-03-01"},
    )
    queued = client.post(
        "/admin/reports/reattribution/add/",
        {"offer": offer.pk, "start": "2026-03-01", "end": "2026-03-02"},
    )
    # then
    assert backwards.status_code == 200 and b"The start is after the end." in backwards.content
    assert queued.status_code == 302
    job = Reattribution.objects.get()
    assert (job.offer_id, job.status) == (offer.pk, "queued")
    assert client.get("/admin/reports/reattribution/").status_code == 200
    assert client.get(f"/admin/reports/reattribution/{job.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_replaying_a_processed_postback_decides_its_conversion_again(
    admin_client_logged_in, history
):
    # given: a later click made the offer's last click another one, and the model changed
    offer, email = history["offer"], history["email"]
    Offer.objects.filter(pk=offer.pk).update(attribution_model="last_click")
    postback = Postback.objects.get(conversion__conversion_id="A-1")
    # when
    response = admin_client_logged_in.post(
        "/admin/attribution/postback/",
        {"action": "replay", "_selected_action": [postback.pk]},
        follow=True,
    )
    # then
    assert b"1 conversion(s) decided again, 1 now credited elsewhere" in response.content
    conversion = Conversion.objects.get(conversion_id="A-1")
    assert conversion.message_id == email.message_id
    # the status counted once, not again; the credit change is an event that moves no money
    events = conversion.events.order_by("id").values_list(
        "from_status", "to_status", "revenue_delta"
    )
    assert [(before, after, float(delta)) for before, after, delta in events][1:] == [
        ("approved", "approved", 0.0)
    ]
    change = CreditChange.objects.get(conversion=conversion)
    assert change.why == f"replay of postback #{postback.pk}"
    page = admin_client_logged_in.get(f"/admin/attribution/conversion/{conversion.pk}/change/")
    assert f"message #{email.message_id}".encode() in page.content


@pytest.mark.django_db
def test_a_comparison_nobody_took_is_enqueued_again_by_the_sweep(
    history, django_capture_on_commit_callbacks
):
    # given: asked for while the broker was down (its task never ran), and a fresh one
    offer = history["offer"]
    today = timezone.localdate(history["now"])
    configurations = [
        {"name": "first", "attribution_model": "first_click"},
        {"name": "last", "attribution_model": "last_click"},
    ]
    stranded = Comparison.objects.create(
        start=today, end=today, dimension="offer", configurations=configurations
    )
    Comparison.objects.filter(pk=stranded.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    Comparison.objects.create(
        start=today, end=today, dimension="offer", offer=offer, configurations=configurations
    )
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        enqueued = whatif_jobs_sweep()
    # then: only the stranded one; the worker that takes it computes it once
    assert enqueued == 1 and len(callbacks) == 1
    assert comparison_run(comparison_id=stranded.pk) is not None
    assert comparison_run(comparison_id=stranded.pk) is None
    assert Comparison.objects.get(pk=stranded.pk).status == "done"
