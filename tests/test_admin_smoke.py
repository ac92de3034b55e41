"""One smoke test per admin page of every registered model, whoever registered it:
the list (plain and searched), the add form, and the change form of a real row."""

import inspect

import factory
import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Model
from django.urls import reverse

from config.masking import phone_masked
from tests import factories
from tracking.admin import LargeTablePaginator
from tracking.models import Contact

MODEL_ADMINS = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
IDS = [model._meta.label for model, _ in MODEL_ADMINS]

FACTORIES = {
    candidate._meta.model: candidate
    for _, candidate in inspect.getmembers(factories, inspect.isclass)
    if issubclass(candidate, factory.django.DjangoModelFactory)
    and candidate is not factory.django.DjangoModelFactory
    and candidate._meta.model is not None
}


def _url(model: type[Model], page: str, *args: object) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{page}", args=args)


@pytest.mark.django_db
def test_admin_index_lists_the_apps(admin_client_logged_in):
    # when
    response = admin_client_logged_in.get("/admin/")

    # then
    assert response.status_code == 200
    for label in ("tracking", "attribution"):
        assert f"/admin/{label}/" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "model_admin"), MODEL_ADMINS, ids=IDS)
def test_changelist_page_answers(admin_client_logged_in, model, model_admin):
    # given: a row to show when we know how to make one
    if model in FACTORIES:
        FACTORIES[model].create()

    # when
    response = admin_client_logged_in.get(_url(model, "changelist"), follow=True)
    searched = admin_client_logged_in.get(
        _url(model, "changelist"), {"q": "zz-no-match"}, follow=True
    )
    # a digit to str.isdigit() that int() refuses (superscript one): the contact search
    # read it as a merged contact's id and answered 500
    odd_digit = admin_client_logged_in.get(_url(model, "changelist"), {"q": "\u00b9"}, follow=True)

    # then: a page (some admins redirect their list to a custom page)
    assert response.status_code == 200
    assert searched.status_code == 200
    assert odd_digit.status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "model_admin"), MODEL_ADMINS, ids=IDS)
def test_add_page_answers(admin_client_logged_in, rf, staff_user, model, model_admin):
    # given
    request = rf.get("/")
    request.user = staff_user
    may_add = model_admin.has_add_permission(request)

    # when
    response = admin_client_logged_in.get(_url(model, "add"))

    # then: a form, or a clear refusal for rows only the system writes
    assert response.status_code == (200 if may_add else 403)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("model", "model_admin"),
    [(model, model_admin) for model, model_admin in MODEL_ADMINS if model in FACTORIES],
    ids=[model._meta.label for model, _ in MODEL_ADMINS if model in FACTORIES],
)
def test_change_page_of_a_real_row_answers(admin_client_logged_in, model, model_admin):
    # given
    row = FACTORIES[model].create()

    # when
    response = admin_client_logged_in.get(_url(model, "change", row.pk))

    # then
    assert response.status_code == 200


@pytest.mark.django_db
def test_contact_list_masks_phone_numbers(client):
    # given: a staff user who may view contacts but not their phones (superusers see them)
    factories.ContactFactory.create(phone="+12015550123")
    viewer = get_user_model().objects.create_user(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_contact"))
    client.force_login(viewer)

    # when
    response = client.get("/admin/tracking/contact/")
    found = client.get("/admin/tracking/contact/", {"q": "+1 (201) 555-0123"})

    # then
    page = response.content.decode()
    assert "+1201•••0123" in page
    assert "+12015550123" not in page
    assert "+1201•••0123" in found.content.decode()
    assert phone_masked("+12015550123") == "+1201•••0123"


@pytest.mark.django_db
def test_large_table_lists_do_not_count_the_whole_table(
    admin_client_logged_in, django_assert_max_num_queries
):
    # given
    for _ in range(3):
        factories.ClickFactory.create()

    # when
    with django_assert_max_num_queries(12):
        response = admin_client_logged_in.get("/admin/tracking/click/")

    # then
    assert response.status_code == 200
    assert response.content.decode().count("/admin/tracking/click/") >= 3


@pytest.mark.django_db
def test_a_contact_added_in_the_admin_is_normalised_and_a_bad_phone_refused(
    admin_client_logged_in,
):
    # when
    added = admin_client_logged_in.post(
        "/admin/tracking/contact/add/",
        {"phone": "+1 (201) 555-0177", "email": "Ann@Example.com", "external_id": ""},
    )
    refused = admin_client_logged_in.post(
        "/admin/tracking/contact/add/", {"phone": "555", "email": "", "external_id": ""}
    )

    # then
    assert added.status_code == 302
    contact = Contact.objects.get()
    assert (contact.phone, contact.email, contact.external_id) == (
        "+12015550177",
        "ann@example.com",
        None,
    )
    assert refused.status_code == 200
    assert "international format" in refused.content.decode()
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_large_table_paginator_counts_a_filtered_list_only_up_to_its_limit(monkeypatch):
    # given
    monkeypatch.setattr("tracking.admin.COUNT_LIMIT", 2)
    for _ in range(4):
        factories.ContactFactory.create()

    # when
    filtered = LargeTablePaginator(Contact.objects.filter(phone__startswith="+1"), 50)
    small_table = LargeTablePaginator(Contact.objects.all(), 50)

    # then: "at least 3" is enough to page through, and costs a bounded query
    assert filtered.count == 3
    assert small_table.count == 3
