"""Processing on the database: conversions, status events and decisions from stored postbacks."""

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from attribution.models import Conversion, ConversionEvent, Network, Postback
from attribution.services.processing import postback_process
from attribution.services.recovery import postback_replay, postback_sweep
from tests.factories import (
    TEST_POSTBACK_TOKEN,
    ClickFactory,
    ContactFactory,
    LinkFactory,
    MessageFactory,
    NetworkFactory,
    OfferFactory,
)

pytestmark = pytest.mark.django_db


def send(client, network, **params) -> int:
    response = client.get(f"/postback/{network.slug}/", {"token": TEST_POSTBACK_TOKEN, **params})
    assert response.status_code == 200, response.content
    return int(response.json()["postback_id"])


def process(postback_id: int, batch_size: int = 50) -> Postback:
    postback_process(postback_id=postback_id, batch_size=batch_size)
    return Postback.objects.get(pk=postback_id)


def click_on(offer, contact, *, at, channel="sms", **flags):
    message = MessageFactory.create(offer=offer, contact=contact, channel=channel)
    link = LinkFactory.create(message=message)
    return ClickFactory.create(link=link, occurred_at=at, **flags)


def test_a_postback_for_a_known_click_credits_it_and_everything_behind_it(client):
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    # when
    postback = process(send(client, network, click_id=click.click_id, payout="12.5", txid="T1"))
    # then
    conversion = Conversion.objects.get()
    assert postback.status == Postback.Status.PROCESSED
    assert postback.conversion_id == conversion.pk
    assert conversion.processed and conversion.attributed
    assert conversion.credited_click_id == click.pk
    assert conversion.message_id == click.message_id
    assert conversion.contact_id == click.contact_id
    assert conversion.offer_id == click.offer_id
    assert conversion.campaign_id == click.message.campaign_id
    assert conversion.creative_id == click.message.creative_id
    assert conversion.payout == Decimal("12.5")
    assert conversion.attribution_model == "first_click"
    assert conversion.attribution_type == "click_through"
    event = ConversionEvent.objects.get()
    assert (event.from_status, event.to_status) == ("", "approved")
    assert event.revenue_delta == Decimal("12.5")


def test_without_a_payout_the_offer_default_is_used(client):
    offer = OfferFactory.create(payout=Decimal("7.25"))
    click = click_on(offer, ContactFactory.create(), at=timezone.now() - timedelta(hours=1))
    process(send(client, offer.network, click_id=click.click_id))
    assert Conversion.objects.get().payout == Decimal("7.25")


@pytest.mark.parametrize(
    ("model", "credited"), [("first_click", "a"), ("last_click", "b"), ("cooperative", "b")]
)
def test_a_contact_who_clicked_message_a_then_b(client, model, credited):
    # given
    now = timezone.now()
    offer = OfferFactory.create(attribution_model=model)
    contact = ContactFactory.create()
    clicks = {
        "a": click_on(offer, contact, at=now - timedelta(days=3), channel="email"),
        "b": click_on(offer, contact, at=now - timedelta(hours=2)),
    }
    # when: the network names the later click
    process(send(client, offer.network, click_id=clicks["b"].click_id, txid="T"))
    # then
    conversion = Conversion.objects.get()
    assert conversion.credited_click_id == clicks[credited].pk
    assert conversion.message_id == clicks[credited].message_id
    assert conversion.attribution_model == model


def test_cooperative_sms_outside_its_window_loses_to_email_inside_its_window(client):
    now = timezone.now()
    offer = OfferFactory.create(attribution_model="cooperative")
    contact = ContactFactory.create()
    email = click_on(offer, contact, at=now - timedelta(days=4), channel="email")
    sms = click_on(offer, contact, at=now - timedelta(days=2), channel="sms")
    process(send(client, offer.network, click_id=sms.click_id))
    assert Conversion.objects.get().credited_click_id == email.pk


