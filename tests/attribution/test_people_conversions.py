"""Conversions without a click id: by person, view-through, and people merged across channels."""

from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from attribution.models import Conversion, Postback
from attribution.services.processing import postback_process
from reports.services import rollup_recompute_day
from tests.factories import (
    TEST_POSTBACK_TOKEN,
    ClickFactory,
    ContactFactory,
    LinkFactory,
    MessageFactory,
    OfferFactory,
)
from tests.tracking.helpers import drain
from tracking.models import Click

pytestmark = pytest.mark.django_db

PHONE_BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)


def send(client, network, **params) -> int:
    response = client.get(f"/postback/{network.slug}/", {"token": TEST_POSTBACK_TOKEN, **params})
    assert response.status_code == 200, response.content
    return int(response.json()["postback_id"])


def decided(postback_id: int) -> Conversion:
    postback_process(postback_id=postback_id, batch_size=50)
    postback = Postback.objects.get(pk=postback_id)
    assert postback.status == Postback.Status.PROCESSED, postback.reason
    assert postback.conversion_id is not None
    return Conversion.objects.get(pk=postback.conversion_id)


def sent(offer, contact, *, at, channel="sms"):
    return MessageFactory.create(offer=offer, contact=contact, channel=channel, sent_at=at)


def clicked(message, *, at, **flags):
    return ClickFactory.create(link=LinkFactory.create(message=message), occurred_at=at, **flags)


def test_merged_channels_let_the_cooperative_model_credit_the_email(client, api_client):
    # given: the SMS platform knows Ann's phone, the email platform her email
    now = timezone.now()
    offer = OfferFactory.create(attribution_model="cooperative", sms_window_days=1)
    by_phone = ContactFactory.create(phone="+12015550123")
    by_email = ContactFactory.create(phone=None, email="ann@example.com")
    sms_click = clicked(
        sent(offer, by_phone, at=now - timedelta(days=4)), at=now - timedelta(days=3)
    )
    email = sent(offer, by_email, at=now - timedelta(days=2), channel="email")
    email_click = clicked(email, at=now - timedelta(days=1))
    # when: a platform says they are one person, then the network names the SMS click
    identified = api_client.post(
        "/api/v1/contacts/identify/",
        {"phone": "+12015550123", "email": "ann@example.com"},
        format="json",
    )
    conversion = decided(send(client, offer.network, click_id=sms_click.click_id, txid="T1"))
    # then: the SMS is outside its 1-day window; the email clicked yesterday earns it
    assert identified.status_code == 200
    assert conversion.attributed
    assert conversion.credited_click_id == email_click.pk
    assert conversion.message_id == email.pk
    assert conversion.contact_id == by_phone.pk
    assert conversion.attribution_type == "click_through"


@pytest.mark.parametrize(
    "person",
    [
        {"email": "Ann@Example.com"},
        {"phone": "+1 201 555 0123"},
        {"external_id": "crm-1"},
        {"customer_id": "crm-1"},
        {"user_id": "crm-1"},
    ],
)
def test_a_conversion_naming_the_person_and_the_offer_credits_their_click(
    client, api_client, person
):
    # given
    now = timezone.now()
    offer = OfferFactory.create(attribution_model="last_click")
    ann = ContactFactory.create(phone="+12015550123", email="ann@example.com", external_id="crm-1")
    first = clicked(sent(offer, ann, at=now - timedelta(days=3)), at=now - timedelta(days=2))
    last = clicked(sent(offer, ann, at=now - timedelta(days=2)), at=now - timedelta(hours=5))
    clicked(sent(offer, ann, at=now - timedelta(hours=2)), at=now - timedelta(hours=1), is_bot=True)
    # when
    conversion = decided(send(client, offer.network, offer=offer.pk, order_id="O-1", **person))
    # then
    assert conversion.attributed
    assert conversion.credited_click_id == last.pk != first.pk
    assert conversion.attribution_type == "click_through"
    assert conversion.payout == offer.payout
    row = api_client.get(
        "/api/v1/conversions/", {"network": offer.network.slug, "conversion_id": "O-1"}
    ).json()["results"][0]
    assert (row["attributed"], row["click_id"], row["attribution_type"], row["contact"]) == (
        True,
        last.click_id,
        "click_through",
        ann.pk,
    )


def test_an_unknown_person_is_kept_unattributed_with_the_reason(client):
    offer = OfferFactory.create()
    conversion = decided(
        send(client, offer.network, email="nobody@example.com", offer_id=offer.pk, payout="3")
    )
    assert not conversion.attributed
    assert conversion.reason == "unknown_person"
    assert conversion.offer_id == offer.pk
    assert conversion.payout == Decimal("3")


