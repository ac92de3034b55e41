"""API shapes of tracking objects. Input serializers refuse fields they do not know."""

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tracking.models import Campaign, Channel, Creative, Link, Message
from tracking.services.contacts import EXTERNAL_ID_MAX_LENGTH
from tracking.services.messages import LINKS_PER_MESSAGE_MAX, link_short_url


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


class ContactInputSerializer(StrictSerializer):
    phone = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=32)
    email = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=254)
    external_id = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=EXTERNAL_ID_MAX_LENGTH
    )


class MessageInputSerializer(StrictSerializer):
    contact = ContactInputSerializer()
    channel = serializers.ChoiceField(choices=Channel.choices)
    campaign = serializers.CharField(max_length=100, help_text="Campaign slug")
    creative = serializers.CharField(max_length=100, help_text="Creative slug in that campaign")
    offer = serializers.IntegerField(min_value=1, help_text="Offer id")
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