def test_clicks_of_other_contacts_and_other_offers_are_no_candidates(client):
    now = timezone.now()
    offer = OfferFactory.create(attribution_model="first_click")
    contact = ContactFactory.create()
    click_on(offer, ContactFactory.create(), at=now - timedelta(days=5))
    click_on(OfferFactory.create(network=offer.network), contact, at=now - timedelta(days=5))
    named = click_on(offer, contact, at=now - timedelta(hours=1))
    process(send(client, offer.network, click_id=named.click_id))
    assert Conversion.objects.get().credited_click_id == named.pk


@pytest.mark.parametrize(
    ("age", "attributed"),
    [(timedelta(days=7), True), (timedelta(days=7, seconds=1), False)],
    ids=["exactly-7-days", "7-days-and-a-second"],
)
def test_the_click_window_edge_to_the_second(client, age, attributed):
    # given: a 7-day window and a conversion time sent by the network
    offer = OfferFactory.create(click_window_days=7)
    occurred_at = (timezone.now() - timedelta(hours=1)).replace(microsecond=0)
    click = click_on(offer, ContactFactory.create(), at=occurred_at - age)
    # when
    process(send(client, offer.network, click_id=click.click_id, timestamp=occurred_at.isoformat()))
    # then
    conversion = Conversion.objects.get()
    assert conversion.attributed is attributed
    assert conversion.occurred_at == occurred_at
    assert conversion.reason == ("" if attributed else "outside_window")


def test_an_unknown_click_is_retried_while_young_and_then_called_unknown(client, settings):
    # given
    settings.CLICK_VISIBILITY_GRACE_SECONDS = 10
    network = NetworkFactory.create()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        postback_id = send(client, network, click_id="never-recorded", txid="T")
        # when: the worker sees it at once
        first = process(postback_id)
        # then: not decided yet, it waits for the click to land
        assert first.status == Postback.Status.RECEIVED
        assert not Conversion.objects.exists()
        # when: the grace has passed
        traveller.shift(timedelta(seconds=11))
        second = process(postback_id)
    # then
    assert second.status == Postback.Status.PROCESSED
    conversion = Conversion.objects.get()
    assert not conversion.attributed
    assert conversion.reason == "unknown_click"


def test_a_click_that_lands_after_its_postback_is_still_credited(client):
    # given: the postback arrives before the redirect's click reached the table
    offer = OfferFactory.create()
    contact = ContactFactory.create()
    link = LinkFactory.create(message=MessageFactory.create(offer=offer, contact=contact))
    postback_id = send(client, offer.network, click_id="late-click-0123456789")
    assert process(postback_id).status == Postback.Status.RECEIVED
    # when: the click lands a moment later and the retry runs
    click = ClickFactory.create(
        link=link,
        click_id="late-click-0123456789",
        occurred_at=timezone.now() - timedelta(seconds=1),
    )
    process(postback_id)
    # then
    assert Conversion.objects.get().credited_click_id == click.pk


@pytest.mark.parametrize("flag", ["is_bot", "is_preview"])
def test_a_bot_only_click_is_kept_unattributed(client, flag):
    offer = OfferFactory.create()
    bot = click_on(
        offer, ContactFactory.create(), at=timezone.now() - timedelta(hours=1), **{flag: True}
    )
    process(send(client, offer.network, click_id=bot.click_id))
    conversion = Conversion.objects.get()
    assert not conversion.attributed
    assert conversion.reason == "bot_click"
    assert conversion.credited_click_id is None


def test_a_click_of_another_networks_offer_is_an_offer_mismatch(client):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    other = NetworkFactory.create()
    process(send(client, other, click_id=click.click_id))
    assert Conversion.objects.get().reason == "offer_mismatch"


def test_a_postback_naming_another_offer_is_an_offer_mismatch(client):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    process(send(client, click.offer.network, click_id=click.click_id, offer_id=click.offer_id + 1))
    assert Conversion.objects.get().reason == "offer_mismatch"


@pytest.mark.parametrize(
    ("shift", "reason"),
    [(timedelta(minutes=10), "future_time"), (-timedelta(days=91), "too_old")],
)
def test_impossible_conversion_times_are_kept_with_a_reason(client, shift, reason):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    when = int((timezone.now() + shift).timestamp())
    process(send(client, click.offer.network, click_id=click.click_id, timestamp=str(when)))
    conversion = Conversion.objects.get()
    assert not conversion.attributed
    assert conversion.reason == reason


