"""The demo's admin login and its small built-in data set.

The login comes from `DJANGO_SUPERUSER_USERNAME` / `DJANGO_SUPERUSER_PASSWORD` /
`DJANGO_SUPERUSER_EMAIL`; without a password one is generated once and kept in
`.run/admin-password`, so every `make run` prints the same working login.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from attribution.models import Network, Offer
from config.env import env
from tracking.models import Channel
from tracking.services.campaigns import campaign_create, creative_create
from tracking.services.contacts import ContactSpec
from tracking.services.messages import MessageSpec, message_create_bulk

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


def admin_login_ensure() -> str:
    """The admin login (staff, superuser) with the password `admin_password` gives; its name."""
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
    token = secrets.token_urlsafe(24)
    network = Network(
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
        offer = Offer(
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
