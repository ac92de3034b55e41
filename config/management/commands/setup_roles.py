from typing import Any

from django.core.management.base import BaseCommand

from config.roles import roles_setup


class Command(BaseCommand):
    help = "Create (or reset) the staff groups `operator` and `analyst` with their permissions."

    def handle(self, *args: Any, **options: Any) -> None:
        for role in roles_setup():
            self.stdout.write(f"{role.name}: {role.permissions} permissions")
