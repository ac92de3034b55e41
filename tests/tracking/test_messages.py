import re
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from tests.factories import ContactFactory, CreativeFactory, LinkFactory, OfferFactory
from tracking.models import Contact, Link, Message
from tracking.services.contacts import ContactSpec, contact_normalize_phone
from tracking.services.links import LINK_CODE_ALPHABET, link_code_generate
from tracking.services.messages import MessageSpec, message_create, message_create_bulk

SENT_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog(db):
    creative = CreativeFactory(slug="spring", campaign__slug="spring-sale")
    offer = OfferFactory()
    return creative, offer


def spec(offer_row, number: int, **overrides) -> MessageSpec:
    values = {
        "contact": ContactSpec(phone=f"+1201555{number:04d}"),
        "channel": "sms",
        "campaign": "spring-sale",
        "creative": "spring",
        "offer": offer_row.pk,
        "sent_at": SENT_AT,
        "external_id": f"send-{number}",
    }
    values.update(overrides)
    return MessageSpec(**values)


@pytest.mark.django_db
def test_message_create_stores_contact_message_and_a_link_with_a_short_url(catalog):
    # given
    creative, offer = catalog

    # when
    result = message_create(
        contact=ContactSpec(phone="+1 (201) 555-0123", email="Ann@Example.COM"),
        channel="sms",
        campaign="spring-sale",
        creative="spring",
        offer=offer.pk,
        sent_at=SENT_AT,
    )

    # then
    message = Message.objects.select_related("contact").get(pk=result.message.pk)
    assert message.contact.phone == "+12015550123"
    assert message.contact.email == "ann@example.com"
    assert message.creative == creative
    assert message.campaign == creative.campaign
    assert message.offer_id == offer.pk
    assert [link.code for link in message.links.all()] == [result.links[0].code]
    assert len(result.links) == 1


@override_settings(LINK_CODE_LENGTH=9)
def test_link_codes_are_url_safe_unambiguous_and_of_the_configured_length():
    # when
    codes = {link_code_generate() for _ in range(2000)}

    # then
    assert len(codes) == 2000
    assert all(re.fullmatch(f"[{LINK_CODE_ALPHABET}]{{9}}", code) for code in codes)
    assert not set("0O1lI").intersection("".join(codes))


@pytest.mark.django_db
def test_message_create_can_give_a_message_several_links(catalog):
    # given
    _, offer = catalog

    # when
    result = message_create_bulk(items=[spec(offer, 1, links=3)])[0]

    # then
    assert len({link.code for link in result.links}) == 3
    assert result.message.links.count() == 3


