"""`manage.py demo_setup`: the admin login and, on an empty database, demo data.

The login: see `demo/services.py`. Demo data: the full simulation (`manage.py simulate`),
or with `--small` a small set through the same services the API uses.
"""

from __future__ import annotations

from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from demo.services import admin_login_ensure, demo_data_create
from tracking.models import Campaign, Message


class Command(BaseCommand):
    help = "Create the admin login and, on an empty database, demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--small", action="store_true", help="the small built-in set instead of `simulate`"
        )
        parser.add_argument("--no-data", action="store_true", help="only the admin login")

    def handle(self, *args: Any, **options: Any) -> None:
        username = admin_login_ensure()
        self.stdout.write(f"Admin login ready: {username}")
        if options["no_data"]:
            return
        if Message.objects.exists() or Campaign.objects.exists():
            self.stdout.write("Data already there: no demo data added.")
            return
        if not options["small"]:
            call_command("simulate", stdout=self.stdout, stderr=self.stderr)
            return
        count = demo_data_create()
        self.stdout.write(f"Demo data created: {count} messages.")
