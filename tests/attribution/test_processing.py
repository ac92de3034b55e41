"""Processing on the database: conversions, events and decisions from stored postbacks."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from attribution.models import Conversion, ConversionEvent, Postback
from attribution.services.processing import postback_process
from tests.factories import (
    TEST_POSTBACK_TOKEN,
    ClickFactory,
)

pytestmark = pytest.mark.django_db


def send(client, network, **params):
    return client.get(f"/postback/{network.slug}/", {"token": TEST_POSTBACK_TOKEN, **params})


def process(response) -> Postback:
    postback_id = response.json()["postback_id"]
    postback_process(postback_id=postback_id, batch_size=50)
    return Postback.objects.get(pk=postback_id)


def test_a_postback_for_a_known_click_credits_it(client):
    # given
    click = ClickFactory.create(occurred_at=timezone.now() - timedelta(hours=1))
    network = click.offer.network
    # when
    postback = process(send(client, network, click_id=click.click_id, payout="12.5", txid="T1"))
    # then
    conversion = Conversion.objects.get()
    assert postback.status == Postback.Status.PROCESSED
    assert conversion.attributed
    assert conversion.credited_click_id == click.pk
    assert conversion.message_id == click.message_id
    assert conversion.contact_id == click.contact_id
    assert conversion.offer_id == click.offer_id
    assert conversion.campaign_id == click.message.campaign_id
    assert conversion.creative_id == click.message.creative_id
    assert conversion.payout == Decimal("12.5")
    assert conversion.attribution_model == "first_click"
    assert ConversionEvent.objects.get().revenue_delta == Decimal("12.5")
