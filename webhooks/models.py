"""Endpoints that receive conversion events, the messages sent to them, and each attempt."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class EventType(models.TextChoices):
    CONVERSION_DECIDED = "conversion.decided", "conversion.decided"
    CONVERSION_UPDATED = "conversion.updated", "conversion.updated"


ALL_EVENTS = "*"


class WebhookEndpoint(models.Model):
    """A customer URL and the events it wants.

    The secret must be kept readable to sign with; it is shown once, when created or
    rotated. After a rotation the previous secret signs too until
    `previous_secret_valid_until`, so a receiver can switch without losing a message.
    """

    url = models.URLField(max_length=2000)
    # Event type names, or ["*"] for all of them.
    events = ArrayField(models.CharField(max_length=64), default=list)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True)
    description = models.CharField(max_length=200, blank=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_valid_until = models.DateTimeField(null=True, blank=True)
    # Start of the current run of failed attempts (none since the last success); an
    # endpoint failing longer than WEBHOOK_DISABLE_AFTER_SECONDS is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events


class WebhookMessage(models.Model):
    """One event as sent: the body is fixed once, so every retry sends the same bytes."""

    event = models.OneToOneField(
        "attribution.ConversionEvent", on_delete=models.CASCADE, related_name="webhook_message"
    )
    event_type = models.CharField(max_length=64, choices=EventType.choices)
    conversion = models.ForeignKey(
        "attribution.Conversion", on_delete=models.CASCADE, related_name="+"
    )
    body = models.TextField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.webhook_id} {self.event_type}"

    @property
    def webhook_id(self) -> str:
        return webhook_id_of(self.pk)


def webhook_id_of(message_id: int) -> str:
    """The `webhook-id` header: the same for every attempt and every resend of a message."""
    return f"msg_{message_id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One message to one endpoint.

    Pending until a 2xx answer (delivered) or the retry schedule runs out (failed).
    A worker claims a pending delivery by moving `next_attempt_at` past its own sending
    time (a lease): if it dies, the delivery is due again when the lease ends.
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="deliveries")
    # Copied from the message: order is kept per (endpoint, conversion), by `sequence`
    # (the conversion event's id), without a join.
    conversion_id = models.BigIntegerField()
    sequence = models.BigIntegerField()
    event_type = models.CharField(max_length=64, choices=EventType.choices)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["message", "endpoint"], name="webhook_delivery_once_per_endpoint"
            )
        ]
        indexes = [
            models.Index(
                fields=["endpoint", "next_attempt_at"],
                condition=Q(status="pending"),
                name="webhook_delivery_due",
            ),
            models.Index(
                fields=["endpoint", "conversion_id", "sequence"],
                condition=Q(status="pending"),
                name="webhook_delivery_pending_order",
            ),
            models.Index(fields=["endpoint", "created_at"], name="webhook_delivery_endpoint_time"),
        ]

    def __str__(self) -> str:
        return f"{webhook_id_of(self.message_id)} -> endpoint {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One POST of a delivery and what came back (or why nothing did)."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="log")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="+")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    succeeded = models.BooleanField(default=False)
    latency_ms = models.PositiveIntegerField(default=0)
    # The first characters of the answer, or the error when there was none.
    response_start = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["endpoint", "attempted_at"], name="webhook_attempt_endpoint_time"),
        ]

    def __str__(self) -> str:
        return f"{self.attempted_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"


class WebhookResend(models.Model):
    """An operator's request to send a time range of an endpoint's deliveries again; a worker
    carries it out (a range may hold millions), and the row shows how far it got."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField(null=True, blank=True)
    until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    resent = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Resend #{self.pk} of endpoint {self.endpoint_id} ({self.status})"
