"""API shapes of tracking objects. Input serializers refuse fields they do not know."""

from collections.abc import Mapping
from datetime import UTC
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.openapi import NOT_BLANK_PATTERN, component_amend
from tracking.models import Campaign, Channel, Creative, Link, Message
from tracking.services.campaigns import CREATIVE_SLUG_TAKEN
from tracking.services.contacts import EXTERNAL_ID_MAX_LENGTH
from tracking.services.links import LINKS_PER_MESSAGE_MAX, link_short_url

# Ids are PostgreSQL `bigint`s: a larger number names nothing, and is refused as out of range.
ID_MAX = 2**63 - 1


def _refuse_unknown_fields(serializer: serializers.Serializer[Any], data: Any) -> None:
    """A typo in a field name is a 400 naming it, not a silently ignored value."""
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - set(serializer.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})


class StrictSerializer(serializers.Serializer[dict[str, Any]]):
    def to_internal_value(self, data: Any) -> Any:
        _refuse_unknown_fields(self, data)
        return super().to_internal_value(data)


class StrictModelSerializer(serializers.ModelSerializer[Any]):
    def to_internal_value(self, data: Any) -> Any:
        _refuse_unknown_fields(self, data)
        return super().to_internal_value(data)


class CampaignSerializer(StrictModelSerializer):
    class Meta:
        model = Campaign
        fields = ["id", "slug", "name", "created_at"]
        read_only_fields = ["id", "created_at"]


class CreativeSerializer(StrictModelSerializer):
    class Meta:
        model = Creative
        fields = ["id", "campaign", "slug", "name", "body", "created_at"]
        read_only_fields = ["id", "created_at"]
        # DRF's unique-together check answers under non_field_errors; validate() names the slug.
        validators: list[Any] = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        campaign = attrs.get("campaign", getattr(self.instance, "campaign", None))
        slug = attrs.get("slug", getattr(self.instance, "slug", None))
        others = Creative.objects.filter(campaign=campaign, slug=slug)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError({"slug": [CREATIVE_SLUG_TAKEN]}, code="unique")
        return attrs


# The document shows North American numbers in E.164, a form in which every match is a real
# number; the server takes any valid number with its country code, in any common spelling,
# and stores it in E.164. (A pattern for every numbering plan would be the plans themselves.)
PHONE_PATTERN_BODY = r"\+1(?:201|202|212|213|305|310|312|415|617|646|718|917)[2-9][0-9]{6}"
PHONE_DESCRIPTION = (
    "A phone number with its country code, e.g. +12015550123 (any valid number: stored in E.164)"
)
NOT_BLANK = NOT_BLANK_PATTERN


def phone_schema(*, blank: bool) -> dict[str, Any]:
    body = f"(?:{PHONE_PATTERN_BODY})?" if blank else PHONE_PATTERN_BODY
    return {
        "type": "string",
        "nullable": True,
        "pattern": f"^{body}$",
        "description": PHONE_DESCRIPTION + ("; empty or null: none" if blank else ""),
    }


# What Django's email validator takes (a dot-atom local part; a host name with a TLD of at
# least two letters), so every address the document allows is one the server takes.
EMAIL_PATTERN_BODY = (
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def email_schema(*, blank: bool) -> dict[str, Any]:
    body = f"(?:{EMAIL_PATTERN_BODY})?" if blank else EMAIL_PATTERN_BODY
    return {
        "type": "string",
        "nullable": True,
        "maxLength": 254,
        "pattern": f"^{body}$",
        "description": "An email address, any case (stored lower-cased)"
        + ("; empty or null: none" if blank else ""),
    }


@extend_schema_field(phone_schema(blank=True))
class _OptionalPhoneField(serializers.CharField):
    pass


@extend_schema_field(email_schema(blank=True))
class _OptionalEmailField(serializers.CharField):
    pass


class ContactInputSerializer(StrictSerializer):
    phone = _OptionalPhoneField(required=False, allow_null=True, allow_blank=True, max_length=32)
    email = _OptionalEmailField(required=False, allow_null=True, allow_blank=True, max_length=254)
    external_id = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=EXTERNAL_ID_MAX_LENGTH
    )


# At least one identifier that is neither null nor blank.
component_amend(
    "ContactInputRequest",
    anyOf=[
        {"required": ["phone"], "properties": {"phone": {"type": "string", "minLength": 1}}},
        {"required": ["email"], "properties": {"email": {"type": "string", "minLength": 1}}},
        {
            "required": ["external_id"],
            "properties": {"external_id": {"type": "string", "pattern": NOT_BLANK}},
        },
    ],
)


