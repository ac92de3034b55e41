"""What `/metrics` and `/healthz` show of waiting postbacks (see `AttributionConfig.ready`)."""

from __future__ import annotations

from django.conf import settings

from attribution.selectors import postback_backlog_get
from config.probes import Gauge, Reading


def postbacks_probe_read() -> Reading:
    waiting, oldest = postback_backlog_get()
    return Reading(
        gauges=(
            Gauge.single(
                "creditflow_postbacks_waiting", "Postbacks received, not yet processed", waiting
            ),
            Gauge.single(
                "creditflow_postback_oldest_waiting_seconds",
                "Age of the oldest postback not yet processed (0 when none waits)",
                oldest or 0.0,
            ),
        ),
        health={"postbacks_waiting": waiting, "oldest_postback_seconds": round(oldest or 0.0, 1)},
        stuck=(
            (f"a postback has waited {int(oldest)} s for a worker",)
            if oldest is not None and oldest > settings.HEALTH_POSTBACK_STUCK_SECONDS
            else ()
        ),
    )
