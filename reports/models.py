"""Daily rollups: one row per (dimension, key, day), recomputed from the raw tables."""

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import ExpressionWrapper, F
from django.db.models.functions import Now
from django.utils import timezone


class Dimension(models.TextChoices):
    MESSAGE = "message", "Message"
    CREATIVE = "creative", "Creative"
    OFFER = "offer", "Offer"
    CAMPAIGN = "campaign", "Campaign"
    NETWORK = "network", "Network"


# `day + 0`: the row's own day, in an index column of the per-metric indexes after the
# metric. Read one day at a time (`day = %s`), PostgreSQL counts `day` itself as a constant
# and promises only (metric, key) order, so merging the days re-sorted every run of equal
# metric values by day (a whole day for a mostly-zero metric); it does not see through
# `day + 0`, so each day promises (metric, day + 0, key) and the merge keeps that order.
SAME_DAY = ExpressionWrapper(F("day") + 0, output_field=models.DateField())
# The API's metric orderings and the short names of their indexes.
METRIC_INDEXES = (
    ("sends", "sends"),
    ("clicks", "clicks"),
    ("unique_clicks", "unique_clicks"),
    ("bot_clicks", "bot_clicks"),
    ("preview_clicks", "preview_clicks"),
    ("conversions", "conversions"),
    ("rejected_conversions", "rejected"),
    ("reversed_conversions", "reversed"),
    ("revenue", "revenue"),
    ("reversed_revenue", "reversed_revenue"),
    ("view_through_conversions", "vt_conversions"),
    ("view_through_revenue", "vt_revenue"),
)


class DailyRollup(models.Model):
    day = models.DateField(help_text="A day in REPORTS_TIME_ZONE")
    dimension = models.CharField(max_length=10, choices=Dimension.choices)
    key = models.BigIntegerField(
        help_text="The id of the message, creative, offer, campaign or network"
    )
    sends = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)
    bot_clicks = models.PositiveIntegerField(default=0, help_text="Bots and previews")
    preview_clicks = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Previews alone"
    )
    conversions = models.PositiveIntegerField(default=0)
    rejected_conversions = models.PositiveIntegerField(default=0)
    reversed_conversions = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal(0))
    reversed_revenue = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal(0))
    # Credited to a send that was never clicked: apart, so `conversions`, `revenue` and the
    # ratios stay click-through and turning view-through on never inflates them.
    view_through_conversions = models.PositiveIntegerField(default=0)
    view_through_revenue = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal(0))
    computed_at = models.DateTimeField(auto_now=True, help_text="When the values last changed")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dimension", "key", "day"], name="rollup_unique_cell")
        ]
        # The API's pages in (day, key) order, and a range's rows for the report table; and
        # one per metric, for the API's pages ordered by it (reports.cells: each day of the
        # range read in its metric order, read forward or backward, and the days merged).
        indexes = [
            models.Index(fields=["dimension", "day", "key"], name="rollup_dimension_day_key"),
            *(
                models.Index(
                    "dimension", "day", metric, SAME_DAY, "key", name=f"rollup_day_{short}"
                )
                for metric, short in METRIC_INDEXES
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dimension} {self.key} {self.day}"


class DailyTotal(models.Model):
    """The sums of one day's rollup rows of one dimension, and how many rows (keys) it has.

    Written with the day's rows, in the same transaction: the report's chart, totals and
    row count read a row per day here instead of summing every key's row (20,000 message
    keys a day make a 90-day range 1.8M rows).
    """

    day = models.DateField()
    dimension = models.CharField(max_length=10, choices=Dimension.choices)
    keys = models.PositiveIntegerField(default=0)
    sends = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    unique_clicks = models.PositiveIntegerField(default=0)
    bot_clicks = models.PositiveIntegerField(default=0, help_text="Bots and previews")
    preview_clicks = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Previews alone"
    )
    conversions = models.PositiveIntegerField(default=0)
    rejected_conversions = models.PositiveIntegerField(default=0)
    reversed_conversions = models.PositiveIntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal(0))
    reversed_revenue = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal(0))
    view_through_conversions = models.PositiveIntegerField(default=0)
    view_through_revenue = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal(0))
    computed_at = models.DateTimeField(
        default=timezone.now,
        db_default=Now(),
        help_text="When the day was last recomputed (its rollup rows change only when their"
        " values do)",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dimension", "day"], name="daily_total_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.dimension} total {self.day}"


