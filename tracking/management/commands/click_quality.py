"""`manage.py click_quality`: how the click flags do on a labelled set of requests.

Prints per-label recall and precision and the human false positives (the table in the
README), and with `--misses` every row labelled otherwise than expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from tracking.click_quality import labelled_requests_read, quality_table, request_flags

DEFAULT_SET = Path(settings.BASE_DIR) / "tests" / "tracking" / "data" / "click_quality.csv"


class Command(BaseCommand):
    help = "Per-label recall and precision of the click flags on a labelled CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=DEFAULT_SET)
        parser.add_argument("--misses", action="store_true", help="List the rows missed.")

    def handle(self, *args: Any, **options: Any) -> None:
        requests = labelled_requests_read(path=options["file"])
        table = quality_table(requests=requests)
        self.stdout.write(f"{table.total} labelled requests from {options['file'].name}\n")
        self.stdout.write(table.markdown())
        if options["misses"]:
            for request, label in table.misses:
                reason = request_flags(request).reason or "-"
                self.stdout.write(
                    f"{request.label} -> {label} ({reason}): {request.user_agent!r} "
                    f"{request.headers} {request.method} [{request.source}]"
                )
