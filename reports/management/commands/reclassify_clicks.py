"""`manage.py reclassify_clicks --start YYYY-MM-DD --end YYYY-MM-DD [--now]`.

After the rules or the lists changed: the clicks of those days (in REPORTS_TIME_ZONE)
classified again on a worker, their conversions decided again, their days recomputed.
`--now` does it in this process instead of enqueuing it.
"""

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from reports.reclassify import clicks_reclassify_range
from reports.selectors import MAX_RANGE_DAYS
from tracking.services.reclassify import clicks_reclassify_request


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a YYYY-MM-DD date.") from None


class Command(BaseCommand):
    help = "Classify the clicks of a date range again (bots, previews); conversions follow."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--end", required=True, help="last day, YYYY-MM-DD")
        parser.add_argument("--now", action="store_true", help="run here, not on a worker")

    def handle(self, *args: Any, **options: Any) -> None:
        start, end = _day(options["start"]), _day(options["end"])
        if start > end:
            raise CommandError(f"The start ({start}) is after the end ({end}).")
        if (end - start).days + 1 > MAX_RANGE_DAYS * 5:
            raise CommandError(f"At most {MAX_RANGE_DAYS * 5} days at once.")
        if not options["now"]:
            clicks_reclassify_request(start=start, end=end, requested_by_id=None)
            self.stdout.write(f"Re-classification of {start} to {end} queued for a worker.")
            return
        outcome = clicks_reclassify_range(start=start, end=end)
        self.stdout.write(
            f"{outcome.checked} clicks checked, {outcome.changed} changed, "
            f"{outcome.conversions_changed} conversions credited otherwise, "
            f"{len(outcome.days_recomputed)} day(s) recomputed."
        )
