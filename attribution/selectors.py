"""Reads of the attribution app that are more than a `.get()`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db.models import Count, Min, QuerySet
from django.utils import timezone

from attribution.models import Conversion, ConversionImport, Network, Offer, Postback
from attribution.services.parsing import clean_text


def network_list() -> QuerySet[Network]:
    return Network.objects.order_by("id")


def offer_list(*, network_id: int | None = None) -> QuerySet[Offer]:
    offers = Offer.objects.select_related("network").order_by("id")
    if network_id is not None:
        offers = offers.filter(network_id=network_id)
    return offers


def conversion_list(
    *, network_slug: str | None = None, conversion_id: str | None = None
) -> QuerySet[Conversion]:
    """Newest first, with what the API shows of each (the credited click's public id)."""
    conversions = Conversion.objects.select_related("network", "credited_click").order_by("-id")
    # Stored text never holds NUL (see parsing.clean_text); PostgreSQL refuses it in a query.
    if network_slug:
        conversions = conversions.filter(network__slug=clean_text(network_slug))
    if conversion_id:
        conversions = conversions.filter(conversion_id=clean_text(conversion_id))
    return conversions


def postback_ids_for_replay(
    *,
    network_slug: str | None = None,
    statuses: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    ids: Sequence[int] = (),
) -> QuerySet[Postback, int]:
    """The ids of the postbacks an operator picked, oldest first."""
    postbacks = Postback.objects.order_by("id")
    if network_slug:
        postbacks = postbacks.filter(network__slug=network_slug)
    if statuses:
        postbacks = postbacks.filter(status__in=statuses)
    if since:
        postbacks = postbacks.filter(received_at__gte=since)
    if until:
        postbacks = postbacks.filter(received_at__lt=until)
    if ids:
        postbacks = postbacks.filter(pk__in=ids)
    return postbacks.values_list("pk", flat=True)


def postback_backlog_get() -> tuple[int, float | None]:
    """(count, age in seconds of the oldest) of postbacks received but not yet processed."""
    waiting = Postback.objects.filter(status=Postback.Status.RECEIVED).aggregate(
        count=Count("id"), oldest=Min("received_at")
    )
    oldest = waiting["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest is not None else None
    return int(waiting["count"]), age


def conversion_import_status(*, conversion_import: ConversionImport) -> str:
    """`done` only once every row is stored and the workers decided every accepted one."""
    if conversion_import.status != ConversionImport.Status.DONE:
        return conversion_import.status
    waiting = Postback.objects.filter(
        conversion_import=conversion_import, status=Postback.Status.RECEIVED
    ).exists()
    return ConversionImport.Status.RUNNING if waiting else ConversionImport.Status.DONE
