"""Creating, changing and rotating webhook endpoints."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from webhooks.models import ALL_EVENTS, EventType, WebhookEndpoint
from webhooks.services.addresses import UnsafeUrl, webhook_target_resolve
from webhooks.services.delivery import webhook_endpoint_wake_on_commit

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 32


def webhook_secret_generate() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def webhook_url_validate(*, url: str) -> str:
    try:
        webhook_target_resolve(url=url)
    except UnsafeUrl as error:
        raise ValidationError({"url": [ValidationError(str(error), code=error.code)]}) from error
    return url


def webhook_events_validate(*, events: Sequence[str]) -> list[str]:
    known = {choice.value for choice in EventType}
    unknown = [event for event in events if event != ALL_EVENTS and event not in known]
    if unknown or not events:
        raise ValidationError(
            {"events": [f"a non-empty list of {sorted(known)} or ['*']; unknown: {unknown}"]}
        )
    return sorted(set(events))


def webhook_endpoint_create(
    *, url: str, events: Sequence[str], description: str = ""
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (returned once: only the caller ever shows it)."""
    endpoint = WebhookEndpoint.objects.create(
        url=webhook_url_validate(url=url),
        events=webhook_events_validate(events=events),
        description=description,
        secret=webhook_secret_generate(),
    )
    return endpoint, endpoint.secret


def webhook_endpoint_update(*, endpoint: WebhookEndpoint, **fields: Any) -> WebhookEndpoint:
    """Change url, events, description or enabled; enabling clears the failure record."""
    if "url" in fields:
        fields["url"] = webhook_url_validate(url=fields["url"])
    if "events" in fields:
        fields["events"] = webhook_events_validate(events=fields["events"])
    woken = fields.get("enabled") is True and not endpoint.enabled
    if woken:
        fields["disabled_reason"] = ""
        fields["failing_since"] = None
    elif fields.get("enabled") is False and not endpoint.enabled:
        fields.pop("enabled")
    elif fields.get("enabled") is False:
        fields["disabled_reason"] = "disabled by an operator"
    for name, value in fields.items():
        setattr(endpoint, name, value)
    endpoint.save()
    if woken:
        webhook_endpoint_wake_on_commit(endpoint_id=endpoint.pk)
    return endpoint


def webhook_endpoint_rotate_secret(*, endpoint: WebhookEndpoint) -> str:
    """A new secret; the current one goes on signing for WEBHOOK_ROTATION_GRACE_SECONDS."""
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_valid_until = timezone.now() + timedelta(
            seconds=settings.WEBHOOK_ROTATION_GRACE_SECONDS
        )
        endpoint.secret = webhook_secret_generate()
        endpoint.save(
            update_fields=["secret", "previous_secret", "previous_secret_valid_until", "updated_at"]
        )
    return endpoint.secret
