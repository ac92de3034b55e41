"""What `/metrics` shows of the rollups' lag (registered in `ReportsConfig.ready`)."""

from __future__ import annotations

from config.probes import Gauge, Reading
from reports.selectors import rollup_age_get


def rollups_probe_read() -> Reading:
    age = rollup_age_get()
    if age is None:
        return Reading()
    return Reading(
        gauges=(
            Gauge.single(
                "creditflow_rollup_age_seconds",
                "Seconds since the daily rollups last caught up with new rows",
                age,
            ),
        )
    )
