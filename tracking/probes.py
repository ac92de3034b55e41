"""What `/metrics` and `/healthz` show of the click spool (registered in `TrackingConfig.ready`)."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from config.probes import Gauge, Reading
from tracking.selectors import click_spool_backlog_get


def click_spool_probe_read() -> Reading:
    backlog = click_spool_backlog_get(directory=Path(settings.CLICK_SPOOL_DIR))
    oldest = backlog.oldest_pending_seconds
    return Reading(
        gauges=(
            Gauge.single(
                "creditflow_click_spool_files", "Click spool files present", backlog.files
            ),
            Gauge.single(
                "creditflow_click_spool_bytes",
                "Click spool bytes not yet drained into PostgreSQL",
                backlog.pending_bytes,
            ),
            Gauge.single(
                "creditflow_click_spool_oldest_pending_seconds",
                "Seconds since the last write to the stalest file with undrained clicks",
                oldest,
            ),
        ),
        health={
            "click_spool_bytes": backlog.pending_bytes,
            "click_spool_oldest_pending_seconds": round(oldest, 1),
        },
        stuck=(
            (f"clicks have waited {int(oldest)} s in the spool",)
            if oldest > settings.HEALTH_CLICK_SPOOL_STUCK_SECONDS
            else ()
        ),
    )
