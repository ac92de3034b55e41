"""Campaigns and their creatives: creating and changing them.

A campaign's or creative's slug is filled into the `{campaign}` / `{creative}` macros of
every redirect, so a change invalidates the redirect's link cache after the commit.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tracking.models import Campaign, Creative
from tracking.services.link_cache import link_cache_invalidate

CAMPAIGN_FIELDS = frozenset({"slug", "name"})
CREATIVE_FIELDS = frozenset({"campaign", "slug", "name", "body"})
CAMPAIGN_SLUG_TAKEN = "A campaign with this slug already exists."
CREATIVE_SLUG_TAKEN = "This campaign already has a creative with this slug."


def campaign_create(*, slug: str, name: str) -> Campaign:
    campaign = Campaign(slug=slug, name=name)
    campaign.full_clean()
    try:
        with transaction.atomic():
            campaign.save()
    except IntegrityError as error:  # the same slug created concurrently
        raise ValidationError(
            {"slug": ValidationError(CAMPAIGN_SLUG_TAKEN, code="unique")}
        ) from error
    return campaign


def campaign_update(*, campaign: Campaign, **changes: Any) -> Campaign:
    """Change a campaign; every redirect process fills in the new slug after the commit."""
    unknown = set(changes) - CAMPAIGN_FIELDS
    if unknown:
        raise ValueError(f"campaign fields that cannot be changed here: {sorted(unknown)}")
    for name, value in changes.items():
        setattr(campaign, name, value)
    campaign.full_clean()
    try:
        with transaction.atomic():
            campaign.save()
            link_cache_invalidate()
    except IntegrityError as error:  # the same slug taken concurrently
        raise ValidationError(
            {"slug": ValidationError(CAMPAIGN_SLUG_TAKEN, code="unique")}
        ) from error
    return campaign


def creative_create(*, campaign: Campaign, slug: str, name: str, body: str = "") -> Creative:
    creative = Creative(campaign=campaign, slug=slug, name=name, body=body)
    creative.full_clean()
    try:
        with transaction.atomic():
            creative.save()
    except IntegrityError as error:
        raise ValidationError(
            {"slug": ValidationError(CREATIVE_SLUG_TAKEN, code="unique")}
        ) from error
    return creative


def creative_update(*, creative: Creative, **changes: Any) -> Creative:
    """Change a creative; every redirect process fills in the new slug after the commit."""
    unknown = set(changes) - CREATIVE_FIELDS
    if unknown:
        raise ValueError(f"creative fields that cannot be changed here: {sorted(unknown)}")
    for name, value in changes.items():
        setattr(creative, name, value)
    creative.full_clean()
    try:
        with transaction.atomic():
            creative.save()
            link_cache_invalidate()
    except IntegrityError as error:
        raise ValidationError(
            {"slug": ValidationError(CREATIVE_SLUG_TAKEN, code="unique")}
        ) from error
    return creative
