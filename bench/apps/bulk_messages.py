"""`python -m bench.apps.bulk_messages`: 10,000 messages (with new contacts and one link
each) through `message_create_bulk`, against a raw COPY of the same rows.

Prints one JSON line: rows per second for each way and the best of each over a few
alternating rounds.
"""

import json
import sys
import time
from datetime import UTC, datetime

import django

MESSAGES = 10_000
# Rounds alternate between the two ways, so a burst of other work on the machine
# does not land on one of them only; the best round of each counts.
ROUNDS = 3


def main() -> None:
    django.setup()
    from django.db import connection, transaction

    from attribution.models import Network, Offer
    from tracking.models import Campaign, Creative
    from tracking.services.contacts import ContactSpec
    from tracking.services.links import link_code_generate
    from tracking.services.messages import MessageSpec, message_create_bulk

    network = Network.objects.create(slug="bulk", name="Bulk", postback_token_hash="0" * 64)
    offer = Offer.objects.create(
        name="Bulk offer",
        network=network,
        destination_url="https://offer.example.com/?c={click_id}",
    )
    campaign = Campaign.objects.create(slug="bulk", name="Bulk")
    creative = Creative.objects.create(campaign=campaign, slug="bulk", name="Bulk")
    sent_at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    next_phone = iter(range(10**9))

    def phones() -> list[str]:
        return [f"+1212{2_000_000 + next(next_phone):07d}" for _ in range(MESSAGES)]

    def through_service() -> float:
        specs = [
            MessageSpec(
                contact=ContactSpec(phone=phone),
                channel="sms",
                campaign=campaign.slug,
                creative=creative.slug,
                offer=offer.pk,
                sent_at=sent_at,
            )
            for phone in phones()
        ]
        started = time.perf_counter()
        results = message_create_bulk(items=specs)
        elapsed = time.perf_counter() - started
        if len(results) != MESSAGES or not all(result.links for result in results):
            raise RuntimeError("message_create_bulk did not create every message and link")
        return elapsed

    def through_copy() -> float:
        numbers = phones()
        codes = [link_code_generate() for _ in range(MESSAGES)]
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('tracking_contact', 'id'))"
                " FROM generate_series(1, %s)",
                [MESSAGES],
            )
            contact_ids = [row[0] for row in cursor.fetchall()]
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('tracking_message', 'id'))"
                " FROM generate_series(1, %s)",
                [MESSAGES],
            )
            message_ids = [row[0] for row in cursor.fetchall()]
            now = datetime.now(tz=UTC)
            with cursor.copy("COPY tracking_contact (id, phone, created_at) FROM STDIN") as copy:
                for contact_id, phone in zip(contact_ids, numbers, strict=True):
                    copy.write_row((contact_id, phone, now))
            with cursor.copy(
                "COPY tracking_message (id, contact_id, campaign_id, creative_id, offer_id,"
                " channel, sent_at, created_at) FROM STDIN"
            ) as copy:
                for message_id, contact_id in zip(message_ids, contact_ids, strict=True):
                    copy.write_row(
                        (
                            message_id,
                            contact_id,
                            campaign.pk,
                            creative.pk,
                            offer.pk,
                            "sms",
                            sent_at,
                            now,
                        )
                    )
            with cursor.copy(
                "COPY tracking_link (message_id, code, created_at) FROM STDIN"
            ) as copy:
                for message_id, code in zip(message_ids, codes, strict=True):
                    copy.write_row((message_id, code, now))
        return time.perf_counter() - started

    service_rounds: list[float] = []
    copy_rounds: list[float] = []
    for _ in range(ROUNDS):
        service_rounds.append(through_service())
        copy_rounds.append(through_copy())
    service_seconds, copy_seconds = min(service_rounds), min(copy_rounds)
    sys.stdout.write(
        json.dumps(
            {
                "service_seconds": service_seconds,
                "copy_seconds": copy_seconds,
                "service_rows_per_second": MESSAGES / service_seconds,
                "copy_rows_per_second": MESSAGES / copy_seconds,
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
