"""Daily rollups: one row per (dimension, key, day), recomputed from the raw tables."""

from decimal import Decimal

from django.db import models


class Dimension(models.TextChoices):
    MESSAGE = "message", "Message"
    CREATIVE = "creative", "Creative"
    OFFER = "offer", "Offer"
    CAMPAIGN = "campaign", "Campaign"
    NETWORK = "network", "Network"


class DailyRollup(models.Model):
    day = models.DateField(help_text="A day in REPORTS_TIME_ZONE")
    dimension = models.CharField(max_length=10, choices=Dimension.choices)
    key = models.BigIntegerField(
        help_text="The id of the message, creative, offer, campaign or network"
    )
    sends = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)
    bot_clicks = models.PositiveIntegerField(default=0)
    conversions = models.PositiveIntegerField(default=0)
    rejected_conversions = models.PositiveIntegerField(default=0)
    reversed_conversions = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal(0))
    reversed_revenue = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal(0))
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dimension", "key", "day"], name="rollup_unique_cell")
        ]
        indexes = [models.Index(fields=["dimension", "day"], name="rollup_dimension_day")]

    def __str__(self) -> str:
        return f"{self.dimension} {self.key} {self.day}"
