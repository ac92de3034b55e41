"""Deciding stored conversions again gives exactly what the live worker decides.

Generated histories (seeded, so a failure repeats): contacts with SMS and email clicks,
bots and previews among them, sends nobody clicked (for view-through), conversions at
random times and exactly at window edges, some naming a click and some naming the person
(email and offer), some postbacks sent twice. For each configuration the offer is set to
it and the live worker decides the postbacks; `conversions_credit` must then credit every
one of those conversions with the same click, or refuse it for the same reason, alone and with
all configurations at once (as a comparison asks).
"""

import random
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from attribution.models import Conversion, Offer
from attribution.services.processing import postback_process
from attribution.services.recredit import (
    CreditSettings,
    conversions_credit,
    conversions_stored,
)
from tests.factories import (
    TEST_POSTBACK_TOKEN,
    ClickFactory,
    ContactFactory,
    LinkFactory,
    MessageFactory,
    OfferFactory,
)

pytestmark = pytest.mark.django_db

CONFIGURATIONS = [
    CreditSettings("first_click", 30, 1, 5),
    CreditSettings("last_click", 7, 1, 5, view_window_hours=48),
    CreditSettings("cooperative", 30, 1, 5),
    CreditSettings("cooperative", 10, 2, 3, view_window_hours=240),
]


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


Named = tuple[dict[str, str], datetime]


def _history(rng: random.Random, offer: Offer, now: datetime) -> list[Named]:
    """Clicks and sends of a few contacts; returns what each conversion names, and when."""
    conversions: list[Named] = []
    for number in range(8):
        contact = ContactFactory.create(email=f"person{number}-{rng.random():.8f}@example.com")
        clicks = []
        sends = []
        for _ in range(rng.randint(2, 7)):
            channel = rng.choice(["sms", "email"])
            # Most clicks within the short channel windows of each other, some long ago.
            days_ago = rng.uniform(2, 9) if rng.random() < 0.8 else rng.uniform(9, 45)
            at = _whole_seconds(now - timedelta(days=days_ago))
            message = MessageFactory.create(
                offer=offer, contact=contact, channel=channel, sent_at=at - timedelta(hours=1)
            )
            sends.append(message)
            link = LinkFactory.create(message=message)
            flags = rng.choice([{}, {}, {}, {}, {"is_bot": True}, {"is_preview": True}])
            clicks.append(ClickFactory.create(link=link, occurred_at=at, **flags))
        for _ in range(rng.randint(0, 2)):  # sent, never clicked
            at = _whole_seconds(now - timedelta(days=rng.uniform(0.5, 12)))
            sends.append(MessageFactory.create(offer=offer, contact=contact, sent_at=at))
        for _ in range(4):
            anchor = rng.choice([*clicks, *clicks, *sends])
            anchor_at = getattr(anchor, "occurred_at", None) or anchor.sent_at
            edge = rng.choice([None, None, 1, 2, 3, 5, 7, 10, 30, 2 / 24, 10])
            if edge is None:
                at = anchor_at + timedelta(hours=rng.uniform(-12, 24 * 8))
            else:
                # Exactly at the end of a window that starts at a click or a send, or past it.
                at = anchor_at + timedelta(days=edge, seconds=rng.choice([0, 0, 1]))
            if rng.random() < 0.3:
                names = {"email": contact.email, "offer_id": str(offer.pk)}
            else:
                names = {"click_id": rng.choice(clicks).click_id}
            conversions.append((names, min(at, now)))
    return conversions


