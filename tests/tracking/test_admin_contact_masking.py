from typing import cast

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from tests.factories import ContactFactory
from tracking.models import Contact

PHONE = "+12015550123"
EMAIL = "jane.doe@example.com"


def _contact() -> Contact:
    return cast(Contact, ContactFactory(phone=PHONE, email=EMAIL, external_id="crm-77"))


def _viewer_client(*codenames: str) -> Client:
    user = get_user_model().objects.create_user(
        username="viewer", password="viewer-password", is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="tracking", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_superuser_sees_full_phones_and_emails_in_the_contact_list(admin_client_logged_in):
    # given
    _contact()

    # when
    page = admin_client_logged_in.get("/admin/tracking/contact/").content.decode()

    # then
    assert PHONE in page
    assert EMAIL in page


@pytest.mark.django_db
def test_a_view_only_user_sees_contacts_masked_everywhere():
    # given
    contact = _contact()
    client = _viewer_client("view_contact")

    # when
    listing = client.get("/admin/tracking/contact/")
    searched = client.get("/admin/tracking/contact/", {"q": "crm-77"})
    detail = client.get(f"/admin/tracking/contact/{contact.pk}/change/")

    # then
    for response in (listing, searched, detail):
        assert response.status_code == 200
        page = response.content.decode()
        assert "+1201•••0123" in page
        assert "j•••@example.com" in page
        assert PHONE not in page
        assert "jane.doe" not in page


@pytest.mark.django_db
def test_a_user_with_the_phone_permission_sees_contacts_in_full():
    # given
    contact = _contact()
    client = _viewer_client("view_contact", "view_contact_phone")

    # when
    listing = client.get("/admin/tracking/contact/").content.decode()
    detail = client.get(f"/admin/tracking/contact/{contact.pk}/change/").content.decode()

    # then
    assert PHONE in listing
    assert EMAIL in listing
    assert PHONE in detail


@pytest.mark.django_db
def test_an_editor_without_the_phone_permission_keeps_the_stored_phone(client):
    # given: may change contacts, may not see their phones
    contact = _contact()
    editor = _viewer_client("view_contact", "change_contact")

    # when
    form = editor.get(f"/admin/tracking/contact/{contact.pk}/change/").content.decode()
    saved = editor.post(f"/admin/tracking/contact/{contact.pk}/change/", {"external_id": "crm-78"})

    # then
    assert PHONE not in form
    assert saved.status_code == 302
    contact.refresh_from_db()
    assert (contact.phone, contact.email, contact.external_id) == (PHONE, EMAIL, "crm-78")
