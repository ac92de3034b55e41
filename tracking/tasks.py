"""Beat tasks of the tracking app."""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from tracking.services.merges import contacts_merge_sweep
from tracking.services.partitions import (
    click_partitions_ensure,
    click_statistics_refresh,
    month_add,
    month_of,
)


@shared_task(name="tracking.create_click_partitions", time_limit=300, soft_time_limit=280)
def create_click_partitions() -> list[str]:
    """Daily: this month's and the next months' click partitions, so the drainer never
    waits on a CREATE TABLE (it would create a missing month itself, or the DEFAULT
    partition would take the clicks). Then the whole table's statistics (see
    `click_statistics_refresh`)."""
    this_month = month_of(timezone.now())
    months = [month_add(this_month, n) for n in range(settings.CLICK_PARTITIONS_AHEAD_MONTHS + 1)]
    created = click_partitions_ensure(months=months)
    click_statistics_refresh()
    return created


@shared_task(
    name="tracking.contact_merge_sweep",
    acks_late=True,
    time_limit=300,
    soft_time_limit=280,
)
def contact_merge_sweep(survivor_id: int, merged_ids: list[int]) -> int:
    """A few seconds after a merge: rows written meanwhile under a merged contact's id."""
    return contacts_merge_sweep(survivor_id=survivor_id, merged_ids=merged_ids)
