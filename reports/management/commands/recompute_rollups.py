"""`manage.py recompute_rollups --start YYYY-MM-DD --end YYYY-MM-DD`: rebuild those days."""

import sys
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from reports.selectors import MAX_RANGE_DAYS
from reports.services import rollup_recompute_range, rollup_today


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a YYYY-MM-DD date.") from None


class Command(BaseCommand):
    help = "Recompute the daily rollups of a date range (days in REPORTS_TIME_ZONE), inclusive."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--end", help="last day, YYYY-MM-DD (default: today)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")

    def handle(self, *args: Any, **options: Any) -> None:
        start = _day(options["start"])
        end = _day(options["end"]) if options["end"] else rollup_today()
        if start > end:
            raise CommandError(f"The start ({start}) is after the end ({end}).")
        days = (end - start).days + 1
        if days > MAX_RANGE_DAYS * 5:
            raise CommandError(f"At most {MAX_RANGE_DAYS * 5} days at once.")
        with tqdm(
            total=days, unit="day", disable=options["no_progress"], file=sys.stderr
        ) as progress:

            def advance(day: date) -> None:
                progress.set_postfix_str(day.isoformat())
                progress.update(1)

            rows = rollup_recompute_range(start=start, end=end, on_day_done=advance)
        self.stdout.write(f"Recomputed {days} day(s) from {start} to {end}: {rows} rollup rows.")