CLICK_ALIASES = ["click_id", "clickid", "aff_sub", "sub1", "subid", "cid", "transaction_id"]


@pytest.mark.parametrize("alias", CLICK_ALIASES)
def test_every_click_id_alias(client, alias):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    process(send(client, click.offer.network, **{alias: click.click_id}))
    conversion = Conversion.objects.get()
    assert conversion.credited_click_id == click.pk
    assert conversion.conversion_id is None


@pytest.mark.parametrize(
    "alias", ["conversion_id", "txid", "tid", "order_id", "adv_sub", "event_id"]
)
def test_every_conversion_id_alias(client, alias):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    process(send(client, click.offer.network, click_id=click.click_id, **{alias: "ORDER-9"}))
    assert Conversion.objects.get().conversion_id == "ORDER-9"


@pytest.mark.parametrize("alias", ["payout", "amount", "sum", "revenue"])
def test_every_payout_alias(client, alias):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    process(send(client, click.offer.network, click_id=click.click_id, **{alias: "3.3333"}))
    assert Conversion.objects.get().payout == Decimal("3.3333")


@pytest.mark.parametrize("alias", ["currency", "cnv_currency"])
def test_every_currency_alias(client, alias):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    process(send(client, click.offer.network, click_id=click.click_id, **{alias: "eur"}))
    assert Conversion.objects.get().currency == "EUR"


@pytest.mark.parametrize("alias", ["status", "conversion_status"])
@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("approved", "approved"),
        ("pending", "pending"),
        ("rejected", "rejected"),
        ("declined", "rejected"),
        ("reversed", "reversed"),
        ("chargeback", "reversed"),
        ("Refund", "reversed"),
    ],
)
def test_every_status_alias_and_synonym(client, alias, word, status):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    process(send(client, click.offer.network, click_id=click.click_id, **{alias: word}))
    assert Conversion.objects.get().status == status


@pytest.mark.parametrize(
    "alias", ["occurred_at", "timestamp", "conversion_unix_timestamp", "datetime"]
)
@pytest.mark.parametrize("form", ["unix", "iso"])
def test_every_time_alias_in_unix_seconds_and_iso_8601(client, alias, form):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=2))
    moment = (timezone.now() - timedelta(hours=1)).replace(microsecond=0)
    value = str(int(moment.timestamp())) if form == "unix" else moment.isoformat()
    process(send(client, click.offer.network, click_id=click.click_id, **{alias: value}))
    assert Conversion.objects.get().occurred_at == moment


def test_a_networks_own_aliases_and_status_words(client):
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    Network.objects.filter(pk=click.offer.network_id).update(
        parameter_aliases={"click_id": ["s2"], "payout": ["p"], "conversion_id": ["oid"]},
        status_map={"3": "rejected"},
    )
    # when
    process(send(client, click.offer.network, s2=click.click_id, p="9.5", oid="X", status="3"))
    # then
    conversion = Conversion.objects.get()
    assert conversion.credited_click_id == click.pk
    assert conversion.payout == Decimal("9.5")
    assert conversion.conversion_id == "X"
    assert conversion.status == "rejected"


def test_json_postbacks_are_processed_like_query_strings(client):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    response = client.post(
        f"/postback/{click.offer.network.slug}/",
        json.dumps({"token": TEST_POSTBACK_TOKEN, "aff_sub": click.click_id, "payout": 2.5}),
        content_type="application/json",
    )
    process(response.json()["postback_id"])
    assert Conversion.objects.get().payout == Decimal("2.5")


def test_the_same_postback_twice_counts_once(client):
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    params = {"click_id": click.click_id, "txid": "T-1", "payout": "5"}
    # when
    first = process(send(client, click.offer.network, **params))
    second = process(send(client, click.offer.network, **params))
    # then
    assert Conversion.objects.count() == 1
    assert ConversionEvent.objects.count() == 1
    assert first.status == second.status == Postback.Status.PROCESSED
    assert second.conversion_id == first.conversion_id
    assert "no change" in second.reason


