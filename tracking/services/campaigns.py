"""Campaigns and their creatives."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tracking.models import Campaign, Creative


def campaign_create(*, slug: str, name: str) -> Campaign:
    campaign = Campaign(slug=slug, name=name)
    campaign.full_clean()
    try:
        with transaction.atomic():
            campaign.save()
    except IntegrityError as error:  # the same slug created concurrently
        raise ValidationError({"slug": "A campaign with this slug already exists."}) from error
    return campaign


def creative_create(*, campaign: Campaign, slug: str, name: str, body: str = "") -> Creative:
    creative = Creative(campaign=campaign, slug=slug, name=name, body=body)
    creative.full_clean()
    try:
        with transaction.atomic():
            creative.save()
    except IntegrityError as error:
        raise ValidationError(
            {"slug": "This campaign already has a creative with this slug."}
        ) from error
    return creative
