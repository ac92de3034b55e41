"""Contacts, what was sent to them, the links in it, and every request to those links.

`tracking` never imports `attribution`: a message names its offer through a
string foreign key, and the redirect reads the offer's destination through it.
"""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower


class Channel(models.TextChoices):
    SMS = "sms", "SMS"
    EMAIL = "email", "Email"


class Contact(models.Model):
    """A person. Each identifier is unique when set; at least one is set."""

    phone = models.CharField(max_length=16, null=True, blank=True, unique=True, help_text="E.164")
    email = models.EmailField(max_length=254, null=True, blank=True, unique=True)
    external_id = models.CharField(max_length=128, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(phone__isnull=False)
                | Q(email__isnull=False)
                | Q(external_id__isnull=False),
                name="contact_has_an_identifier",
            ),
            models.CheckConstraint(
                condition=Q(phone__isnull=True) | Q(phone__regex=r"^\+[1-9][0-9]{6,14}$"),
                name="contact_phone_is_e164",
            ),
            models.CheckConstraint(
                condition=Q(email__isnull=True) | Q(email=Lower("email")),
                name="contact_email_is_lower_case",
            ),
        ]
        permissions = [
            ("view_contact_phone", "Can see contacts' full phone numbers and emails"),
        ]

    def __str__(self) -> str:
        return f"Contact #{self.pk}"


class Campaign(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name or self.slug


class Creative(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="creatives")
    slug = models.SlugField(max_length=100)
    name = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "slug"], name="creative_slug_unique_in_campaign"
            )
        ]

    def __str__(self) -> str:
        return f"{self.campaign.slug}/{self.slug}"


class Message(models.Model):
    """One send of one creative to one contact on one channel, for one offer."""

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="messages")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="messages")
    creative = models.ForeignKey(Creative, on_delete=models.PROTECT, related_name="messages")
    offer = models.ForeignKey(
        "attribution.Offer", on_delete=models.PROTECT, related_name="messages"
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    sent_at = models.DateTimeField()
    # Kept for view-through credit (a delivered SMS that was never clicked).
    delivered_at = models.DateTimeField(null=True, blank=True)
    external_id = models.CharField(max_length=128, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["sent_at"], name="message_sent_at"),
            models.Index(fields=["contact", "sent_at"], name="message_contact_sent_at"),
            models.Index(fields=["campaign", "sent_at"], name="message_campaign_sent_at"),
            models.Index(fields=["created_at"], name="message_created_at"),
        ]

    def __str__(self) -> str:
        return f"Message #{self.pk} ({self.channel})"


class Link(models.Model):
    """A tracked short link of a message: `code` is the path after the host."""

    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="links")
    code = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.code


class Click(models.Model):
    """One request to a link. Bots and previews are kept, flagged, never credited.

    Message, contact, offer and channel are copied from the link so attribution
    finds a contact's clicks on an offer with one index scan.
    """

    click_id = models.CharField(max_length=64, unique=True)
    occurred_at = models.DateTimeField()
    link = models.ForeignKey(Link, on_delete=models.PROTECT, related_name="clicks")
    message = models.ForeignKey(Message, on_delete=models.PROTECT, related_name="clicks")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="clicks")
    offer = models.ForeignKey("attribution.Offer", on_delete=models.PROTECT, related_name="clicks")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    user_agent = models.CharField(max_length=512, blank=True)
    referrer = models.CharField(max_length=512, blank=True)
    # Truncated before storage: /24 for IPv4, /48 for IPv6.
    ip = models.GenericIPAddressField(null=True, blank=True)
    method = models.CharField(max_length=8, default="GET")
    is_bot = models.BooleanField(default=False)
    is_preview = models.BooleanField(default=False)
    is_duplicate = models.BooleanField(default=False)
    is_imported = models.BooleanField(default=False)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["contact", "offer", "occurred_at"], name="click_contact_offer_time"
            ),
            models.Index(fields=["link", "occurred_at"], name="click_link_time"),
            models.Index(fields=["message", "occurred_at"], name="click_message_time"),
            models.Index(fields=["occurred_at"], name="click_occurred_at"),
            models.Index(fields=["recorded_at"], name="click_recorded_at"),
            # The duplicate check: same link and truncated address within a window.
            models.Index(fields=["link", "ip", "occurred_at"], name="click_link_ip_time"),
        ]

    def __str__(self) -> str:
        return self.click_id


class ClickSpoolOffset(models.Model):
    """How far the drainer has read one spool file; moved in the same transaction
    as the clicks it read, so a crash can neither lose nor repeat a click."""

    file_name = models.CharField(max_length=255, unique=True)
    offset = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.file_name}@{self.offset}"