def test_approved_then_reversed_takes_the_revenue_out(client):
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    process(
        send(client, network, click_id=click.click_id, txid="T", payout="20", status="approved")
    )
    # when
    process(send(client, network, txid="T", status="chargeback"))
    # then
    conversion = Conversion.objects.get()
    assert conversion.status == "reversed"
    events = list(ConversionEvent.objects.order_by("id").values_list("to_status", "revenue_delta"))
    assert events == [("approved", Decimal("20")), ("reversed", Decimal("-20"))]
    assert sum(delta for _, delta in events) == 0


def test_a_conversion_without_its_own_id_is_keyed_on_the_click_id(client):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    process(send(client, network, click_id=click.click_id, status="pending", payout="4"))
    process(send(client, network, click_id=click.click_id, status="approved"))
    conversion = Conversion.objects.get()
    assert conversion.status == "approved"
    assert conversion.payout == Decimal("4")
    assert ConversionEvent.objects.count() == 2


def test_a_late_out_of_order_pending_does_not_undo_an_approval(client):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    process(send(client, network, click_id=click.click_id, txid="T", status="approved"))
    late = process(send(client, network, txid="T", status="pending"))
    assert Conversion.objects.get().status == "approved"
    assert ConversionEvent.objects.count() == 1
    assert "ignored" in late.reason


def test_a_payout_change_is_an_event_with_the_difference(client):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    process(send(client, network, click_id=click.click_id, txid="T", payout="10"))
    process(send(client, network, txid="T", payout="12.5"))
    deltas = list(ConversionEvent.objects.order_by("id").values_list("revenue_delta", flat=True))
    assert deltas == [Decimal("10"), Decimal("2.5")]


def test_one_task_decides_a_whole_batch_in_order(client):
    # given: 30 waiting postbacks, two of them about the same conversion
    network = NetworkFactory.create()
    offer = OfferFactory.create(network=network)
    clicks = [
        click_on(offer, ContactFactory.create(), at=timezone.now() - timedelta(hours=1))
        for _ in range(28)
    ]
    ids = [send(client, network, click_id=c.click_id, txid=f"T{i}") for i, c in enumerate(clicks)]
    ids.append(send(client, network, txid="T0", status="reversed"))
    ids.append(send(client, network, click_id="unknown-but-old", txid="OLD"))
    Postback.objects.filter(pk=ids[-1]).update(received_at=timezone.now() - timedelta(minutes=5))
    # when
    outcome = postback_process(postback_id=ids[5], batch_size=500)
    # then
    assert outcome.processed == 30
    assert not Postback.objects.exclude(status=Postback.Status.PROCESSED).exists()
    assert Conversion.objects.filter(attributed=True).count() == 28
    assert Conversion.objects.get(conversion_id="T0").status == "reversed"
    assert Conversion.objects.get(conversion_id="OLD").reason == "unknown_click"


def test_processing_a_processed_postback_again_changes_nothing(client):
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    postback_id = send(client, click.offer.network, click_id=click.click_id, txid="T")
    process(postback_id)
    before = Conversion.objects.values().get()
    # when
    outcome = postback_process(postback_id=postback_id, batch_size=50)
    # then
    assert outcome.claimed == 0
    assert Conversion.objects.values().get() == before
    assert ConversionEvent.objects.count() == 1


def test_replay_is_idempotent_and_revives_invalid_postbacks(client):
    # given: a processed postback, and one invalid until the network's alias is configured
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    done = send(client, network, click_id=click.click_id, txid="T")
    process(done)
    invalid = client.get(
        f"/postback/{network.slug}/", {"token": TEST_POSTBACK_TOKEN, "s9": click.click_id}
    ).json()["postback_id"]
    Network.objects.filter(pk=network.pk).update(parameter_aliases={"click_id": ["s9"]})
    before = Conversion.objects.values().get(conversion_id="T")
    # when
    outcome = postback_replay(postback_ids=[done, invalid])
    process(done)
    process(invalid)
    # then
    assert outcome.already_processed == 1
    assert outcome.enqueued == 1
    assert Conversion.objects.values().get(conversion_id="T") == before
    assert ConversionEvent.objects.filter(conversion__conversion_id="T").count() == 1
    assert Postback.objects.get(pk=invalid).status == Postback.Status.PROCESSED


