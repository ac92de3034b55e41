"""One person, one contact: merges by message and identify, conflicts, lookups by any identifier."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from attribution.models import Conversion
from tests.factories import (
    ClickFactory,
    ContactFactory,
    ConversionFactory,
    CreativeFactory,
    LinkFactory,
    MessageFactory,
    OfferFactory,
)
from tracking.models import Click, Contact, ContactAlias, ContactConflict, ContactMerge, Message
from tracking.services.contacts import ContactSpec, contact_resolve_one
from tracking.services.merges import contact_conflict_resolve, contacts_merge_sweep

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(db):
    creative = CreativeFactory.create(slug="spring", campaign__slug="spring-sale")
    return creative, OfferFactory.create()


def send(api_client, offer, contact, *, channel="sms", **extra):
    return api_client.post(
        "/api/v1/messages/",
        {
            "contact": contact,
            "channel": channel,
            "campaign": "spring-sale",
            "creative": "spring",
            "offer": offer.pk,
            "sent_at": timezone.now().isoformat(),
            **extra,
        },
        format="json",
        HTTP_X_REQUEST_ID="req-merge-1",
    )


def test_a_message_naming_two_contacts_makes_them_one_and_everything_follows(
    api_client, staff_user, catalog
):
    # given: the SMS platform knows a phone, the email platform an email
    _, offer = catalog
    by_phone = ContactFactory.create(phone="+12015550123")
    by_email = ContactFactory.create(phone=None, email="ann@example.com")
    sms_click = ClickFactory.create(link__message__contact=by_phone, link__message__offer=offer)
    email_click = ClickFactory.create(
        link__message__contact=by_email, link__message__offer=offer, link__message__channel="email"
    )
    conversion = ConversionFactory.create(
        contact=by_email, credited_click=email_click, message=email_click.message, attributed=True
    )
    # when: one message names both
    response = send(api_client, offer, {"phone": "+1 201 555 0123", "email": "Ann@Example.com"})
    # then: the older contact holds everything
    assert response.status_code == 201, response.content
    assert list(Contact.objects.values_list("pk", "phone", "email")) == [
        (by_phone.pk, "+12015550123", "ann@example.com")
    ]
    assert set(Message.objects.values_list("contact_id", flat=True)) == {by_phone.pk}
    assert set(Click.objects.values_list("contact_id", flat=True)) == {by_phone.pk}
    conversion.refresh_from_db()
    assert conversion.contact_id == by_phone.pk
    # past credit stays with the message that earned it
    assert conversion.message_id == email_click.message_id
    assert conversion.credited_click_id == email_click.pk
    assert sms_click.pk in Click.objects.filter(contact_id=by_phone.pk).values_list("pk", flat=True)
    merge = ContactMerge.objects.get()
    assert (merge.survivor_id, merge.merged_contact_id) == (by_phone.pk, by_email.pk)
    assert merge.source == "message"
    assert merge.requested_by_id == staff_user.pk
    assert merge.request_id == "req-merge-1"
    assert merge.moved == {"message": 1, "click": 1, "conversion": 1}


def test_a_merged_contacts_id_and_identifiers_reach_the_survivor(api_client):
    # given
    survivor = ContactFactory.create(phone="+12015550123")
    merged = ContactFactory.create(phone=None, email="ann@example.com", external_id="crm-7")
    # when
    response = api_client.post(
        "/api/v1/contacts/identify/",
        {"phone": "+12015550123", "email": "ann@example.com"},
        format="json",
    )
    # then
    assert response.status_code == 200, response.content
    expected = {
        "id": survivor.pk,
        "phone": "+12015550123",
        "email": "ann@example.com",
        "external_id": "crm-7",
        "merged_ids": [merged.pk],
    }
    assert response.json() == expected
    assert api_client.get(f"/api/v1/contacts/{merged.pk}/").json() == expected
    assert api_client.get(f"/api/v1/contacts/{survivor.pk}/").json() == expected
    for query in (
        {"external_id": "crm-7"},
        {"email": "ANN@example.com"},
        {"phone": "+1 201-555-0123"},
    ):
        found = api_client.get("/api/v1/contacts/", query).json()
        assert found["count"] == 1
        assert found["results"] == [expected]


def test_identify_adds_identifiers_and_creates_a_person_not_yet_known(api_client):
    # when
    created = api_client.post(
        "/api/v1/contacts/identify/",
        {"email": "new@example.com", "external_id": "u-1"},
        format="json",
    )
    again = api_client.post(
        "/api/v1/contacts/identify/", {"external_id": "u-1", "phone": "+12015550199"}, format="json"
    )
    # then
    assert created.status_code == 200
    assert again.json() == {
        "id": created.json()["id"],
        "phone": "+12015550199",
        "email": "new@example.com",
        "external_id": "u-1",
        "merged_ids": [],
    }
    assert Contact.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"phone": "+12015550123"}, "non_field_errors"),
        ({"phone": "555-0123", "email": "a@example.com"}, "phone"),
        ({"email": "not-an-email", "external_id": "x"}, "email"),
        ({"email": "a@example.com", "external_id": "x", "name": "Ann"}, "name"),
        ({"email": "a@example.com", "external_id": "x" * 200}, "external_id"),
    ],
)
def test_identify_refuses_bad_input_with_a_reason(api_client, payload, field):
    response = api_client.post("/api/v1/contacts/identify/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert Contact.objects.count() == 0


def test_finding_contacts_refuses_a_malformed_phone_and_finds_nothing_unknown(api_client):
    assert api_client.get("/api/v1/contacts/", {"phone": "12"}).status_code == 400
    assert api_client.get("/api/v1/contacts/", {"email": "x@example.com"}).json()["count"] == 0
    assert api_client.get("/api/v1/contacts/987654/").status_code == 404


def test_conflicting_identifiers_never_lose_a_message_nor_merge(api_client, catalog):
    # given: the phone belongs to a person with another email
    _, offer = catalog
    ann = ContactFactory.create(phone="+12015550123", email="ann@example.com")
    # when: an SMS and an email name the phone with a different email
    sms = send(api_client, offer, {"phone": "+12015550123", "email": "bob@example.com"})
    email = send(
        api_client, offer, {"phone": "+12015550123", "email": "bob@example.com"}, channel="email"
    )
    # then: each goes to the contact its own channel's address names
    assert sms.status_code == 201, sms.content
    assert email.status_code == 201, email.content
    bob = Contact.objects.get(email="bob@example.com")
    assert Message.objects.get(pk=sms.json()["id"]).contact_id == ann.pk
    assert Message.objects.get(pk=email.json()["id"]).contact_id == bob.pk
    assert bob.phone is None
    ann.refresh_from_db()
    assert ann.email == "ann@example.com"
    assert ContactMerge.objects.count() == 0
    conflicts = ContactConflict.objects.order_by("pk")
    assert [(c.contact_id, c.other_contact_ids, c.kinds, c.status) for c in conflicts] == [
        (ann.pk, [], ["email"], "open"),
        (bob.pk, [ann.pk], ["email"], "open"),
    ]
    assert [c.message_id for c in conflicts] == [sms.json()["id"], email.json()["id"]]


def test_identify_of_conflicting_identifiers_is_409_and_listed(api_client):
    # given
    ContactFactory.create(phone="+12015550123", email="ann@example.com")
    ContactFactory.create(phone=None, email="bob@example.com", external_id="b")
    # when
    response = api_client.post(
        "/api/v1/contacts/identify/",
        {"phone": "+12015550123", "email": "bob@example.com"},
        format="json",
    )
    # then
    assert response.status_code == 409
    assert "error" in response.json()
    assert Contact.objects.count() == 2
    assert ContactConflict.objects.filter(status="open").count() == 1


def test_an_operator_merges_a_conflict_and_the_lost_identifier_still_finds_the_person(
    api_client, staff_user
):
    # given
    ann = ContactFactory.create(phone="+12015550123", email="ann@example.com")
    other = ContactFactory.create(phone="+12015550124", email="ann.work@example.com")
    message = MessageFactory.create(contact=other)
    api_client.post(
        "/api/v1/contacts/identify/",
        {"phone": "+12015550123", "email": "ann.work@example.com"},
        format="json",
    )
    conflict = ContactConflict.objects.get()
    # when
    resolved = contact_conflict_resolve(
        conflict_id=conflict.pk, resolution="merged", resolved_by_id=staff_user.pk
    )
    # then
    assert resolved.status == "merged"
    assert resolved.resolved_by_id == staff_user.pk
    assert list(Contact.objects.values_list("pk", flat=True)) == [ann.pk]
    message.refresh_from_db()
    assert message.contact_id == ann.pk
    assert set(ContactAlias.objects.values_list("kind", "value")) == {
        ("phone", "+12015550124"),
        ("email", "ann.work@example.com"),
    }
    found = api_client.get("/api/v1/contacts/", {"email": "ann.work@example.com"}).json()
    assert [row["id"] for row in found["results"]] == [ann.pk]
    # and a later message naming the lost email reaches the survivor, without a new conflict
    CreativeFactory.create(slug="spring", campaign__slug="spring-sale")
    response = send(
        api_client, message.offer, {"email": "ann.work@example.com", "phone": "+12015550123"}
    )
    assert Message.objects.get(pk=response.json()["id"]).contact_id == ann.pk
    assert ContactConflict.objects.filter(status="open").count() == 0


def test_merging_a_conflict_with_an_unknown_address_keeps_it_as_the_persons(api_client):
    # given: an SMS named a known phone with an email nobody has
    CreativeFactory.create(slug="spring", campaign__slug="spring-sale")
    offer = OfferFactory.create()
    ann = ContactFactory.create(phone="+12015550123", email="ann@example.com")
    send(api_client, offer, {"phone": "+12015550123", "email": "ann.alt@example.com"})
    conflict = ContactConflict.objects.get()
    # when
    contact_conflict_resolve(conflict_id=conflict.pk, resolution="merged")
    # then
    found = api_client.get("/api/v1/contacts/", {"email": "ann.alt@example.com"}).json()
    assert [row["id"] for row in found["results"]] == [ann.pk]
    assert Contact.objects.count() == 1


def test_an_operator_keeps_a_conflict_apart(admin_client_logged_in):
    # given
    ContactFactory.create(phone="+12015550123", email="ann@example.com")
    ContactFactory.create(phone=None, email="bob@example.com", external_id="b")
    contact_resolve_one(spec=ContactSpec(phone="+12015550123", email="bob@example.com"))
    conflict = ContactConflict.objects.get()
    # when
    response = admin_client_logged_in.post(
        "/admin/tracking/contactconflict/",
        {"action": "keep_apart", "_selected_action": [conflict.pk]},
    )
    # then
    assert response.status_code == 302
    conflict.refresh_from_db()
    assert conflict.status == "kept_apart"
    assert Contact.objects.count() == 2


def test_the_conflict_and_merge_admin_pages_and_contact_search(admin_client_logged_in, api_client):
    ann = ContactFactory.create(phone="+12015550123", email="ann@example.com")
    merged = ContactFactory.create(phone=None, external_id="crm-1")
    api_client.post(
        "/api/v1/contacts/identify/",
        {"phone": "+12015550123", "external_id": "crm-1"},
        format="json",
    )
    api_client.post(
        "/api/v1/contacts/identify/",
        {"phone": "+12015550123", "email": "bob@example.com"},
        format="json",
    )
    conflict = ContactConflict.objects.get()
    for url in (
        "/admin/tracking/contactconflict/",
        f"/admin/tracking/contactconflict/{conflict.pk}/change/",
        "/admin/tracking/contactmerge/",
    ):
        response = admin_client_logged_in.get(url)
        assert response.status_code == 200, url
        assert b"bob@example.com" not in response.content
    found = admin_client_logged_in.get("/admin/tracking/contact/", {"q": str(merged.pk)})
    assert f"/admin/tracking/contact/{ann.pk}/change/".encode() in found.content


def test_the_journey_shows_the_merge_and_a_merged_id_leads_to_the_survivor(
    admin_client_logged_in, api_client
):
    # given
    ann = ContactFactory.create(phone="+12015550123")
    merged = ContactFactory.create(phone=None, email="ann@example.com")
    api_client.post(
        "/api/v1/contacts/identify/",
        {"phone": "+12015550123", "email": "ann@example.com"},
        format="json",
        HTTP_X_REQUEST_ID="req-identify-9",
    )
    # when
    page = admin_client_logged_in.get(f"/admin/reports/journey/{ann.pk}/")
    old = admin_client_logged_in.get(f"/admin/reports/journey/{merged.pk}/")
    # then
    assert page.status_code == 200
    assert f"#{merged.pk}".encode() in page.content
    assert b"req-identify-9" in page.content
    assert b"An identify call" in page.content
    assert old.status_code == 302
    assert old["Location"] == f"/admin/reports/journey/{ann.pk}/"


def _token_client(staff_user) -> Client:
    token, _ = Token.objects.get_or_create(user=staff_user)
    return Client(HTTP_AUTHORIZATION=f"Token {token.key}")


def _together(calls) -> list:
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(index, call) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except BaseException as error:  # reported by the assertions
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_number", range(3))
def test_two_requests_merging_overlapping_contacts_at_once_end_with_one(staff_user, round_number):
    # given: three contacts of one person, each with a message and a click
    offer = OfferFactory.create()
    people = [
        ContactFactory.create(phone="+12015550123", email=None),
        ContactFactory.create(phone=None, email="ann@example.com"),
        ContactFactory.create(phone=None, external_id="crm-ann"),
    ]
    for person in people:
        ClickFactory.create(
            link=LinkFactory.create(message=MessageFactory.create(contact=person, offer=offer))
        )
    client = _token_client(staff_user)

    def identify(payload):
        return lambda: client.post(
            "/api/v1/contacts/identify/", payload, content_type="application/json"
        )

    # when: two requests name overlapping pairs at the same moment
    first, second = _together(
        [
            identify({"phone": "+12015550123", "email": "ann@example.com"}),
            identify({"email": "ann@example.com", "external_id": "crm-ann"}),
        ]
    )
    # then
    assert first.status_code == 200, first.content
    assert second.status_code == 200, second.content
    contact = Contact.objects.get()
    assert contact.pk == people[0].pk
    assert (contact.phone, contact.email, contact.external_id) == (
        "+12015550123",
        "ann@example.com",
        "crm-ann",
    )
    assert Message.objects.filter(contact=contact).count() == 3
    assert Click.objects.filter(contact=contact).count() == 3
    assert sorted(ContactMerge.objects.values_list("merged_contact_id", flat=True)) == [
        people[1].pk,
        people[2].pk,
    ]
    # whichever contact a request answered with, it reaches the one person now
    for answer in (first, second):
        reached = client.get(f"/api/v1/contacts/{answer.json()['id']}/").json()
        assert reached["id"] == contact.pk


@pytest.mark.django_db(transaction=True)
def test_concurrent_messages_merging_the_same_contacts_lose_and_double_nothing(staff_user):
    # given
    CreativeFactory.create(slug="spring", campaign__slug="spring-sale")
    offer = OfferFactory.create()
    ContactFactory.create(phone="+12015550123")
    ContactFactory.create(phone=None, email="ann@example.com")
    client = _token_client(staff_user)

    def message(number):
        return lambda: client.post(
            "/api/v1/messages/",
            {
                "contact": {"phone": "+12015550123", "email": "ann@example.com"},
                "channel": "sms",
                "campaign": "spring-sale",
                "creative": "spring",
                "offer": offer.pk,
                "sent_at": (timezone.now() - timedelta(minutes=number)).isoformat(),
                "external_id": f"send-{number}",
            },
            content_type="application/json",
        )

    # when
    answers = _together([message(number) for number in range(4)])
    # then
    assert [answer.status_code for answer in answers] == [201] * 4, answers
    assert Contact.objects.count() == 1
    assert Message.objects.filter(contact=Contact.objects.get()).count() == 4
    assert ContactMerge.objects.count() == 1
    assert Conversion.objects.count() == 0


def test_a_click_drained_under_a_merged_id_is_moved_by_the_sweep(api_client):
    # given: a merge, then a click the drainer wrote with the merged contact's old id
    # (its transaction read the message before the merge committed)
    survivor = ContactFactory.create(phone="+12015550123")
    merged = ContactFactory.create(phone=None, email="ann@example.com")
    message = MessageFactory.create(contact=merged)
    api_client.post(
        "/api/v1/contacts/identify/",
        {"phone": "+12015550123", "email": "ann@example.com"},
        format="json",
    )
    straggler = ClickFactory.create(link=LinkFactory.create(message=message), contact_id=merged.pk)
    # when
    moved = contacts_merge_sweep(survivor_id=survivor.pk, merged_ids=[merged.pk])
    # then
    straggler.refresh_from_db()
    assert moved == 1
    assert straggler.contact_id == survivor.pk
    assert contacts_merge_sweep(survivor_id=survivor.pk, merged_ids=[merged.pk]) == 0
