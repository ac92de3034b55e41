"""The database itself refuses dishonest rows, whatever code writes them."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from attribution.models import Conversion
from tests.factories import (
    ClickFactory,
    ContactFactory,
    CreativeFactory,
    LinkFactory,
    NetworkFactory,
    OfferFactory,
)
from tracking.models import Contact


def refused(create) -> bool:
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


@pytest.mark.django_db
def test_a_link_code_is_unique():
    # given
    LinkFactory.create(code="abcdefg")

    # then
    assert refused(lambda: LinkFactory.create(code="abcdefg"))


@pytest.mark.django_db
def test_the_same_click_cannot_be_stored_twice():
    # given: clicks are partitioned by time, so the unique key is (click_id, occurred_at);
    # a click read twice from the spool carries both unchanged
    click = ClickFactory.create()

    # then
    assert refused(
        lambda: ClickFactory.create(click_id=click.click_id, occurred_at=click.occurred_at)
    )


@pytest.mark.django_db
def test_a_conversion_is_unique_per_network_and_conversion_id():
    # given
    network = NetworkFactory.create()
    other_network = NetworkFactory.create()

    def conversion(on_network, conversion_id, click_id="c1"):
        now = timezone.now()
        return Conversion.objects.create(
            network=on_network,
            conversion_id=conversion_id,
            click_id=click_id,
            occurred_at=now,
            received_at=now,
        )

    conversion(network, "order-1")

    # then
    assert refused(lambda: conversion(network, "order-1", click_id="c2"))
    assert not refused(lambda: conversion(other_network, "order-1"))
    # without its own id a conversion is keyed on (network, click id)
    conversion(network, None, click_id="c9")
    assert refused(lambda: conversion(network, None, click_id="c9"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [("phone", "+12015550123"), ("email", "ann@example.com"), ("external_id", "crm-1")],
)
def test_each_contact_identifier_is_unique_when_set(field, value):
    # given
    Contact.objects.create(**{field: value})

    # then
    assert refused(lambda: Contact.objects.create(**{field: value}))


@pytest.mark.django_db
def test_contacts_without_a_given_identifier_do_not_collide():
    # when
    Contact.objects.create(phone="+12015550123")
    Contact.objects.create(phone="+12015550124")

    # then
    assert Contact.objects.filter(email__isnull=True).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "values",
    [
        {},
        {"phone": "2015550123"},
        {"phone": "+1 201 555 0123"},
        {"email": "Ann@Example.com"},
    ],
)
def test_a_contact_needs_an_identifier_in_normal_form(values):
    # then
    assert refused(lambda: Contact.objects.create(**values))


@pytest.mark.django_db
def test_a_creative_slug_is_unique_within_its_campaign():
    # given
    creative = CreativeFactory.create(slug="v1")

    # then
    assert refused(lambda: CreativeFactory.create(slug="v1", campaign=creative.campaign))
    assert not refused(lambda: CreativeFactory.create(slug="v1"))


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["click_window_days", "sms_window_days", "email_window_days"])
@pytest.mark.parametrize(("days", "accepted"), [(0, False), (1, True), (90, True), (91, False)])
def test_offer_windows_are_between_1_and_90_days(field, days, accepted):
    # then
    assert refused(lambda: OfferFactory.create(**{field: days})) is not accepted


@pytest.mark.django_db
def test_payouts_are_never_negative():
    # given
    network = NetworkFactory.create()
    now = timezone.now()

    # then
    assert refused(lambda: OfferFactory.create(payout=Decimal("-0.01")))
    assert not refused(lambda: OfferFactory.create(payout=Decimal("0")))
    assert refused(
        lambda: Conversion.objects.create(
            network=network,
            conversion_id="x",
            payout=Decimal("-1"),
            occurred_at=now,
            received_at=now,
        )
    )


@pytest.mark.django_db
def test_contacts_are_shown_without_personal_data():
    # given
    contact = ContactFactory.create(phone="+12015550123")

    # then
    assert "555" not in str(contact)
