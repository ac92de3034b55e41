"""`/api/v1/networks/`, `/api/v1/offers/`, `/api/v1/conversions/` (see INTERFACES.md)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
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


def _as_drf_error(error: DjangoValidationError) -> serializers.ValidationError:
    if hasattr(error, "message_dict"):
        return serializers.ValidationError(error.message_dict)
    return serializers.ValidationError(error.messages)


class NetworkSerializer(serializers.ModelSerializer):
    postback_token = serializers.CharField(
        write_only=True, required=False, min_length=16, max_length=200
    )
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=1000
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

    def validate_allowed_ips(self, value: list[str]) -> list[str]:
        try:
            return allowed_ips_normalize(value)
        except DjangoValidationError as error:
            raise _as_drf_error(error) from error

    def validate_currency(self, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise serializers.ValidationError("a 3-letter ISO 4217 code")
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
    destination_url = serializers.CharField(
        max_length=2000,
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
    payout = serializers.DecimalField(
        max_digits=12, decimal_places=4, min_value=0, required=False, allow_null=True
    )

    def validate_destination_url(self, value: str) -> str:
        try:
            URLValidator(schemes=["http", "https"])(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError("an http(s) URL") from error
        return value

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
        extra_kwargs = {"currency": {"required": False}}


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


class ConversionSerializer(serializers.ModelSerializer):
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
