"""Networks, offers, raw postbacks, and the conversions decided from them."""

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class Network(models.Model):
    """An affiliate network that sends postbacks.

    Only a SHA-256 of the postback token is stored: the token itself is shown
    once, when it is created or rotated. After a rotation the previous token
    keeps working until `previous_token_valid_until`.
    """

    class ResponseFormat(models.TextChoices):
        JSON = "json", "JSON"
        TEXT = "text", "Text (success=true;)"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    postback_token_hash = models.CharField(max_length=64)
    previous_token_hash = models.CharField(max_length=64, blank=True)
    previous_token_valid_until = models.DateTimeField(null=True, blank=True)
    token_hint = models.CharField(
        max_length=8, blank=True, help_text="Last characters of the token"
    )
    allowed_ips = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    # {"click_id": ["s2"], "payout": ["p"]}: names this network uses besides the standard ones.
    parameter_aliases = models.JSONField(default=dict, blank=True)
    # {"1": "approved", "declined_fraud": "rejected"}: this network's status words.
    status_map = models.JSONField(default=dict, blank=True)
    response_format = models.CharField(
        max_length=8, choices=ResponseFormat.choices, default=ResponseFormat.JSON
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name or self.slug


class AttributionModel(models.TextChoices):
    FIRST_CLICK = "first_click", "First click"
    LAST_CLICK = "last_click", "Last click"
    COOPERATIVE = "cooperative", "Cooperative multichannel"


# 30 days: a send older than that explains no conversion, and the message scan stays short.
VIEW_WINDOW_HOURS_MAX = 720


class AttributionType(models.TextChoices):
    CLICK_THROUGH = "click_through", "Click-through"
    VIEW_THROUGH = "view_through", "View-through"


class Offer(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    name = models.CharField(max_length=200)
    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="offers")
    destination_url = models.URLField(
        max_length=2000,
        help_text="Macros: {click_id} {message_id} {offer_id} {campaign} {creative} {channel}",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    click_window_days = models.PositiveSmallIntegerField(default=30)
    attribution_model = models.CharField(
        max_length=16, choices=AttributionModel.choices, default=AttributionModel.FIRST_CLICK
    )
    sms_window_days = models.PositiveSmallIntegerField(default=1)
    email_window_days = models.PositiveSmallIntegerField(default=5)
    # 0 turns view-through off: only clicks earn credit.
    view_window_hours = models.PositiveSmallIntegerField(
        default=0,
        help_text="Credit the latest message sent within this many hours before an unclicked "
        "conversion (0: off)",
    )
    payout = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    forward_query_string = models.BooleanField(
        default=False, help_text="Pass the short link's own query string on to the destination"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(click_window_days__gte=1, click_window_days__lte=90),
                name="offer_click_window_1_to_90",
            ),
            models.CheckConstraint(
                condition=Q(sms_window_days__gte=1, sms_window_days__lte=90),
                name="offer_sms_window_1_to_90",
            ),
            models.CheckConstraint(
                condition=Q(email_window_days__gte=1, email_window_days__lte=90),
                name="offer_email_window_1_to_90",
            ),
            models.CheckConstraint(
                condition=Q(view_window_hours__gte=0, view_window_hours__lte=VIEW_WINDOW_HOURS_MAX),
                name="offer_view_window_0_to_max",
            ),
            models.CheckConstraint(
                condition=Q(payout__isnull=True) | Q(payout__gte=Decimal(0)),
                name="offer_payout_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ConversionStatus(models.TextChoices):
    APPROVED = "approved", "Approved"
    PENDING = "pending", "Pending"
    REJECTED = "rejected", "Rejected"
    REVERSED = "reversed", "Reversed"


class Postback(models.Model):
    """The raw request a network sent, committed before it is answered.

    The row, not the queue, is the source of truth: a sweeper re-enqueues rows
    still `received` after a few minutes, and an operator can replay any row.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        INVALID = "invalid", "Invalid"
        FAILED = "failed", "Failed"

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="postbacks")
    received_at = models.DateTimeField(auto_now_add=True)
    method = models.CharField(max_length=8)
    query_string = models.TextField(blank=True)
    body = models.TextField(blank=True)
    content_type = models.CharField(max_length=200, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED)
    reason = models.CharField(max_length=500, blank=True)
    conversion = models.ForeignKey(
        "Conversion", on_delete=models.SET_NULL, null=True, blank=True, related_name="postbacks"
    )
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # When a task for this row was last put on the queue; the sweeper waits a
    # while after this before it enqueues the row again.
    last_enqueued_at = models.DateTimeField(null=True, blank=True)
    # A row of a CSV import (1-based data row): stored once however often the import runs.
    conversion_import = models.ForeignKey(
        "ConversionImport",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="postbacks",
    )
    import_row = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "received_at"], name="postback_status_received"),
            models.Index(fields=["network", "received_at"], name="postback_network_received"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["conversion_import", "import_row"],
                condition=Q(conversion_import__isnull=False),
                name="postback_unique_import_row",
            )
        ]

    def __str__(self) -> str:
        return f"Postback #{self.pk} ({self.status})"


class ConversionImport(models.Model):
    """A CSV of conversions, one a row, each stored and processed as the network's postback.

    The file is kept as uploaded; every row also becomes a stored postback.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="imports")
    file_name = models.CharField(max_length=255, blank=True)
    body = models.TextField(help_text="The CSV as uploaded (UTF-8)")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    rows = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    # [{"row": <1-based data row>, "error": "..."}], the first ERRORS_KEPT of them.
    errors = models.JSONField(default=list, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="import_status_created")]

    def __str__(self) -> str:
        return f"Import #{self.pk} ({self.status})"


class Conversion(models.Model):
    """One conversion, unique per (network, conversion_id); without a conversion id,
    unique per (network, click id). Credit fields are copied from the credited click."""

    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="conversions")
    # NULL, not "", when absent: the partial unique constraints below depend on it.
    conversion_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    click_id = models.CharField(max_length=255, blank=True, help_text="As the network sent it")
    # Without a click id or a conversion id, a conversion naming a person is keyed on
    # that person and the offer: a SHA-256, so no phone or email sits in the key.
    person_key = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(
        max_length=10, choices=ConversionStatus.choices, default=ConversionStatus.APPROVED
    )
    payout = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))
    currency = models.CharField(max_length=3, default="USD")
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    processed = models.BooleanField(default=False)
    processed_at = models.DateTimeField(null=True, blank=True)
    attributed = models.BooleanField(default=False)
    reason = models.CharField(max_length=32, blank=True)
    attribution_model = models.CharField(
        max_length=16, choices=AttributionModel.choices, blank=True
    )
    # NULL while unattributed, so the API shows `null` rather than an empty enum value.
    attribution_type = models.CharField(  # noqa: DJ001
        max_length=16, choices=AttributionType.choices, null=True, blank=True
    )
    # No database constraint: clicks are partitioned by time (a foreign key would have to
    # name the partition key too) and old partitions are dropped by the retention task,
    # while the conversion keeps its credit (message, creative, campaign, offer, contact).
    credited_click = models.ForeignKey(
        "tracking.Click",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    message = models.ForeignKey(
        "tracking.Message",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="conversions",
    )
    creative = models.ForeignKey(
        "tracking.Creative",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="conversions",
    )
    campaign = models.ForeignKey(
        "tracking.Campaign",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="conversions",
    )
    offer = models.ForeignKey(
        Offer, on_delete=models.PROTECT, null=True, blank=True, related_name="conversions"
    )
    contact = models.ForeignKey(
        "tracking.Contact",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="conversions",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["network", "conversion_id"],
                condition=Q(conversion_id__isnull=False),
                name="conversion_unique_per_network_id",
            ),
            models.UniqueConstraint(
                fields=["network", "click_id"],
                condition=Q(conversion_id__isnull=True) & ~Q(click_id=""),
                name="conversion_unique_per_network_click_without_id",
            ),
            models.UniqueConstraint(
                fields=["network", "person_key"],
                condition=Q(conversion_id__isnull=True, click_id="") & ~Q(person_key=""),
                name="conversion_unique_per_network_person_without_id",
            ),
            models.CheckConstraint(
                condition=Q(payout__gte=Decimal(0)), name="conversion_payout_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["occurred_at"], name="conversion_occurred_at"),
            models.Index(fields=["updated_at"], name="conversion_updated_at"),
            models.Index(fields=["contact", "occurred_at"], name="conversion_contact_time"),
        ]

    def __str__(self) -> str:
        return self.conversion_id or f"click {self.click_id}"


class ConversionEvent(models.Model):
    """Each status, payout or credit change of a conversion, with its signed revenue delta.

    Also the outbox of conversion news: the first event of a conversion (`from_status`
    empty) is its decision, every later one a change. Events are written in the same
    transaction as the change they record, unpublished; subscribers (webhooks) mark them
    published once they have taken them, so nothing decided goes unreported.
    """

    conversion = models.ForeignKey(Conversion, on_delete=models.CASCADE, related_name="events")
    postback = models.ForeignKey(
        Postback, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    from_status = models.CharField(max_length=10, choices=ConversionStatus.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=ConversionStatus.choices)
    payout = models.DecimalField(max_digits=12, decimal_places=4)
    revenue_delta = models.DecimalField(max_digits=12, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)
    # A database default, so the set-based INSERT of the decision need not name it.
    published = models.BooleanField(db_default=False)

    class Meta:
        indexes = [
            models.Index(fields=["created_at"], name="conversion_event_created_at"),
            models.Index(
                fields=["id"], condition=Q(published=False), name="conversion_event_unpublished"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_status or '-'} -> {self.to_status}"


class CreditChange(models.Model):
    """A conversion's credit decided again (re-attribution, a replay): before, after, why."""

    conversion = models.ForeignKey(
        Conversion, on_delete=models.CASCADE, related_name="credit_changes"
    )
    before = models.JSONField(help_text="The credit columns before the change")
    after = models.JSONField(help_text="The credit columns after the change")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    why = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"], name="credit_change_created_at")]

    def __str__(self) -> str:
        return f"{self.before.get('message_id')} -> {self.after.get('message_id')}"