def test_the_sweeper_requeues_postbacks_left_waiting_and_gives_up_on_poison(
    client, settings, django_capture_on_commit_callbacks
):
    # given
    settings.POSTBACK_MAX_ATTEMPTS = 3
    network = NetworkFactory.create()
    waiting = send(client, network, click_id="c1")
    fresh = send(client, network, click_id="c2")
    poison = send(client, network, click_id="c3")
    long_ago = timezone.now() - timedelta(minutes=10)
    Postback.objects.filter(pk__in=[waiting, poison]).update(received_at=long_ago)
    Postback.objects.filter(pk=poison).update(attempts=3)
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        outcome = postback_sweep(older_than=timedelta(minutes=2))
    # then
    assert (outcome.enqueued, outcome.given_up) == (1, 1)
    assert len(callbacks) == 1
    assert Postback.objects.get(pk=waiting).last_enqueued_at is not None
    assert Postback.objects.get(pk=fresh).last_enqueued_at is None
    assert Postback.objects.get(pk=poison).status == Postback.Status.FAILED
    # and a second sweep right away leaves the just-queued one alone
    assert postback_sweep(older_than=timedelta(minutes=2)).enqueued == 0


def _run_at_once(count: int, work) -> list[BaseException]:
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            work(index)
        except BaseException as error:  # reported by the test that ran it
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch_size", [1, 500])
@pytest.mark.parametrize("with_conversion_id", [True, False])
def test_twenty_identical_postbacks_at_once_count_once(batch_size, with_conversion_id):
    # given: 20 copies of one postback, received at the same moment
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    params = {"token": TEST_POSTBACK_TOKEN, "click_id": click.click_id, "payout": "5"}
    if with_conversion_id:
        params["txid"] = "SAME"
    ids: list[int] = []
    intake_errors = _run_at_once(
        20,
        lambda _: ids.append(
            Client().get(f"/postback/{network.slug}/", params).json()["postback_id"]
        ),
    )
    assert not intake_errors
    # when: 20 workers process them at the same moment
    errors = _run_at_once(20, lambda i: postback_process(postback_id=ids[i], batch_size=batch_size))
    # then
    assert not errors
    assert Conversion.objects.count() == 1
    assert ConversionEvent.objects.count() == 1
    assert Postback.objects.filter(status=Postback.Status.PROCESSED).count() == 20
    assert Conversion.objects.get().credited_click_id == click.pk


def _postback_wakeups(callbacks: list[Callable[[], object]]) -> list[Callable[[], object]]:
    # Decisions also announce their conversion events (to webhooks) after commit.
    return [
        callback
        for callback in callbacks
        if "conversion_events_announce" not in callback.__qualname__
    ]


def test_a_full_batch_wakes_the_next_task_and_a_short_one_does_not(
    client, django_capture_on_commit_callbacks
):
    # given: five waiting postbacks, and batches of two
    network = NetworkFactory.create()
    ids = [send(client, network, click_id=f"c{n}") for n in range(5)]
    Postback.objects.update(received_at=timezone.now() - timedelta(minutes=1))
    # when: the first task takes a full batch
    with django_capture_on_commit_callbacks() as woken:
        first = postback_process(postback_id=ids[0], batch_size=2)
    # then: it wakes another task for the rest
    assert first.claimed == 2
    assert len(_postback_wakeups(woken)) == 1
    # when: the rest is drained; the last batch is short
    with django_capture_on_commit_callbacks() as woken_again:
        second = postback_process(postback_id=ids[2], batch_size=2)
        last = postback_process(postback_id=ids[4], batch_size=2)
    # then
    assert (second.claimed, last.claimed) == (2, 1)
    assert len(_postback_wakeups(woken_again)) == 1
    assert not Postback.objects.filter(status=Postback.Status.RECEIVED).exists()