def test_a_person_whose_click_is_older_than_the_window_is_outside_it(client):
    now = timezone.now()
    offer = OfferFactory.create(click_window_days=7)
    ann = ContactFactory.create(email="ann@example.com")
    clicked(sent(offer, ann, at=now - timedelta(days=9)), at=now - timedelta(days=8))
    conversion = decided(send(client, offer.network, email="ann@example.com", offer=offer.pk))
    assert (conversion.attributed, conversion.reason) == (False, "outside_window")
    assert conversion.contact_id == ann.pk


def test_a_person_with_no_click_and_no_view_window_has_no_credit(client):
    ann = ContactFactory.create(email="ann@example.com")
    offer = OfferFactory.create()
    sent(offer, ann, at=timezone.now() - timedelta(hours=1))
    conversion = decided(send(client, offer.network, email="ann@example.com", offer=offer.pk))
    assert (conversion.attributed, conversion.reason, conversion.attribution_type) == (
        False,
        "no_click",
        None,
    )


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"email": "ann@example.com"}, "offer_id is required"),
        ({"email": "not-an-email", "offer_id": "1"}, "email"),
        ({"phone": "12", "offer_id": "1"}, "phone"),
        ({"email": "ann@example.com", "offer": "abc"}, "offer"),
    ],
)
def test_a_person_without_a_usable_offer_or_identifier_is_400_and_kept(client, params, reason):
    offer = OfferFactory.create()
    response = client.get(
        f"/postback/{offer.network.slug}/", {"token": TEST_POSTBACK_TOKEN, **params}
    )
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert Postback.objects.get().status == Postback.Status.INVALID


def test_an_offer_of_another_network_is_an_unknown_offer(client):
    ann = ContactFactory.create(email="ann@example.com")
    mine, theirs = OfferFactory.create(), OfferFactory.create()
    sent(theirs, ann, at=timezone.now() - timedelta(hours=1))
    conversion = decided(send(client, mine.network, email="ann@example.com", offer=theirs.pk))
    assert (conversion.attributed, conversion.reason) == (False, "unknown_offer")


def test_a_person_conversion_without_an_id_counts_once_and_takes_status_changes(client):
    # given
    now = timezone.now()
    offer = OfferFactory.create()
    ann = ContactFactory.create(email="ann@example.com")
    clicked(sent(offer, ann, at=now - timedelta(hours=3)), at=now - timedelta(hours=2))
    params = {"email": "ann@example.com", "offer_id": offer.pk, "payout": "9"}
    # when
    first = decided(send(client, offer.network, **params))
    again = decided(send(client, offer.network, **params))
    reversed_ = decided(send(client, offer.network, **params, status="chargeback"))
    # then
    assert first.pk == again.pk == reversed_.pk
    assert Conversion.objects.count() == 1
    assert reversed_.status == "reversed"


def test_view_through_credits_the_latest_send_inside_the_window(client, api_client):
    # given: two sends of the offer to Ann, never clicked; a third one too old
    now = timezone.now()
    offer = OfferFactory.create(view_window_hours=24)
    ann = ContactFactory.create(email="ann@example.com")
    sent(offer, ann, at=now - timedelta(hours=30))
    earlier = sent(offer, ann, at=now - timedelta(hours=20))
    latest = sent(offer, ann, at=now - timedelta(hours=3), channel="email")
    sent(offer, ann, at=now + timedelta(hours=1))
    # when
    conversion = decided(
        send(client, offer.network, email="ann@example.com", offer=offer.pk, txid="V-1")
    )
    # then
    assert conversion.attributed
    assert conversion.attribution_type == "view_through"
    assert conversion.message_id == latest.pk != earlier.pk
    assert conversion.credited_click_id is None
    assert conversion.creative_id == latest.creative_id
    row = api_client.get("/api/v1/conversions/", {"conversion_id": "V-1"}).json()["results"][0]
    assert (row["attributed"], row["attribution_type"], row["click_id"], row["message"]) == (
        True,
        "view_through",
        None,
        latest.pk,
    )


def test_view_through_outside_its_window_credits_nothing(client):
    now = timezone.now()
    offer = OfferFactory.create(view_window_hours=12)
    ann = ContactFactory.create(email="ann@example.com")
    sent(offer, ann, at=now - timedelta(hours=13))
    conversion = decided(send(client, offer.network, email="ann@example.com", offer=offer.pk))
    assert (conversion.attributed, conversion.reason, conversion.attribution_type) == (
        False,
        "no_click",
        None,
    )


def test_click_through_wins_over_a_later_unclicked_send(client):
    # given: an old clicked send, then a newer send never clicked, inside the view window
    now = timezone.now()
    offer = OfferFactory.create(view_window_hours=48)
    ann = ContactFactory.create(email="ann@example.com")
    click = clicked(sent(offer, ann, at=now - timedelta(days=5)), at=now - timedelta(days=4))
    sent(offer, ann, at=now - timedelta(hours=1))
    # when: by person, and by the click id
    by_person = decided(
        send(client, offer.network, email="ann@example.com", offer=offer.pk, txid="P")
    )
    by_click = decided(send(client, offer.network, click_id=click.click_id, txid="C"))
    # then
    for conversion in (by_person, by_click):
        assert conversion.attribution_type == "click_through"
        assert conversion.credited_click_id == click.pk


