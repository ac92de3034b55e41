"""What `/metrics` and `/healthz` show of deliveries waiting for a worker (see `WebhooksConfig`)."""

from __future__ import annotations

from django.conf import settings

from config.probes import Gauge, Reading
from webhooks.selectors import webhook_backlog_get


def webhooks_probe_read() -> Reading:
    due, oldest = webhook_backlog_get()
    return Reading(
        gauges=(
            Gauge.single(
                "creditflow_webhook_deliveries_due",
                "Webhook deliveries due now to enabled endpoints",
                due,
            ),
            Gauge.single(
                "creditflow_webhook_oldest_due_seconds",
                "How long the oldest due webhook delivery has waited (0 when none)",
                oldest or 0.0,
            ),
        ),
        health={"webhook_deliveries_due": due, "oldest_webhook_due_seconds": round(oldest or 0, 1)},
        # Due, not failing: a dead endpoint's deliveries wait for their retry time, not here.
        stuck=(
            (f"a webhook delivery has been due for {int(oldest)} s",)
            if oldest is not None and oldest > settings.HEALTH_WEBHOOK_STUCK_SECONDS
            else ()
        ),
    )
