"""What if: 100,000 conversions over 1,000,000 clicks compared under three configurations.

The comparison runs as a worker runs it (`reports.whatif.comparison_run`, in one process),
first click, last click and cooperative side by side; the figure is its wall time. The
baseline is the same decision taken one conversion at a time (its stored row, then its
contact's clicks, each its own query), timed on `ONE_BY_ONE_SAMPLE` conversions and scaled
to the same 100,000.

Seeding (`python -m bench.suite_whatif seed`) writes, set-based, 100,000 contacts with an
SMS and an email message each, 5 clicks per message over the last 9 days, and one approved
conversion per contact that names one of its clicks, in the database `creditflow_bench_whatif`.
`BENCH_WHATIF_CONTACTS` makes it smaller for a quick check.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import timedelta

from bench.figures import Figure
from bench.server import bench_database, bench_environment, django_manage, python_module

logger = logging.getLogger("bench")

DATABASE = "creditflow_bench_whatif"
CONTACTS = int(os.environ.get("BENCH_WHATIF_CONTACTS", "100000"))
CLICKS_PER_MESSAGE = 5
ONE_BY_ONE_SAMPLE = min(2_000, CONTACTS)
CONFIGURATIONS = [
    {"name": "first", "attribution_model": "first_click"},
    {"name": "last", "attribution_model": "last_click"},
    {"name": "coop", "attribution_model": "cooperative", "sms_window_days": 2},
]


def run() -> list[Figure]:
    with bench_database(DATABASE) as database_url:
        env = bench_environment(database_url=database_url)
        django_manage(env, "migrate", "--noinput")
        logger.info("seeding %s contacts, %s clicks", CONTACTS, CONTACTS * 2 * CLICKS_PER_MESSAGE)
        python_module(env, "bench.suite_whatif", "seed", timeout=1800)
        result = json.loads(python_module(env, "bench.suite_whatif", "compare", timeout=1800))
    logger.info("what if: %s", result)
    scaled = result["one_by_one_seconds"] / result["one_by_one_conversions"] * result["conversions"]
    return [
        Figure(
            name=(
                f"what if: {result['conversions']:,} conversions over {result['clicks']:,} "
                "clicks, 3 configurations, one worker"
            ),
            value=result["seconds"],
            unit="s",
            baseline=scaled,
            baseline_name=(
                f"one conversion at a time (timed on {result['one_by_one_conversions']:,}, scaled)"
            ),
            target="< 20 s",
        ),
        Figure(
            name="what if: conversions whose credit moves",
            value=result["moved"],
            unit="conversions",
        ),
    ]


# --- child-process commands (Django configured with the bench environment) ----------


def _seed() -> None:
    from django.db import connection

    from attribution.services.catalog import network_create, offer_create
    from tracking.models import Campaign, Creative

    network, _ = network_create(slug="whatif", name="What if network")
    offer = offer_create(
        name="What if offer", network=network, destination_url="https://example.com/"
    )
    campaign = Campaign.objects.create(slug="whatif", name="What if")
    creative = Creative.objects.create(campaign=campaign, slug="whatif", name="What if")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO tracking_contact (phone, created_at) "
            "SELECT '+1300' || lpad(g::text, 7, '0'), now() FROM generate_series(1, %s) g",
            [CONTACTS],
        )
        cursor.execute(
            """
            INSERT INTO tracking_message (contact_id, campaign_id, creative_id, offer_id, channel,
                                          sent_at, created_at)
            SELECT contact.id, %s, %s, %s, channel, now() - interval '10 days', now()
            FROM tracking_contact contact CROSS JOIN (VALUES ('sms'), ('email')) AS c(channel)
            """,
            [campaign.pk, creative.pk, offer.pk],
        )
        cursor.execute(
            "INSERT INTO tracking_link (message_id, code, created_at) "
            "SELECT id, 'w' || id, now() FROM tracking_message"
        )
        cursor.execute(
            """
            INSERT INTO tracking_click (click_id, occurred_at, link_id, message_id, contact_id,
                offer_id, channel, user_agent, referrer, ip, method, is_bot, is_preview,
                is_duplicate, is_imported, recorded_at)
            SELECT 'wk-' || link.id || '-' || g, now() - interval '1 day'
                       - random() * interval '8 days', link.id,
                   message.id, message.contact_id, message.offer_id, message.channel,
                   'Mozilla/5.0', '', NULL, 'GET', g = 5 AND link.id %% 10 = 0, false, false,
                   false, now()
            FROM tracking_link link
            JOIN tracking_message message ON message.id = link.message_id
            CROSS JOIN generate_series(1, %s) g
            """,
            [CLICKS_PER_MESSAGE],
        )
        # One conversion per contact, in the last day, naming its SMS link's third click.
        cursor.execute(
            """
            INSERT INTO attribution_conversion (network_id, conversion_id, click_id, status,
                payout, currency, occurred_at, received_at, processed, processed_at, attributed,
                reason, attribution_model, person_key, created_at, updated_at)
            SELECT %s, 'W' || message.contact_id, 'wk-' || link.id || '-3', 'approved', 10,
                   'USD', now() - random() * interval '20 hours', now(), true, now(), false, '',
                   '', '', now(), now()
            FROM tracking_message message JOIN tracking_link link ON link.message_id = message.id
            WHERE message.channel = 'sms'
            """,
            [network.pk],
        )
        cursor.execute("ANALYZE")


def _compare() -> None:
    from django.db import connection
    from django.utils import timezone

    from attribution.models import Offer
    from attribution.services.recredit import conversions_credit, conversions_stored
    from reports.models import Comparison
    from reports.whatif import comparison_run, comparison_settings

    today = timezone.localdate()
    comparison = Comparison.objects.create(
        start=today - timedelta(days=2),
        end=today,
        dimension="message",
        configurations=CONFIGURATIONS,
    )
    started = time.perf_counter()
    comparison_run(comparison_id=comparison.pk)
    seconds = time.perf_counter() - started
    comparison.refresh_from_db()
    if comparison.status != "done":
        raise RuntimeError(f"comparison {comparison.status}: {comparison.error}")

    settings_by_offer = comparison_settings(comparison, list(Offer.objects.all()))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM attribution_conversion ORDER BY id LIMIT %s", [ONE_BY_ONE_SAMPLE]
        )
        sample = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT count(*) FROM tracking_click")
        clicks = cursor.fetchone()[0]
    started = time.perf_counter()
    for conversion_id in sample:
        conversions_credit(
            conversions=conversions_stored(conversion_ids=[conversion_id]),
            settings_by_offer=settings_by_offer,
        )
    one_by_one = time.perf_counter() - started
    sys.stdout.write(
        json.dumps(
            {
                "seconds": seconds,
                "conversions": comparison.conversions_total,
                "moved": comparison.moved,
                "clicks": clicks,
                "one_by_one_seconds": one_by_one,
                "one_by_one_conversions": len(sample),
            }
        )
    )


def main(argv: list[str]) -> None:
    import django

    django.setup()
    {"seed": _seed, "compare": _compare}[argv[0]]()


if __name__ == "__main__":
    main(sys.argv[1:])
