"""Webhooks out: deliveries a second from one worker process to a local receiver.

`BENCH_WEBHOOK_DELIVERIES` conversion events (default 20,000) are written set-based, fanned
out by the dispatcher to one endpoint, and then delivered by the endpoint's task body
(`webhook_endpoint_deliver`) in one process: claim with SKIP LOCKED, sign, POST over a
kept-alive connection, write attempts and outcomes set-based. The baseline is a bare loop
of the same POSTs (same bodies, same HTTP client and pool, no signing, no database) to the
same receiver, in the same run. The receiver is a small asyncio server in its own process.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

from bench.figures import Figure
from bench.server import ROOT, bench_database, bench_environment, django_manage, python_module

logger = logging.getLogger("bench")

DATABASE = "creditflow_bench_webhooks"
DELIVERIES = int(os.environ.get("BENCH_WEBHOOK_DELIVERIES", "20000"))


def run() -> list[Figure]:
    receiver = subprocess.Popen(
        [sys.executable, "-m", "bench.webhook_receiver"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if receiver.stdout is None:
            raise RuntimeError("the receiver's output is not piped")
        port = int(receiver.stdout.readline().split()[1])
        with bench_database(DATABASE) as database_url:
            env = bench_environment(
                database_url=database_url,
                WEBHOOK_ALLOW_PRIVATE_HOSTS="true",
                WEBHOOK_RUN_SECONDS="3600",
                WEBHOOK_DELIVERY_BATCH_SIZE="500",
            )
            django_manage(env, "migrate", "--noinput")
            result = json.loads(
                python_module(env, "bench.suite_webhooks", "deliver", str(port), timeout=1800)
            )
    finally:
        receiver.terminate()
        receiver.wait(timeout=30)
    logger.info("webhooks: %s", result)
    return [
        Figure(
            name="webhooks: deliveries per worker process to a local receiver",
            value=result["delivered"] / result["deliver_seconds"],
            unit="deliveries/s",
            baseline=result["bare"] / result["bare_seconds"],
            baseline_name="bare loop of the same POSTs, same client",
            target=">= 500/s",
        ),
        Figure(
            name="webhooks: events fanned out to deliveries (dispatcher)",
            value=result["events"] / result["dispatch_seconds"],
            unit="events/s",
        ),
        Figure(
            name="webhooks: deliveries not delivered at the end",
            value=result["events"] - result["delivered"],
            unit="deliveries",
            target="0",
        ),
    ]


# --- child-process command (Django configured with the bench environment) -------------


def _deliver(port: int) -> None:
    import urllib3
    from django.db import connection

    from attribution.services.catalog import network_create
    from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookMessage
    from webhooks.services.addresses import webhook_target_resolve
    from webhooks.services.delivery import webhook_endpoint_deliver
    from webhooks.services.dispatch import conversion_events_dispatch
    from webhooks.services.endpoints import webhook_endpoint_create

    endpoint, _ = webhook_endpoint_create(url=f"http://127.0.0.1:{port}/hook", events=["*"])
    network, _ = network_create(slug="hooks", name="Webhooks bench")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO attribution_conversion (network_id, conversion_id, click_id, status,
                payout, currency, occurred_at, received_at, processed, processed_at, attributed,
                reason, attribution_model, person_key, created_at, updated_at)
            SELECT %s, 'wh-' || g, '', 'approved', 10, 'USD', now(), now(), true, now(), false,
                   'unknown_click', '', '', now(), now()
            FROM generate_series(1, %s) g
            """,
            [network.pk, DELIVERIES],
        )
        cursor.execute(
            """
            INSERT INTO attribution_conversionevent (conversion_id, from_status, to_status,
                payout, revenue_delta, created_at)
            SELECT id, '', 'approved', 10, 10, now() FROM attribution_conversion ORDER BY id
            """
        )
    started = time.perf_counter()
    events = 0
    while outcome := conversion_events_dispatch(batch_size=1000):
        if not outcome.events:
            break
        events += outcome.events
    dispatch_seconds = time.perf_counter() - started

    started = time.perf_counter()
    while webhook_endpoint_deliver(endpoint_id=endpoint.pk).delivered:
        pass
    deliver_seconds = time.perf_counter() - started
    delivered = WebhookDelivery.objects.filter(status=DeliveryStatus.DELIVERED).count()

    # The baseline: the same bodies POSTed in a bare loop, same client, same receiver.
    target = webhook_target_resolve(url=endpoint.url)
    pool = urllib3.HTTPConnectionPool(target.address, target.port, maxsize=1, retries=False)
    bodies = [body.encode() for body in WebhookMessage.objects.values_list("body", flat=True)]
    headers = {"Host": target.host_header, "Content-Type": "application/json"}
    started = time.perf_counter()
    for body in bodies:
        pool.urlopen("POST", target.path, body=body, headers=headers, retries=False)
    bare_seconds = time.perf_counter() - started
    sys.stdout.write(
        json.dumps(
            {
                "events": events,
                "dispatch_seconds": dispatch_seconds,
                "delivered": delivered,
                "deliver_seconds": deliver_seconds,
                "bare": len(bodies),
                "bare_seconds": bare_seconds,
            }
        )
    )


def main(argv: list[str]) -> None:
    import django

    django.setup()
    _deliver(int(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
