"""`/api/v1/networks/`, `/api/v1/offers/`, `/api/v1/conversions/` (see INTERFACES.md)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from attribution import selectors
from attribution.models import (
    VIEW_WINDOW_HOURS_MAX,
    AttributionModel,
    Conversion,
    Network,
    Offer,
)
from attribution.services.catalog import (
    allowed_ips_normalize,
    network_create,
    network_update,
    offer_create,
    offer_update,
)
from config.openapi import component_amend

# What a destination must look like, stated in the OpenAPI document as this same pattern:
# http(s), a host name with a top-level domain, an optional port, then printable ASCII (macros
# such as {click_id} included): every match also passes the model's URLValidator, and no
# space or control character can reach a Location header.
DESTINATION_URL_PATTERN = (
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"(?::[0-9]{1,5})?(?:[/?#][!-~]*)?$"
)
CURRENCY_PATTERN = r"^[A-Za-z]{3}$"
# Any IPv4 or IPv6 address, or an IPv4 network; an IPv6 network ("2001:db8::/32") is taken too.
ALLOWED_IP_SCHEMA = {
    "type": "string",
    "anyOf": [
        {"format": "ipv4"},
        {"format": "ipv6"},
        {
            "pattern": r"^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
            r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/(?:3[0-2]|[12]?[0-9])$"
        },
    ],
}


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": r"^(?:\d{1,8}(?:\.\d{0,4})?|\.\d{1,4})?$",
        "nullable": True,
    }
)
class PayoutField(serializers.DecimalField):
    """A payout: at least 0, 8 digits before the point and 4 after ("" or null: none)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=12, decimal_places=4, min_value=0, **kwargs)


@extend_schema_field(ALLOWED_IP_SCHEMA)
class AllowedIpField(serializers.CharField):
    pass


# Answers show each entry as the server stores it: a network, e.g. 203.0.113.7/32.
for _component in ("Network", "NetworkCreated"):
    component_amend(
        _component,
        properties={
            "allowed_ips": {"items": {"type": "string", "description": "An IPv4 or IPv6 network"}}
        },
    )


def _without_nul_keys(value: dict[str, Any]) -> dict[str, Any]:
    # Stored as jsonb, which cannot hold a NUL character (the values are checked as fields).
    if any("\x00" in key for key in value):
        raise serializers.ValidationError("Keys cannot contain NUL characters.")
    return value


def _as_drf_error(error: DjangoValidationError) -> serializers.ValidationError:
    if hasattr(error, "message_dict"):
        return serializers.ValidationError(error.message_dict)
    return serializers.ValidationError(error.messages)


class NetworkSerializer(serializers.ModelSerializer):
    currency = serializers.RegexField(
        CURRENCY_PATTERN, required=False, help_text="ISO 4217 code, e.g. USD"
    )
    postback_token = serializers.CharField(
        write_only=True, required=False, min_length=16, max_length=200
    )
    allowed_ips = serializers.ListField(
        child=AllowedIpField(max_length=64), required=False, max_length=1000
    )
    parameter_aliases = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField(max_length=100)), required=False
    )
    status_map = serializers.DictField(
        child=serializers.ChoiceField(choices=["approved", "pending", "rejected", "reversed"]),
        required=False,
    )

    class Meta:
        model = Network
        fields = [
            "id",
            "slug",
            "name",
            "postback_token",
            "token_hint",
            "allowed_ips",
            "currency",
            "parameter_aliases",
            "status_map",
            "response_format",
            "created_at",
        ]
        read_only_fields = ["token_hint", "created_at"]

    def validate_parameter_aliases(self, value: dict[str, Any]) -> dict[str, Any]:
        return _without_nul_keys(value)

    def validate_status_map(self, value: dict[str, Any]) -> dict[str, Any]:
        return _without_nul_keys(value)

    def validate_allowed_ips(self, value: list[str]) -> list[str]:
        try:
            return allowed_ips_normalize(value)
        except DjangoValidationError as error:
            raise _as_drf_error(error) from error

    def validate_currency(self, value: str) -> str:
        return value.upper()


class NetworkCreatedSerializer(NetworkSerializer):
    """The create answer: the only time the token is shown (it is stored as a SHA-256 hash)."""

    postback_token = serializers.CharField(read_only=True)