def test_a_named_click_outside_its_window_falls_back_to_view_through(client):
    now = timezone.now()
    offer = OfferFactory.create(click_window_days=1, view_window_hours=6)
    ann = ContactFactory.create(email="ann@example.com")
    old = clicked(sent(offer, ann, at=now - timedelta(days=3)), at=now - timedelta(days=2))
    recent = sent(offer, ann, at=now - timedelta(hours=2))
    conversion = decided(send(client, offer.network, click_id=old.click_id))
    assert conversion.attribution_type == "view_through"
    assert conversion.message_id == recent.pk


def test_report_rows_count_view_through_apart(client, api_client, admin_client_logged_in):
    # given: one click-through and one view-through conversion of the same offer, today
    # (sends and click never before midnight: a run just after it keeps them on one day)
    now = timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    sent_at, clicked_at = (max(now - timedelta(hours=h), midnight) for h in (3, 2))
    offer = OfferFactory.create(view_window_hours=24, payout=Decimal("10"))
    ann = ContactFactory.create(email="ann@example.com")
    bob = ContactFactory.create(email="bob@example.com")
    clicked(sent(offer, ann, at=sent_at), at=clicked_at)
    sent(offer, bob, at=sent_at)
    decided(send(client, offer.network, email="ann@example.com", offer=offer.pk, payout="10"))
    decided(send(client, offer.network, email="bob@example.com", offer=offer.pk, payout="4"))
    # when
    day = timezone.localdate(now)
    rollup_recompute_day(day=day)
    response = api_client.get(
        "/api/v1/reports/daily/",
        {"dimension": "offer", "start": day.isoformat(), "end": day.isoformat()},
    )
    # then
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert (row["conversions"], row["revenue"]) == (1, "10.0000")
    assert (row["view_through_conversions"], row["view_through_revenue"]) == (1, "4.0000")
    assert row["epc"] == "10.0000"  # revenue / one unique click: view-through never inflates it
    assert row["revenue_per_send"] == "5.0000"
    # and the admin page and its CSV show the same columns
    params = {"dimension": "offer", "start": day.isoformat(), "end": day.isoformat()}
    page = admin_client_logged_in.get("/admin/reports/daily/", params)
    assert page.status_code == 200
    assert "View-through" in page.content.decode()
    exported = admin_client_logged_in.get(page.context["csv_url"]).content.decode()
    header, first = (line.split(",") for line in exported.splitlines()[:2])
    values = dict(zip(header, first, strict=True))
    assert (values["conversions"], values["view_through_conversions"]) == ("1", "1")
    assert values["view_through_revenue"].startswith("4")


def test_a_conversion_by_person_waits_while_their_click_is_still_in_the_spool(client, spool_dir):
    # given: Ann clicked the offer's SMS; the redirect spooled the click, not yet drained
    offer = OfferFactory.create(attribution_model="last_click")
    ann = ContactFactory.create(email="ann@example.com")
    link = LinkFactory.create(message=sent(offer, ann, at=timezone.now() - timedelta(hours=1)))
    assert client.get(f"/{link.code}", HTTP_USER_AGENT=PHONE_BROWSER).status_code == 302
    assert not Click.objects.exists()
    # when: the network names her by email, and the worker runs, even well after the grace
    postback_id = send(client, offer.network, offer=offer.pk, order_id="O-1", email=ann.email)
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        postback_process(postback_id=postback_id, batch_size=50)
    # then: nothing is decided while her click may still be in the spool
    assert Postback.objects.get(pk=postback_id).status == Postback.Status.RECEIVED
    assert not Conversion.objects.exists()
    # when: the drainer moves the spool into PostgreSQL and the retry runs
    drain(spool_dir)
    conversion = decided(postback_id)
    # then: her spooled click earns the conversion
    assert conversion.attributed
    assert conversion.credited_click_id == Click.objects.get(link=link).pk
    assert conversion.contact_id == ann.pk


def test_a_conversion_by_person_is_decided_at_once_when_the_spool_is_drained(client, spool_dir):
    # given: a spooled click of someone else, drained; Ann never clicked
    offer = OfferFactory.create()
    ann = ContactFactory.create(email="ann@example.com")
    bob = ContactFactory.create(email="bob@example.com")
    sent(offer, ann, at=timezone.now() - timedelta(hours=1))
    link = LinkFactory.create(message=sent(offer, bob, at=timezone.now() - timedelta(hours=1)))
    assert client.get(f"/{link.code}", HTTP_USER_AGENT=PHONE_BROWSER).status_code == 302
    drain(spool_dir)
    # when
    conversion = decided(send(client, offer.network, offer=offer.pk, email=ann.email))
    # then
    assert not conversion.attributed
    assert conversion.reason == "no_click"