@pytest.mark.django_db
def test_message_create_reuses_a_known_contact_and_fills_in_what_it_lacked(catalog):
    # given
    _, offer = catalog
    known = ContactFactory.create(phone="+12015550123", email=None)

    # when
    result = message_create_bulk(
        items=[
            spec(offer, 1, contact=ContactSpec(phone="+12015550123", email="ann@example.com")),
            spec(offer, 2, contact=ContactSpec(email="ANN@example.com")),
        ]
    )

    # then
    assert {r.message.contact_id for r in result} == {known.pk}
    known.refresh_from_db()
    assert known.email == "ann@example.com"
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_identifiers_of_two_contacts_named_together_make_them_one(catalog):
    # given
    _, offer = catalog
    older = ContactFactory.create(phone="+12015550123", email=None)
    newer = ContactFactory.create(phone=None, email="bob@example.com")

    # when
    [result] = message_create_bulk(
        items=[spec(offer, 1, contact=ContactSpec(phone="+12015550123", email="bob@example.com"))]
    )

    # then
    assert result.message.contact_id == older.pk
    assert list(Contact.objects.values_list("pk", "phone", "email")) == [
        (older.pk, "+12015550123", "bob@example.com")
    ]
    assert not Contact.objects.filter(pk=newer.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"contact": ContactSpec(phone="555-0123")}, "contact.phone"),
        ({"contact": ContactSpec(phone="+1 000 000 0000")}, "contact.phone"),
        ({"contact": ContactSpec(email="not-an-email")}, "contact.email"),
        ({"contact": ContactSpec(email="a" * 250 + "@example.com")}, "contact.email"),
        ({"contact": ContactSpec(external_id="x" * 129)}, "contact.external_id"),
        ({"contact": ContactSpec()}, "contact"),
        ({"channel": "fax"}, "channel"),
        ({"external_id": "nul\x00"}, "external_id"),
        ({"campaign": "nul\x00"}, "campaign"),
        ({"contact": ContactSpec(phone="+1201\x00")}, "contact.phone"),
        ({"campaign": "no-such-campaign"}, "campaign"),
        ({"creative": "no-such-creative"}, "creative"),
        ({"offer": 987654}, "offer"),
        ({"sent_at": datetime(2026, 3, 1, 12, 0)}, "sent_at"),  # noqa: DTZ001
        ({"links": 0}, "links"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(catalog, overrides, field):
    # given
    _, offer = catalog
    items = [spec(offer, 1), spec(offer, 2, **overrides)]

    # when
    with pytest.raises(ValidationError) as raised:
        message_create_bulk(items=items)

    # then
    assert f"1.{field}" in raised.value.message_dict
    assert Message.objects.count() == 0
    assert Contact.objects.count() == 0
    assert Link.objects.count() == 0


@pytest.mark.django_db
def test_single_message_errors_name_the_field_without_an_index(catalog):
    # given
    _, offer = catalog

    # when
    with pytest.raises(ValidationError) as raised:
        message_create(
            contact=ContactSpec(phone="12"),
            channel="sms",
            campaign="spring-sale",
            creative="spring",
            offer=offer.pk,
            sent_at=SENT_AT,
        )

    # then
    assert set(raised.value.message_dict) == {"contact.phone"}


@pytest.mark.django_db
@override_settings(MESSAGES_BULK_MAX=3)
def test_bulk_over_the_limit_is_refused(catalog):
    # given
    _, offer = catalog

    # when
    with pytest.raises(ValidationError) as raised:
        message_create_bulk(items=[spec(offer, number) for number in range(4)])

    # then
    assert "items" in raised.value.message_dict
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_a_repeated_call_returns_the_same_messages_and_links_and_creates_nothing(catalog):
    # given
    _, offer = catalog
    items = [spec(offer, number) for number in range(20)]
    first = message_create_bulk(items=items)

    # when
    second = message_create_bulk(items=items)

    # then
    assert [r.message.pk for r in second] == [r.message.pk for r in first]
    assert [[link.code for link in r.links] for r in second] == [
        [link.code for link in r.links] for r in first
    ]
    assert not any(r.created for r in second)
    assert Message.objects.count() == 20
    assert Link.objects.count() == 20


@pytest.mark.django_db
def test_an_external_id_repeated_within_one_call_is_one_message(catalog):
    # given
    _, offer = catalog

    # when
    results = message_create_bulk(items=[spec(offer, 1), spec(offer, 1), spec(offer, 2)])

    # then
    assert results[0].message.pk == results[1].message.pk != results[2].message.pk
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_messages_without_external_id_are_created_every_time(catalog):
    # given
    _, offer = catalog

    # when
    message_create_bulk(items=[spec(offer, 1, external_id=None)])
    message_create_bulk(items=[spec(offer, 1, external_id=None)])

    # then
    assert Message.objects.count() == 2
    assert Contact.objects.count() == 1


@pytest.mark.django_db
@override_settings(LINK_CODE_LENGTH=7)
def test_a_colliding_code_is_drawn_again(catalog, monkeypatch):
    # given: the first code drawn is already taken by another link
    _, offer = catalog
    taken = LinkFactory.create(code="TAKEN77")
    draws = iter(["TAKEN77", "FRESH77"])
    monkeypatch.setattr(
        "tracking.services.links.link_codes_generate",
        lambda *, count: [next(draws) for _ in range(count)],
    )

    # when
    result = message_create_bulk(items=[spec(offer, 1)])[0]

    # then
    assert [link.code for link in result.links] == ["FRESH77"]
    assert Link.objects.get(code="TAKEN77").message_id == taken.message_id


@pytest.mark.django_db
@override_settings(LINK_CODE_LENGTH=7)
def test_a_colliding_code_in_a_large_call_is_drawn_again(catalog, monkeypatch):
    # given: a hundred messages, the first code drawn for them already taken
    _, offer = catalog
    taken = LinkFactory.create(code="TAKEN77")
    fresh = [f"FRESH{number:02d}" for number in range(100)]
    draws = iter(["TAKEN77", *fresh])
    monkeypatch.setattr(
        "tracking.services.links.link_codes_generate",
        lambda *, count: [next(draws) for _ in range(count)],
    )

    # when
    results = message_create_bulk(items=[spec(offer, number) for number in range(100)])

    # then: every message has one link of its own, and the taken code stays where it was
    codes = [result.links[0].code for result in results]
    assert sorted(codes) == fresh
    assert Link.objects.filter(code__in=codes).count() == 100
    assert Link.objects.get(code="TAKEN77").message_id == taken.message_id


@pytest.mark.django_db
def test_ten_thousand_messages_are_created_set_based(catalog, django_assert_max_num_queries):
    # given
    _, offer = catalog
    items = [
        spec(
            offer,
            number,
            contact=ContactSpec(phone=f"+1201{2_000_000 + number:07d}"),
            channel="sms" if number % 2 else "email",
        )
        for number in range(10_000)
    ]
    started = time.monotonic()

    # when: a dozen statements, whatever the number of messages
    with django_assert_max_num_queries(15):
        results = message_create_bulk(items=items)

    # then
    elapsed = time.monotonic() - started
    assert elapsed < 30, elapsed
    assert len(results) == 10_000
    assert Message.objects.count() == 10_000
    assert Link.objects.count() == 10_000
    assert Contact.objects.count() == 10_000
    assert len({r.links[0].code for r in results}) == 10_000

    # when: the same call again
    with django_assert_max_num_queries(8):
        again = message_create_bulk(items=items)

    # then
    assert [r.message.pk for r in again] == [r.message.pk for r in results]
    assert Message.objects.count() == 10_000


def test_phones_given_in_e164_are_normalised_exactly_as_phonenumbers_parses_them():
    # given: every region's example numbers as E.164, and with a national prefix,
    # a zero or a digit too many or too few after the country code, or one of its
    # first digits changed (where regions sharing a country code and number types differ)
    given = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefix = (metadata.national_prefix if metadata else None) or ""
        for number_type in range(11):
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is None:
                continue
            national = phonenumbers.national_significant_number(example)
            changed = [
                national[:position] + str((int(national[position]) + step) % 10)
                for position in range(min(3, len(national)))
                for step in (1, 5)
            ]
            for variant in (
                national,
                prefix + national,
                "0" + national,
                national[:-1],
                national + "7",
                *(start + national[len(start) :] for start in changed),
            ):
                given.add(f"+{example.country_code}{variant}")

    def expected(phone: str) -> str | None:
        parsed = phonenumbers.parse(phone, None)
        if not phonenumbers.is_valid_number(parsed):
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    def normalised(phone: str) -> str | None:
        try:
            return contact_normalize_phone(phone=phone)
        except ValidationError:
            return None

    # when
    mismatches = [phone for phone in sorted(given) if normalised(phone) != expected(phone)]

    # then
    assert len(given) > 9000
    assert mismatches == []


@pytest.mark.django_db
def test_each_message_keeps_its_own_send_time(catalog):
    # given: three times, one of them twice and one given in another time zone
    _, offer = catalog
    later = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    in_paris = datetime(2026, 3, 1, 14, 0, tzinfo=ZoneInfo("Europe/Paris"))
    times = [SENT_AT, later, SENT_AT, in_paris]

    # when
    results = message_create_bulk(
        items=[spec(offer, number, sent_at=sent_at) for number, sent_at in enumerate(times)]
    )

    # then
    stored = [Message.objects.get(pk=result.message.pk).sent_at for result in results]
    assert stored == [SENT_AT, later, SENT_AT, datetime(2026, 3, 1, 13, 0, tzinfo=UTC)]