class Period(models.TextChoices):
    MONTH = "month", "Month"
    DEKAD = "dekad", "Dekad (days 1-10, 11-20, 21-end)"


class PeriodRollup(models.Model):
    """One key's daily rollup rows summed over a month or a dekad, and how many rows.

    Kept by `rollup_recompute_day` in the day's transaction (the change of the day's rows is
    added to its month and dekad), so a long range reads a few of these per key instead of
    every day's row (see reports.periods). Counts are plain integers: a change is added
    with INSERT ... ON CONFLICT, whose proposed row (a negative change) meets CHECK
    constraints before the conflict does.
    """

    period = models.CharField(max_length=5, choices=Period.choices)
    start = models.DateField(help_text="The first day of the month or dekad")
    dimension = models.CharField(max_length=10, choices=Dimension.choices)
    key = models.BigIntegerField()
    days = models.IntegerField(default=0, help_text="Daily rows summed here")
    sends = models.IntegerField(default=0)
    clicks = models.IntegerField(default=0)
    unique_clicks = models.IntegerField(default=0)
    bot_clicks = models.IntegerField(default=0, help_text="Bots and previews")
    preview_clicks = models.IntegerField(default=0, help_text="Previews alone")
    conversions = models.IntegerField(default=0)
    rejected_conversions = models.IntegerField(default=0)
    reversed_conversions = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal(0))
    reversed_revenue = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal(0))
    view_through_conversions = models.IntegerField(default=0)
    view_through_revenue = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal(0))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dimension", "period", "start", "key"], name="period_rollup_unique_cell"
            )
        ]

    def __str__(self) -> str:
        return f"{self.dimension} {self.key} {self.period} of {self.start}"


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


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ConversionsJob(models.Model):
    """A job over a range's conversions, run on a worker: its state, progress and who asked."""

    status = models.CharField(max_length=8, choices=JobStatus.choices, default=JobStatus.QUEUED)
    conversions_total = models.PositiveIntegerField(default=0)
    conversions_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class Comparison(ConversionsJob):
    """A "what if": the same conversions credited under 2 to 4 configurations.

    `configurations` are as asked (settings left out are each offer's own); `rows` and
    `moved` are the result, kept so that an operator can reopen it. Nothing recorded
    changes.
    """

    start = models.DateField()
    end = models.DateField()
    dimension = models.CharField(max_length=10, choices=Dimension.choices)
    offer = models.ForeignKey(
        "attribution.Offer", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    configurations = models.JSONField()
    rows = models.JSONField(default=list, blank=True)
    unattributed = models.JSONField(default=dict, blank=True)
    moved = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "what if"
        verbose_name_plural = "what if comparisons"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(start__lte=models.F("end")), name="comparison_start_before_end"
            )
        ]

    def __str__(self) -> str:
        names = ", ".join(str(c.get("name")) for c in self.configurations)
        return f"{names}: {self.start} to {self.end} by {self.dimension}"


class ComparisonMove(models.Model):
    """One conversion whose credit differs between the first configuration and another."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="moves")
    conversion = models.ForeignKey(
        "attribution.Conversion", on_delete=models.CASCADE, related_name="+"
    )
    keys = ArrayField(
        models.BigIntegerField(null=True), help_text="The dimension key under each configuration"
    )
    credits = models.JSONField(help_text="Under each configuration: click, message and why")

    class Meta:
        indexes = [GinIndex(fields=["keys"], name="comparison_move_keys")]

    def __str__(self) -> str:
        return f"conversion {self.conversion_id}: {self.keys}"


class Reattribution(ConversionsJob):
    """Conversions of one offer over a range decided again under its current settings."""

    start = models.DateField()
    end = models.DateField()
    offer = models.ForeignKey("attribution.Offer", on_delete=models.CASCADE, related_name="+")
    settings_applied = models.JSONField(default=dict, blank=True)
    changed = models.PositiveIntegerField(default=0)
    days_recomputed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(start__lte=models.F("end")),
                name="reattribution_start_before_end",
            )
        ]

    def __str__(self) -> str:
        return f"Re-attribution of offer {self.offer_id}, {self.start} to {self.end}"
