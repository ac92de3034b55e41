"""`manage.py demo_setup`: the admin login and, on an empty database, demo data.

The login comes from `DJANGO_SUPERUSER_USERNAME` / `DJANGO_SUPERUSER_PASSWORD` /
`DJANGO_SUPERUSER_EMAIL`; without a password one is generated once and kept in
`.run/admin-password`, so every `make run` prints the same working login.

Demo data: when a `simulate` command is installed (the reports app's full demo)
it is called; otherwise a small set goes through the same services the API uses.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from config.env import env
from tracking.models import Campaign, Channel, Message
from tracking.services.campaigns import campaign_create, creative_create
from tracking.services.contacts import ContactSpec
from tracking.services.messages import MessageSpec, message_create_bulk

logger = logging.getLogger(__name__)

DEMO_MESSAGES = 50


def admin_username() -> str:
    return str(env.str("DJANGO_SUPERUSER_USERNAME", default="admin"))


def admin_password_file() -> Path:
    return Path(settings.BASE_DIR) / ".run" / "admin-password"


def admin_password(*, create: bool = False) -> str | None:
    """The environment's password, else the one kept in `.run/admin-password`."""
    given = env.str("DJANGO_SUPERUSER_PASSWORD", default="")
    if given:
        return str(given)
    path = admin_password_file()
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password


class Command(BaseCommand):
    help = "Create the admin login and, on an empty database, demo data."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--small", action="store_true", help="the small built-in set even if `simulate` exists"
        )
        parser.add_argument("--no-data", action="store_true", help="only the admin login")

    def handle(self, *args: Any, **options: Any) -> None:
        username = self._admin_login()
        self.stdout.write(f"Admin login ready: {username}")
        if options["no_data"]:
            return
        if Message.objects.exists() or Campaign.objects.exists():
            self.stdout.write("Data already there: no demo data added.")
            return
        if "simulate" in get_commands() and not options["small"]:
            call_command("simulate", stdout=self.stdout, stderr=self.stderr)
            return
        count = demo_data_create()
        self.stdout.write(f"Demo data created: {count} messages.")

    def _admin_login(self) -> str:
        username = admin_username()
        password = admin_password(create=True)
        email = env.str("DJANGO_SUPERUSER_EMAIL", default="")
        user_model = get_user_model()
        lookup = {user_model.USERNAME_FIELD: username}
        user = user_model._default_manager.filter(**lookup).first() or user_model(**lookup)
        user.is_staff = True
        user.is_superuser = True
        user.is_active = True
        if email:
            user.email = email
        # The printed login must work, so the kept password wins over a changed one.
        user.set_password(password)
        user.save()
        Token.objects.get_or_create(user=user)
        return username


@transaction.atomic
def demo_data_create() -> int:
    """A network, two offers, a campaign with an SMS and an email creative, and
    `DEMO_MESSAGES` sends over the last week. Returns how many messages it sent."""
    # `tracking` does not import `attribution`: reach its models through the app registry.
    network_model = apps.get_model("attribution", "Network")
    offer_model = apps.get_model("attribution", "Offer")
    token = secrets.token_urlsafe(24)
    network = network_model(
        slug="demo-network",
        name="Demo Network",
        postback_token_hash=hashlib.sha256(token.encode()).hexdigest(),
        token_hint=token[-4:],
    )
    network.full_clean()
    network.save()
    offers = []
    for name, model, payout in [
        ("Demo credit card", "first_click", "45.00"),
        ("Demo loan", "cooperative", "120.00"),
    ]:
        offer = offer_model(
            name=name,
            network=network,
            destination_url="https://example.com/landing?click_id={click_id}&msg={message_id}",
            attribution_model=model,
            payout=payout,
        )
        offer.full_clean()
        offer.save()
        offers.append(offer)
    campaign = campaign_create(slug="demo-welcome", name="Demo welcome series")
    creative_create(campaign=campaign, slug="sms-short", name="SMS, short", body="Hi! {link}")
    creative_create(
        campaign=campaign,
        slug="email-long",
        name="Email, long",
        body="Hello,\n\nYour pre-approved offer is waiting: {link}\n",
    )
    now = timezone.now()
    items = []
    for number in range(DEMO_MESSAGES):
        sms = number % 2 == 0
        items.append(
            MessageSpec(
                contact=ContactSpec(
                    phone=f"+1201555{100 + number // 2:04d}",
                    email=f"demo{number // 2}@example.com",
                ),
                channel=Channel.SMS if sms else Channel.EMAIL,
                campaign=campaign.slug,
                creative="sms-short" if sms else "email-long",
                offer=offers[number % 2].pk,
                sent_at=now - timedelta(hours=3 * number + 1),
                external_id=f"demo-{number}",
            )
        )
    return len(message_create_bulk(items=items))
