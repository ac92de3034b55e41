"""Daily rollups: one row per (dimension, key, day), recomputed from the raw tables."""

from decimal import Decimal

from django.conf import settings
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


class DailyReport(DailyRollup):
    """The admin's entry to the report page (a proxy: no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "daily report"
        verbose_name_plural = "daily reports"


class RollupWatermark(models.Model):
    """How far the every-minute task has looked for new rows (one row, `name="touched"`)."""

    name = models.CharField(max_length=32, primary_key=True)
    scanned_until = models.DateTimeField()
    days_recomputed = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} until {self.scanned_until:%Y-%m-%d %H:%M:%S}"


class RollupJob(models.Model):
    """A recompute of a date range asked for in the admin and run on a worker."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    start = models.DateField()
    end = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    days_total = models.PositiveIntegerField(default=0)
    days_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(start__lte=models.F("end")), name="rollup_job_start_before_end"
            )
        ]

    def __str__(self) -> str:
        return f"Recompute {self.start} to {self.end} ({self.status})"