def _decide_live(client: Client, offer: Offer, conversions, tag: str) -> list[Conversion]:
    ids = []
    for position, (names, at) in enumerate(conversions):
        params = {
            "token": TEST_POSTBACK_TOKEN,
            **names,
            "txid": f"{tag}-{position}",
            "occurred_at": at.isoformat(),
            "payout": "5",
        }
        for _ in range(2 if position % 4 == 0 else 1):  # some sent twice: count once
            response = client.get(f"/postback/{offer.network.slug}/", params)
            assert response.status_code == 200, response.content
            ids.append(response.json()["postback_id"])
    for postback_id in ids:
        postback_process(postback_id=postback_id, batch_size=50)
    stored = {
        conversion.conversion_id: conversion
        for conversion in Conversion.objects.filter(conversion_id__startswith=f"{tag}-")
    }
    assert len(stored) == len(conversions)
    return [stored[f"{tag}-{position}"] for position in range(len(conversions))]


@pytest.mark.parametrize("seed", range(1, 13))
def test_credit_decided_again_equals_the_live_decision_under_every_configuration(seed):
    # given
    rng = random.Random(seed)
    client = Client()
    now = timezone.now()
    offer = OfferFactory.create()
    conversions = _history(rng, offer, now)
    live: list[list[Conversion]] = []
    for number, configuration in enumerate(CONFIGURATIONS):
        Offer.objects.filter(pk=offer.pk).update(
            attribution_model=configuration.attribution_model,
            click_window_days=configuration.click_window_days,
            sms_window_days=configuration.sms_window_days,
            email_window_days=configuration.email_window_days,
            view_window_hours=configuration.view_window_hours,
        )
        live.append(_decide_live(client, offer, conversions, f"s{seed}c{number}"))
    # when
    alone = [
        conversions_credit(
            conversions=conversions_stored(conversion_ids=[c.pk for c in decided]),
            settings_by_offer={offer.pk: [configuration]},
        )
        for configuration, decided in zip(CONFIGURATIONS, live, strict=True)
    ]
    together = conversions_credit(
        conversions=conversions_stored(conversion_ids=[c.pk for c in live[0]]),
        settings_by_offer={offer.pk: CONFIGURATIONS},
    )
    # then
    credited_somewhere = 0
    for number, decided in enumerate(live):
        for position, conversion in enumerate(decided):
            credit = alone[number][conversion.pk][0]
            expected = (
                conversion.credited_click_id,
                conversion.reason,
                conversion.message_id,
                conversion.attribution_type,
            )
            found = (
                credit.click_pk,
                credit.decision.reason,
                credit.message_id,
                credit.attribution_type or None,
            )
            assert found == expected, f"configuration {number}, conversion {position}"
            first = together[live[0][position].pk][number]
            assert (first.click_pk, first.decision.reason, first.message_id) == expected[:3]
            credited_somewhere += conversion.attributed
    # The history is not trivial: some credited, some refused, and models disagree.
    assert credited_somewhere > 0
    reasons = {c.reason for decided in live for c in decided}
    assert "" in reasons and reasons - {""}
    types = {c.attribution_type for decided in live for c in decided}
    assert {"click_through", "view_through", None} <= types
    assert any(not c.click_id for c in live[0])  # some named the person
    assert any(
        a.credited_click_id != b.credited_click_id for a, b in zip(live[0], live[1], strict=True)
    )


def test_a_conversion_without_a_known_click_is_refused_as_the_live_worker_refuses_it(settings):
    settings.CLICK_VISIBILITY_GRACE_SECONDS = 0
    # given
    offer = OfferFactory.create()
    client = Client()
    response = client.get(
        f"/postback/{offer.network.slug}/",
        {"token": TEST_POSTBACK_TOKEN, "click_id": "never-clicked", "txid": "X1"},
    )
    postback_process(postback_id=response.json()["postback_id"], batch_size=1)
    conversion = Conversion.objects.get(conversion_id="X1")
    # when
    credits = conversions_credit(
        conversions=conversions_stored(conversion_ids=[conversion.pk]),
        settings_by_offer={offer.pk: CONFIGURATIONS[:2]},
    )
    # then
    assert conversion.reason == "unknown_click"
    assert [c.decision.reason for c in credits[conversion.pk]] == ["unknown_click"] * 2
