"""Contacts, what was sent to them, the links in it, and every request to those links.

`tracking` never imports `attribution`: a message names its offer through a
string foreign key, and the redirect reads the offer's destination through it.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex
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


class IdentifierKind(models.TextChoices):
    PHONE = "phone", "Phone"
    EMAIL = "email", "Email"
    EXTERNAL_ID = "external_id", "External id"


class IdentitySource(models.TextChoices):
    MESSAGE = "message", "A message named them together"
    IDENTIFY = "identify", "An identify call"
    OPERATOR = "operator", "An operator"


class ContactMerge(models.Model):
    """One contact merged into an older one: its messages, clicks and conversions now
    belong to `survivor`, and a request naming its id or identifiers reaches `survivor`."""

    survivor = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="merges")
    # The merged contact's row is gone; its id stays findable here.
    merged_contact_id = models.BigIntegerField(unique=True)
    merged_created_at = models.DateTimeField()
    # The merged contact's identifiers (personal data: shown masked).
    identifiers = models.JSONField(default=dict)
    source = models.CharField(max_length=10, choices=IdentitySource.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    request_id = models.CharField(max_length=64, blank=True)
    # {"messages": n, "clicks": n, "conversions": n}: rows moved onto the survivor.
    moved = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["survivor", "created_at"], name="contact_merge_survivor")]

    def __str__(self) -> str:
        return f"Contact #{self.merged_contact_id} -> #{self.survivor_id}"


class ContactAlias(models.Model):
    """An identifier a contact lost in a merge an operator forced over a conflict (the
    survivor kept its own value of that kind): requests naming it still reach the contact."""

    kind = models.CharField(max_length=12, choices=IdentifierKind.choices)
    value = models.CharField(max_length=254)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="aliases")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="contact_alias_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} alias of contact #{self.contact_id}"


class ContactConflict(models.Model):
    """Identifiers named together that belong to people who cannot be one (a kind with two
    different values). Nothing was merged; an operator merges them or keeps them apart."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MERGED = "merged", "Merged"
        KEPT_APART = "kept_apart", "Kept apart"

    # Where the message went: the contact its own channel's address names.
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="conflicts")
    # The other contacts the identifiers named (ids follow merges).
    other_contact_ids = ArrayField(models.BigIntegerField(), default=list)
    # The identifiers as the request named them, normalised (personal data: shown masked).
    identifiers = models.JSONField(default=dict)
    kinds = ArrayField(models.CharField(max_length=12), default=list, help_text="Conflicting")
    channel = models.CharField(max_length=8, blank=True)
    source = models.CharField(max_length=10, choices=IdentitySource.choices)
    message = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    request_id = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["status", "created_at"], name="contact_conflict_status")]

    def __str__(self) -> str:
        return f"Conflict #{self.pk} ({self.status})"


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


def message_name(*, pk: int | None, channel: str) -> str:
    """How a message is named everywhere (reports name thousands without loading rows)."""
    return f"Message #{pk} ({channel})"


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
        return message_name(pk=self.pk, channel=self.channel)


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

    Every click is one more row written by the drainer, so the table carries only the
    indexes a query needs (each named with its query below) and no foreign-key
    constraints: the drainer's INSERT ... SELECT joins the link and its message, so a
    click cannot name a missing link, message, contact or offer; links, messages,
    contacts and offers are never deleted while clicks name them (`PROTECT` is kept
    on the Django side). The table is partitioned by month of `occurred_at` (see
    `tracking/services/partitions.py`), so its primary key and unique key include it.
    """

    click_id = models.CharField(max_length=64)
    occurred_at = models.DateTimeField()
    link = models.ForeignKey(
        Link, on_delete=models.PROTECT, related_name="clicks", db_constraint=False, db_index=False
    )
    message = models.ForeignKey(
        Message,
        on_delete=models.PROTECT,
        related_name="clicks",
        db_constraint=False,
        db_index=False,
    )
    contact = models.ForeignKey(
        Contact,
        on_delete=models.PROTECT,
        related_name="clicks",
        db_constraint=False,
        db_index=False,
    )
    offer = models.ForeignKey(
        "attribution.Offer",
        on_delete=models.PROTECT,
        related_name="clicks",
        db_constraint=False,
        db_index=False,
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    user_agent = models.CharField(max_length=512, blank=True)
    referrer = models.CharField(max_length=512, blank=True)
    # Truncated before storage: /24 for IPv4, /48 for IPv6.
    ip = models.GenericIPAddressField(null=True, blank=True)
    method = models.CharField(max_length=8, default="GET")
    is_bot = models.BooleanField(default=False)
    is_preview = models.BooleanField(default=False)
    is_duplicate = models.BooleanField(default=False)
    # Which rule or list made it a bot or a preview (`rule:slack`, `device-detector:UptimeRobot`,
    # `header:prefetch`, `behaviour:soon-after-send`, ...); empty for a person.
    flag_reason = models.CharField(max_length=100, blank=True, default="", db_default="")
    is_imported = models.BooleanField(default=False)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # The drainer's idempotency (`ON CONFLICT (click_id, occurred_at)`: a spool line
            # drained twice carries the same time) and every lookup by click id: the click
            # API, postbacks naming a click. A unique key of a partitioned table must hold
            # the partition key.
            models.UniqueConstraint(fields=["click_id", "occurred_at"], name="click_id_unique"),
        ]
        indexes = [
            # Attribution's candidates (contact, offer, time window) and a contact's journey.
            # The id after the time is the order attribution asks for (ties broken by id),
            # so its first and latest click are the first entry of each month's range; the
            # channel and flags after it are checked on the entry, not the row: the latest
            # click of a channel the contact never clicked on read every row of the window.
            # Entries grow from 32 to 48 bytes (`attribution.services.batch`).
            models.Index(
                fields=["contact", "offer", "occurred_at", "id", "channel", "is_bot", "is_preview"],
                name="click_contact_offer_time",
            ),
            # The duplicate check (same link and truncated address within a window) and
            # the click API's `?code=` / `?message=` (through the message's links).
            models.Index(fields=["link", "ip", "occurred_at"], name="click_link_ip_time"),
            # The drainer's scanner check (`behaviour:message-links-burst`): every click on
            # a message's links within seconds of each other. Without it each click of the
            # batch read all of its link's clicks through the index above.
            models.Index(fields=["link", "occurred_at"], name="click_link_time"),
            # One day's rollup and the admin's newest-first list: rows arrive in time
            # order, so a BRIN range index is enough and costs next to nothing per row.
            BrinIndex(fields=["occurred_at"], name="click_occurred_at_brin"),
            # The every-minute rollup task's "clicks recorded since" scan.
            BrinIndex(fields=["recorded_at"], name="click_recorded_at_brin"),
            # The admin dashboard's bot and preview clicks of a day: only flagged clicks
            # (a few percent) are in it, so counting a day is an index-only range scan.
            models.Index(
                fields=["occurred_at"],
                include=["is_bot", "is_preview"],
                condition=Q(is_bot=True) | Q(is_preview=True),
                name="click_flagged_time",
            ),
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


class ClickSpoolWatermark(models.Model):
    """How far one node's drainer has moved its spool: every click that node's redirect
    wrote before `drained_before` (by its clock, less a second of slack for lines written
    out of order) is in PostgreSQL. Published after each full pass, so a worker on any node
    can tell whether a click of another node's spool may still be on its way."""

    host = models.CharField(max_length=64, unique=True)
    drained_before = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.host}<{self.drained_before.isoformat()}"
