"""`manage.py simulate --contacts N --days D [--seed S] [--force]`: a demo through the real paths.

See `demo/simulation/run.py` for what goes through which path. Skips when a demo is
already there (so `make run` twice does not double it) unless `--force`.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.simulation import MAX_CONTACTS, MAX_DAYS, simulation_exists, simulation_run


class Command(BaseCommand):
    help = "Simulate N contacts over D days: sends, clicks, postbacks, rollups (demo data)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--contacts", type=int, default=200, help="people to send to")
        parser.add_argument("--days", type=int, default=14, help="days, ending today")
        parser.add_argument("--seed", type=int, default=2026, help="random seed")
        parser.add_argument(
            "--force", action="store_true", help="add another round even if a demo exists"
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    def handle(self, *args: Any, **options: Any) -> None:
        contacts: int = options["contacts"]
        days: int = options["days"]
        if not 1 <= contacts <= MAX_CONTACTS:
            raise CommandError(f"--contacts must be between 1 and {MAX_CONTACTS}.")
        if not 1 <= days <= MAX_DAYS:
            raise CommandError(f"--days must be between 1 and {MAX_DAYS}.")
        if simulation_exists() and not options["force"]:
            self.stdout.write("Demo data already there: nothing simulated (use --force to add).")
            return
        summary = simulation_run(
            contacts=contacts,
            days=days,
            seed=options["seed"],
            progress=not options["no_progress"],
        )
        self.stdout.write(f"Simulated {summary}.")
