"""Two bulk calls with the same sends at the same moment: one set of rows, same answers."""

import threading
from datetime import UTC, datetime

import pytest
from django.db import connection

from tests.factories import CreativeFactory, OfferFactory
from tracking.models import Contact, Link, Message
from tracking.services.contacts import ContactSpec
from tracking.services.messages import MessageResult, MessageSpec, message_create_bulk


def _run_together(calls: int, items: list[MessageSpec]) -> list[list[MessageResult]]:
    barrier = threading.Barrier(calls)
    results: list[list[MessageResult]] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(message_create_bulk(items=items))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_bulk_calls_create_each_message_once():
    # given
    CreativeFactory.create(slug="spring", campaign__slug="spring-sale")
    offer = OfferFactory.create()
    items = [
        MessageSpec(
            contact=ContactSpec(phone=f"+1201{3_000_000 + number:07d}"),
            channel="sms",
            campaign="spring-sale",
            creative="spring",
            offer=offer.pk,
            sent_at=datetime(2026, 3, 1, tzinfo=UTC),
            external_id=f"race-{number}",
        )
        for number in range(300)
    ]

    # when
    first, second = _run_together(2, items)

    # then
    assert [r.message.pk for r in first] == [r.message.pk for r in second]
    assert [r.links[0].code for r in first] == [r.links[0].code for r in second]
    assert Message.objects.count() == 300
    assert Link.objects.count() == 300
    assert Contact.objects.count() == 300


@pytest.mark.django_db(transaction=True)
def test_concurrent_calls_for_the_same_new_contact_share_it():
    # given: no external ids, so both calls create messages, but the person is one
    CreativeFactory.create(slug="spring", campaign__slug="spring-sale")
    offer = OfferFactory.create()
    items = [
        MessageSpec(
            contact=ContactSpec(phone="+12015550199", email="same@example.com"),
            channel="email",
            campaign="spring-sale",
            creative="spring",
            offer=offer.pk,
            sent_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
    ]

    # when
    first, second = _run_together(2, items)

    # then
    assert first[0].message.contact_id == second[0].message.contact_id
    assert Contact.objects.count() == 1
    assert Message.objects.count() == 2
