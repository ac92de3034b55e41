from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from tests.factories import (
    ClickFactory,
    ContactFactory,
    ConversionEventFactory,
    ConversionFactory,
    LinkFactory,
    MessageFactory,
)


def journey_url(contact_id: int) -> str:
    return f"/admin/reports/journey/{contact_id}/"


def attributed_conversion(click, **fields):
    return ConversionFactory.create(
        network=click.offer.network,
        click_id=click.click_id,
        attributed=True,
        attribution_model=click.offer.attribution_model,
        credited_click=click,
        message=click.message,
        creative=click.message.creative,
        campaign=click.message.campaign,
        offer=click.offer,
        contact=click.contact,
        **fields,
    )


@pytest.mark.django_db
def test_journey_shows_messages_clicks_flags_and_the_credited_click(admin_client_logged_in):
    # given: an SMS and an email to one contact, a preview, a bot, a duplicate and two real taps
    now = timezone.now()
    contact = ContactFactory.create(phone="+12015550199")
    sms = MessageFactory.create(contact=contact, channel="sms", sent_at=now - timedelta(days=2))
    sms.offer.attribution_model = "last_click"
    sms.offer.save()
    email = MessageFactory.create(
        contact=contact,
        channel="email",
        offer=sms.offer,
        sent_at=now - timedelta(days=1),
        delivered_at=now - timedelta(days=1),
    )
    sms_link = LinkFactory.create(message=sms, code="smsCODE1")
    email_link = LinkFactory.create(message=email, code="emlCODE1")
    ClickFactory.create(link=sms_link, click_id="preview-click-000001", is_preview=True)
    ClickFactory.create(link=sms_link, click_id="bot-click-0000000001", is_bot=True)
    first_tap = ClickFactory.create(
        link=sms_link, click_id="sms-tap-000000000001", occurred_at=now - timedelta(hours=30)
    )
    ClickFactory.create(
        link=sms_link,
        click_id="sms-tap-duplicate-001",
        is_duplicate=True,
        occurred_at=now - timedelta(hours=30) + timedelta(minutes=2),
    )
    credited_tap = ClickFactory.create(
        link=email_link,
        click_id="email-tap-00000000001",
        is_imported=True,
        occurred_at=now - timedelta(hours=3),
    )
    conversion = attributed_conversion(
        credited_tap, conversion_id="order-777", payout=Decimal("25.00"), status="reversed"
    )
    ConversionEventFactory.create(
        conversion=conversion, to_status="approved", payout=Decimal(25), revenue_delta=Decimal(25)
    )
    ConversionEventFactory.create(
        conversion=conversion,
        from_status="approved",
        to_status="reversed",
        payout=Decimal(25),
        revenue_delta=Decimal(-25),
    )

    # when
    response = admin_client_logged_in.get(journey_url(contact.pk))

    # then
    assert response.status_code == 200
    html = response.content.decode()
    assert "Journey of contact #" in html
    assert html.count('class="message-row"') == 2
    assert "smsCODE1" in html and "emlCODE1" in html
    assert html.count('class="click-row') == 5
    for flag in ("flag-bot", "flag-preview", "flag-duplicate", "flag-imported"):
        assert flag in html
    assert 'class="click-row credited" data-click-id="email-tap-00000000001"' in html
    assert f'data-click-id="{first_tap.click_id}"' in html
    assert 'class="click-row credited" data-click-id="sms-tap-000000000001"' not in html
    assert "credited: conversion order-777 (Last click)" in html
    assert "new &rarr; approved" in html and "approved &rarr; reversed" in html
    assert "-25.00" in html
    # a superuser sees the phone in full
    assert "+12015550199" in html


@pytest.mark.django_db
def test_journey_shows_an_unattributed_conversion_with_its_reason(admin_client_logged_in):
    # given: a conversion naming the contact's bot click, left without credit
    click = ClickFactory.create(click_id="bot-only-click-00001", is_bot=True)
    ConversionFactory.create(
        network=click.offer.network,
        conversion_id="order-1",
        click_id=click.click_id,
        reason="bot_click",
    )

    # when
    response = admin_client_logged_in.get(journey_url(click.contact_id))

    # then
    html = response.content.decode()
    assert "order-1" in html
    assert "Unattributed: bot_click" in html
    assert 'class="click-row credited"' not in html
    assert "credited: conversion" not in html


@pytest.mark.django_db
def test_journey_masks_the_phone_for_staff_without_the_permission(client):
    # given: a staff user who may view contacts but not their phone numbers
    contact = ContactFactory.create(phone="+12015550142", email="jane.doe@example.com")
    user = get_user_model().objects.create_user(
        username="viewer", password="viewer-password", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_contact"))
    client.force_login(user)

    # when
    response = client.get(journey_url(contact.pk))

    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "+12015550142" not in html and "jane.doe@example.com" not in html
    assert "+1201•••0142" in html
    assert "j•••@example.com" in html


@pytest.mark.django_db
def test_journey_is_forbidden_to_staff_who_may_not_view_contacts(client):
    # given
    contact = ContactFactory.create()
    user = get_user_model().objects.create_user(username="nobody", password="x", is_staff=True)
    client.force_login(user)

    # when
    response = client.get(journey_url(contact.pk))

    # then
    assert response.status_code == 403


@pytest.mark.django_db
def test_journey_sends_anonymous_visitors_to_the_admin_login(client):
    # given
    contact = ContactFactory.create()

    # when
    response = client.get(journey_url(contact.pk))

    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("contact_id", ["999999", "99999999999999999999999", "0", "abc", "-1"])
def test_journey_of_an_unknown_contact_is_a_404(admin_client_logged_in, contact_id):
    # when
    response = admin_client_logged_in.get(f"/admin/reports/journey/{contact_id}/")

    # then
    assert response.status_code == 404