class MessageInputSerializer(StrictSerializer):
    contact = ContactInputSerializer()
    channel = serializers.ChoiceField(choices=Channel.choices)
    campaign = serializers.CharField(max_length=100, help_text="Campaign slug")
    creative = serializers.CharField(max_length=100, help_text="Creative slug in that campaign")
    offer = serializers.IntegerField(min_value=1, max_value=ID_MAX, help_text="Offer id")
    sent_at = serializers.DateTimeField()
    external_id = serializers.CharField(
        required=False,
        allow_null=True,
        max_length=128,
        help_text="Your id for this send: a repeated call with it creates nothing new",
    )
    links = serializers.IntegerField(
        required=False,
        default=1,
        min_value=1,
        max_value=LINKS_PER_MESSAGE_MAX,
        help_text="How many tracked links this message carries",
    )

    def run_validation(self, data: Any = serializers.empty) -> Any:
        # A bulk call validates ten thousand of these: well-formed input takes a
        # direct path; anything unusual goes the declared way, which names the field.
        fast = _message_fast_path(data)
        return fast if fast is not None else super().run_validation(data)


_CONTACT_FIELDS = frozenset({"phone", "email", "external_id"})
_MESSAGE_FIELDS = frozenset(MessageInputSerializer._declared_fields)
_CHANNELS = frozenset(Channel.values)


def _short_text(value: Any, limit: int) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= limit
        and value.strip() == value
        and "\x00" not in value
    )


def _message_fast_path(data: Any) -> dict[str, Any] | None:
    """The validated data of a plainly valid message, or None to validate it the long way."""
    if not isinstance(data, dict) or not _MESSAGE_FIELDS.issuperset(data):
        return None
    contact, offer, links = data.get("contact"), data.get("offer"), data.get("links", 1)
    if not (
        isinstance(contact, dict)
        and contact
        and _CONTACT_FIELDS.issuperset(contact)
        and all(value is None or _short_text(value, 254) for value in contact.values())
        and isinstance(data.get("channel"), str)
        and data["channel"] in _CHANNELS
        and _short_text(data.get("campaign"), 100)
        and _short_text(data.get("creative"), 100)
        and type(offer) is int
        and 1 <= offer <= ID_MAX
        and type(links) is int
        and 1 <= links <= LINKS_PER_MESSAGE_MAX
        and (data.get("external_id") is None or _short_text(data.get("external_id"), 128))
        and isinstance(data.get("sent_at"), str)
    ):
        return None
    try:
        sent_at = parse_datetime(data["sent_at"])
    except ValueError:
        return None
    if sent_at is None:
        return None
    sent_at = (
        timezone.make_aware(sent_at, UTC) if timezone.is_naive(sent_at) else sent_at.astimezone(UTC)
    )
    return {
        "contact": {name: contact[name] for name in _CONTACT_FIELDS if name in contact},
        "channel": data["channel"],
        "campaign": data["campaign"],
        "creative": data["creative"],
        "offer": offer,
        "sent_at": sent_at,
        "external_id": data.get("external_id"),
        "links": links,
    }


class MessageBulkInputSerializer(StrictSerializer):
    """The documented form is a bare list; `{"items": [...]}` is accepted too."""

    items = MessageInputSerializer(many=True)


class LinkSerializer(serializers.ModelSerializer[Link]):
    short_url = serializers.SerializerMethodField()

    class Meta:
        model = Link
        fields = ["code", "short_url"]

    def get_short_url(self, link: Link) -> str:
        return link_short_url(code=link.code)


class MessageSerializer(serializers.ModelSerializer[Message]):
    """A message with its links. The links come from `context["links"]` (just created)
    or from a `links` prefetch."""

    campaign: serializers.SlugRelatedField[Campaign] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    creative: serializers.SlugRelatedField[Creative] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    links = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = [
            "id",
            "contact",
            "channel",
            "campaign",
            "creative",
            "offer",
            "sent_at",
            "external_id",
            "created_at",
            "links",
        ]
        read_only_fields = fields

    @extend_schema_field(LinkSerializer(many=True))
    def get_links(self, message: Message) -> list[dict[str, Any]]:
        links = self.context.get("links", {}).get(message.pk)
        if links is None:
            links = list(message.links.all())
        return [{"code": link.code, "short_url": link_short_url(code=link.code)} for link in links]

    def to_representation(self, instance: Message) -> dict[str, Any]:
        # The same fields the declarations above document, built directly: a bulk
        # answer holds ten thousand of these, and the generic path is ~10x slower.
        return {
            "id": instance.pk,
            "contact": instance.contact_id,
            "channel": instance.channel,
            "campaign": instance.campaign.slug,
            "creative": instance.creative.slug,
            "offer": instance.offer_id,
            "sent_at": _DATETIME.to_representation(instance.sent_at),
            "external_id": instance.external_id,
            "created_at": _DATETIME.to_representation(instance.created_at),
            "links": self.get_links(instance),
        }


_DATETIME = serializers.DateTimeField()
