"""`manage.py demo_banner`: where to go and how to log in, printed by `make run`."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token

from config.env import env
from demo.services import admin_password, admin_password_file, admin_username


class Command(BaseCommand):
    help = "Print the admin URL and login."

    def handle(self, *args: Any, **options: Any) -> None:
        base = f"http://127.0.0.1:{env.int('PORT', default=8000)}"
        username = admin_username()
        password = admin_password()
        user = get_user_model().objects.filter(username=username).first()
        token = Token.objects.filter(user=user).first() if user else None
        source = (
            "DJANGO_SUPERUSER_PASSWORD"
            if env.str("DJANGO_SUPERUSER_PASSWORD", default="")
            else str(admin_password_file())
        )
        lines = [
            "",
            "=" * 64,
            "  creditflow is starting",
            f"  Admin:     {base}/admin/",
            f"  Login:     {username} / {password or '(run manage.py demo_setup)'}",
            f"             (password from {source})",
            f"  API:       {base}/api/v1/   docs: {base}/api/v1/docs/",
        ]
        if token:
            lines.append(f"  API token: {token.key}  (header: Authorization: Token <key>)")
        lines += [f"  Health:    {base}/healthz", "  Stop:      Ctrl-C", "=" * 64, ""]
        self.stdout.write("\n".join(lines))
