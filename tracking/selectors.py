"""Reads of the tracking app that are more than a one-line filter."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from tracking.models import Click, Link


def link_target_get(*, code: str) -> dict[str, Any] | None:
    """What the redirect needs to answer for `code`, in one query; None when unknown."""
    row = (
        Link.objects.filter(code=code)
        .values(
            "id",
            "message_id",
            "message__offer_id",
            "message__channel",
            "message__campaign__slug",
            "message__creative__slug",
            "message__offer__destination_url",
            "message__offer__status",
            "message__offer__forward_query_string",
        )
        .first()
    )
    return dict(row) if row is not None else None


def link_ids_by_code(*, codes: list[str]) -> dict[str, int]:
    return dict(Link.objects.filter(code__in=codes).values_list("code", "id"))


def click_list(*, message_id: int | None = None, code: str | None = None) -> QuerySet[Click]:
    """Newest first. Filters combine; none given lists every click."""
    clicks = Click.objects.all()
    if message_id is not None:
        clicks = clicks.filter(message_id=message_id)
    if code is not None:
        clicks = clicks.filter(link__code=code)
    return clicks.select_related("link").order_by("-occurred_at", "-id")


def click_get(*, click_id: str) -> Click | None:
    return Click.objects.select_related("link").filter(click_id=click_id).first()
