"""What if: 100,000 conversions over 1,000,000 clicks compared under three configurations.

The comparison runs as a worker runs it (`reports.whatif.comparison_run`, in one process),
first click, last click and cooperative side by side; the figure is its wall time. The
baseline is the same decision taken one conversion at a time (its stored row, then its
contact's clicks, each its own query), timed on `ONE_BY_ONE_SAMPLE` conversions and scaled
to the same 100,000.

Seeding is the postback suite's (100,000 contacts with an SMS and an email message each, 5
clicks per message over the last 9 days), then one approved conversion per contact that
names one of its clicks (`python -m bench.suite_whatif seed`), in `creditflow_bench_whatif`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import timedelta

from bench.figures import Figure
from bench.server import bench_database, bench_environment, django_manage, python_module
from bench.suite_postbacks import CLICKS_PER_LINK, CONTACTS

logger = logging.getLogger("bench")

DATABASE = "creditflow_bench_whatif"
ONE_BY_ONE_SAMPLE = 2_000
CONFIGURATIONS = [
    {"name": "first", "attribution_model": "first_click"},
    {"name": "last", "attribution_model": "last_click"},
    {"name": "coop", "attribution_model": "cooperative", "sms_window_days": 2},
]


def run() -> list[Figure]:
    with bench_database(DATABASE) as database_url:
        env = bench_environment(database_url=database_url)
        django_manage(env, "migrate", "--noinput")
        logger.info("seeding %s contacts, %s clicks", CONTACTS, CONTACTS * 2 * CLICKS_PER_LINK)
        python_module(env, "bench.suite_postbacks", "seed-network")
        python_module(env, "bench.suite_postbacks", "seed-clicks", timeout=1800)
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
    """One approved conversion per contact, in the last day, naming its SMS link's third
    click (the clicks are the postback suite's: `bench.suite_postbacks seed-clicks`)."""
    from django.db import connection

    from attribution.models import Network

    network = Network.objects.get()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO attribution_conversion (network_id, conversion_id, click_id, status,
                payout, currency, occurred_at, received_at, processed, processed_at, attributed,
                reason, attribution_model, person_key, created_at, updated_at)
            SELECT %s, 'W' || message.contact_id, 'bk-' || link.id || '-3', 'approved', 10,
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