class NetworkListCreateApi(generics.ListCreateAPIView):
    serializer_class = NetworkSerializer

    def get_queryset(self) -> QuerySet[Network]:
        return selectors.network_list()

    @extend_schema(request=NetworkSerializer, responses={201: NetworkCreatedSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            network, token = network_create(**serializer.validated_data)
        except IntegrityError as error:
            raise serializers.ValidationError(
                {"slug": ["a network with this slug exists"]}, code="unique"
            ) from error
        network.postback_token = token  # type: ignore[attr-defined]
        return Response(NetworkCreatedSerializer(network).data, status=status.HTTP_201_CREATED)


class NetworkDetailApi(generics.RetrieveUpdateAPIView):
    serializer_class = NetworkSerializer

    def get_queryset(self) -> QuerySet[Network]:
        return selectors.network_list()

    def perform_update(self, serializer: serializers.BaseSerializer[Network]) -> None:
        try:
            serializer.instance = network_update(
                network=self.get_object(), **serializer.validated_data
            )
        except DjangoValidationError as error:
            raise _as_drf_error(error) from error


class OfferSerializer(serializers.ModelSerializer):
    network = serializers.PrimaryKeyRelatedField(queryset=Network.objects.all())
    # Not a plain URI: it carries macros such as {click_id} (see INTERFACES.md, Redirect).
    destination_url = serializers.RegexField(
        DESTINATION_URL_PATTERN,
        max_length=2000,
        error_messages={"invalid": "an http(s) URL"},
        help_text="http(s) URL; macros: {click_id} {message_id} {offer_id} {campaign} "
        "{creative} {channel}",
    )
    click_window_days = serializers.IntegerField(min_value=1, max_value=90, required=False)
    sms_window_days = serializers.IntegerField(min_value=1, max_value=90, required=False)
    email_window_days = serializers.IntegerField(min_value=1, max_value=90, required=False)
    view_window_hours = serializers.IntegerField(
        min_value=0,
        max_value=VIEW_WINDOW_HOURS_MAX,
        required=False,
        help_text="Hours before a conversion in which an unclicked send earns view-through "
        "credit; 0 (default) turns view-through off",
    )
    attribution_model = serializers.ChoiceField(choices=AttributionModel.choices, required=False)
    payout = PayoutField(required=False, allow_null=True)
    currency = serializers.RegexField(
        CURRENCY_PATTERN, required=False, help_text="ISO 4217 code; default the network's"
    )

    def validate_currency(self, value: str) -> str:
        return value.upper()

    class Meta:
        model = Offer
        fields = [
            "id",
            "name",
            "network",
            "destination_url",
            "status",
            "click_window_days",
            "attribution_model",
            "sms_window_days",
            "email_window_days",
            "view_window_hours",
            "payout",
            "currency",
            "forward_query_string",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class OfferListCreateApi(generics.ListCreateAPIView):
    serializer_class = OfferSerializer

    def get_queryset(self) -> QuerySet[Offer]:
        return selectors.offer_list()

    def perform_create(self, serializer: serializers.BaseSerializer[Offer]) -> None:
        try:
            serializer.instance = offer_create(**serializer.validated_data)
        except DjangoValidationError as error:
            raise _as_drf_error(error) from error


class OfferDetailApi(generics.RetrieveUpdateAPIView):
    serializer_class = OfferSerializer

    def get_queryset(self) -> QuerySet[Offer]:
        return selectors.offer_list()

    def perform_update(self, serializer: serializers.BaseSerializer[Offer]) -> None:
        try:
            serializer.instance = offer_update(offer=self.get_object(), **serializer.validated_data)
        except DjangoValidationError as error:
            raise _as_drf_error(error) from error


class BlankAsNullChoiceField(serializers.ChoiceField):
    """Stored as "" until decided; answered as null, which the document's enum allows."""

    def to_representation(self, value: Any) -> Any:
        return None if value in ("", None) else super().to_representation(value)


class ConversionSerializer(serializers.ModelSerializer):
    attribution_model = BlankAsNullChoiceField(
        choices=AttributionModel.choices,
        allow_null=True,
        read_only=True,
        help_text="The model that decided the credit; null until decided or when unattributed",
    )
    network: serializers.SlugRelatedField[Network] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    click_id = serializers.SerializerMethodField(help_text="The credited click's click_id")
    sent_click_id = serializers.CharField(source="click_id", read_only=True)

    class Meta:
        model = Conversion
        fields = [
            "id",
            "network",
            "conversion_id",
            "status",
            "payout",
            "currency",
            "occurred_at",
            "received_at",
            "processed",
            "processed_at",
            "attributed",
            "reason",
            "attribution_model",
            "attribution_type",
            "click_id",
            "sent_click_id",
            "message",
            "creative",
            "campaign",
            "offer",
            "contact",
        ]
        read_only_fields = fields

    def get_click_id(self, conversion: Conversion) -> str | None:
        click = conversion.credited_click
        return click.click_id if click is not None else None


@extend_schema(
    parameters=[
        OpenApiParameter("network", OpenApiTypes.STR, description="Network slug"),
        OpenApiParameter("conversion_id", OpenApiTypes.STR, description="The network's id"),
    ]
)
class ConversionListApi(generics.ListAPIView):
    """Filter with `?network=<slug>` and `?conversion_id=<id>`."""

    serializer_class = ConversionSerializer

    def get_queryset(self) -> QuerySet[Conversion]:
        return selectors.conversion_list(
            network_slug=self.request.query_params.get("network") or None,
            conversion_id=self.request.query_params.get("conversion_id") or None,
        )


class ConversionDetailApi(generics.RetrieveAPIView):
    serializer_class = ConversionSerializer

    def get_queryset(self) -> QuerySet[Conversion]:
        return selectors.conversion_list()
