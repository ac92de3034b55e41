"""Beat tasks that keep the daily rollups fresh, and the admin's range recompute."""

import logging
from datetime import date

from celery import shared_task

from reports.reclassify import TASK_NAME as CLICKS_RECLASSIFY
from reports.reclassify import clicks_reclassify_range
from reports.retention import clicks_retention_apply
from reports.services import rollup_job_run, rollup_recompute_touched, rollup_recompute_trailing
from reports.whatif import comparison_run, reattribution_run, whatif_jobs_sweep

logger = logging.getLogger(__name__)


@shared_task(name="reports.recompute_touched", time_limit=300, soft_time_limit=280)
def recompute_touched() -> list[str]:
    """Every minute: the days new messages, clicks and conversion changes fell on."""
    return [day.isoformat() for day in rollup_recompute_touched()]


@shared_task(name="reports.recompute_trailing", time_limit=3000, soft_time_limit=2900)
def recompute_trailing() -> list[str]:
    """Nightly: the longest click window plus two days, for late postbacks and reversals."""
    start, end = rollup_recompute_trailing()
    return [start.isoformat(), end.isoformat()]


@shared_task(name="reports.recompute_range_job", time_limit=3000, soft_time_limit=2900)
def recompute_range_job(job_id: int) -> None:
    job = rollup_job_run(job_id=job_id)
    if job is None:
        logger.info("rollup job already taken or done", extra={"job_id": job_id})


@shared_task(name="reports.comparison_run", time_limit=3000, soft_time_limit=2900)
def comparison_run_task(comparison_id: int) -> None:
    if comparison_run(comparison_id=comparison_id) is None:
        logger.info("comparison already taken or done", extra={"comparison_id": comparison_id})


@shared_task(name="reports.reattribution_run", time_limit=3000, soft_time_limit=2900)
def reattribution_run_task(reattribution_id: int) -> None:
    if reattribution_run(reattribution_id=reattribution_id) is None:
        logger.info(
            "re-attribution already taken or done", extra={"reattribution_id": reattribution_id}
        )


@shared_task(name="reports.drop_old_clicks", time_limit=3000, soft_time_limit=2900)
def drop_old_clicks() -> list[str]:
    """Daily: raw clicks past CLICK_RETENTION_MONTHS, whole months, once their days are final."""
    return clicks_retention_apply()


@shared_task(name=CLICKS_RECLASSIFY, time_limit=3000, soft_time_limit=2900)
def clicks_reclassify(start: str, end: str, requested_by_id: int | None = None) -> dict[str, int]:
    """Clicks of a date range classified again; their conversions and rollups follow."""
    outcome = clicks_reclassify_range(
        start=date.fromisoformat(start),
        end=date.fromisoformat(end),
        requested_by_id=requested_by_id,
    )
    return {
        "checked": outcome.checked,
        "changed": outcome.changed,
        "conversions_changed": outcome.conversions_changed,
    }


@shared_task(name="reports.whatif_jobs_sweep", time_limit=60, soft_time_limit=50)
def whatif_jobs_sweep_task() -> int:
    """Every minute: comparisons and re-attributions nobody took are enqueued again."""
    return whatif_jobs_sweep()
