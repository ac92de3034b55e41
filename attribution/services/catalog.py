"""Networks and offers: creating them, rotating a network's token, changing an offer."""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from attribution.models import Network, Offer
from attribution.services.intake import network_cache_invalidate, token_hash
from tracking.services.link_cache import link_cache_invalidate

TOKEN_BYTES = 24
TOKEN_HINT_LENGTH = 4
DEFAULT_ROTATION_GRACE = timedelta(days=7)
NETWORK_FIELDS = frozenset(
    {
        "slug",
        "name",
        "postback_token",
        "allowed_ips",
        "currency",
        "parameter_aliases",
        "status_map",
        "response_format",
    }
)
OFFER_FIELDS = frozenset(
    {
        "name",
        "network",
        "destination_url",
        "status",
        "click_window_days",
        "attribution_model",
        "sms_window_days",
        "email_window_days",
        "view_window_hours",
        "payout",
        "currency",
        "forward_query_string",
    }
)


def network_token_generate() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def allowed_ips_normalize(entries: Sequence[str]) -> list[str]:
    """Each entry as a CIDR (`203.0.113.7` becomes `203.0.113.7/32`), or ValidationError."""
    normalized = []
    for entry in entries:
        try:
            normalized.append(str(ipaddress.ip_network(str(entry).strip(), strict=False)))
        except ValueError as error:
            raise ValidationError(f"{str(entry)[:60]!r} is not an IP address or CIDR") from error
    return normalized


def network_create(
    *,
    slug: str,
    name: str,
    postback_token: str | None = None,
    allowed_ips: Sequence[str] = (),
    currency: str = "USD",
    parameter_aliases: Mapping[str, Any] | None = None,
    status_map: Mapping[str, Any] | None = None,
    response_format: str = Network.ResponseFormat.JSON,
) -> tuple[Network, str]:
    """A new network and its postback token (returned here once, stored only as SHA-256)."""
    token = postback_token or network_token_generate()
    network = Network.objects.create(
        slug=slug,
        name=name,
        postback_token_hash=token_hash(token),
        token_hint=token[-TOKEN_HINT_LENGTH:],
        allowed_ips=allowed_ips_normalize(allowed_ips),
        currency=currency.upper(),
        parameter_aliases=dict(parameter_aliases or {}),
        status_map=dict(status_map or {}),
        response_format=response_format,
    )
    network_cache_invalidate()
    return network, token


def network_rotate_token(
    *,
    network: Network,
    grace: timedelta = DEFAULT_ROTATION_GRACE,
    new_token: str | None = None,
) -> str:
    """A new token; the old one keeps working for `grace` so the network can switch over."""
    token = new_token or network_token_generate()
    with transaction.atomic():
        locked = Network.objects.select_for_update().get(pk=network.pk)
        locked.previous_token_hash = locked.postback_token_hash
        locked.previous_token_valid_until = timezone.now() + grace
        locked.postback_token_hash = token_hash(token)
        locked.token_hint = token[-TOKEN_HINT_LENGTH:]
        locked.save(
            update_fields=[
                "previous_token_hash",
                "previous_token_valid_until",
                "postback_token_hash",
                "token_hint",
            ]
        )
        network_cache_invalidate()
    network.refresh_from_db()
    return token


def network_update(*, network: Network, **changes: Any) -> Network:
    """Change a network; every intake process reads it again after the commit.

    A new `postback_token` replaces the old one at once (unlike `network_rotate_token`,
    which keeps the old one working for a grace period).
    """
    unknown = set(changes) - NETWORK_FIELDS
    if unknown:
        raise ValueError(f"network fields that cannot be changed here: {sorted(unknown)}")
    token = changes.pop("postback_token", None)
    if "allowed_ips" in changes:
        changes["allowed_ips"] = allowed_ips_normalize(changes["allowed_ips"])
    if "currency" in changes:
        changes["currency"] = str(changes["currency"]).upper()
    for name, value in changes.items():
        setattr(network, name, value)
    if token:
        network.postback_token_hash = token_hash(token)
        network.token_hint = token[-TOKEN_HINT_LENGTH:]
        network.previous_token_hash = ""
        network.previous_token_valid_until = None
    network.full_clean(exclude=["postback_token_hash"])
    try:
        with transaction.atomic():
            network.save()
            network_cache_invalidate()
    except IntegrityError as error:  # the same slug taken concurrently
        raise ValidationError({"slug": "A network with this slug already exists."}) from error
    return network


def offer_create(
    *,
    name: str,
    network: Network,
    destination_url: str,
    click_window_days: int = 30,
    attribution_model: str = "first_click",
    sms_window_days: int = 1,
    email_window_days: int = 5,
    view_window_hours: int = 0,
    payout: Decimal | None = None,
    currency: str | None = None,
    status: str = Offer.Status.ACTIVE,
    forward_query_string: bool = False,
) -> Offer:
    offer = Offer(
        name=name,
        network=network,
        destination_url=destination_url,
        click_window_days=click_window_days,
        attribution_model=attribution_model,
        sms_window_days=sms_window_days,
        email_window_days=email_window_days,
        view_window_hours=view_window_hours,
        payout=payout,
        currency=(currency or network.currency).upper(),
        status=status,
        forward_query_string=forward_query_string,
    )
    return offer_save(offer=offer)


def offer_save(*, offer: Offer) -> Offer:
    """Validate and save a new or changed offer; redirects drop cached links after commit."""
    offer.full_clean()
    with transaction.atomic():
        offer.save()
        link_cache_invalidate()
    return offer


def offer_update(*, offer: Offer, **changes: Any) -> Offer:
    """Change an offer; every redirect process drops its cached links after the commit."""
    unknown = set(changes) - OFFER_FIELDS
    if unknown:
        raise ValueError(f"offer fields that cannot be changed here: {sorted(unknown)}")
    for name, value in changes.items():
        setattr(offer, name, value)
    return offer_save(offer=offer)
