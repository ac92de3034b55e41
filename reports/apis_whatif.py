"""What if over the API: compare configurations, read a comparison, re-attribute an offer.

`POST /api/v1/attribution/compare/` -> 202 `{"id"}`; `GET .../compare/<id>/` the status and,
once done, the table; `GET .../compare/<id>/moves/` the conversions whose credit moves.
`POST /api/v1/attribution/reattribute/` -> 202 `{"id"}`; `GET .../reattribute/<id>/`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.models import VIEW_WINDOW_HOURS_MAX, AttributionModel, Offer
from config.openapi import component_amend
from config.pagination import StandardPagination
from reports.models import Comparison, ComparisonMove, Dimension, JobStatus, Reattribution
from reports.whatif import (
    WhatIfInputError,
    comparison_create,
    comparison_moves,
    reattribution_create,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$"
RESERVED_NAMES = frozenset({"key", "name"})


class ConfigurationSerializer(serializers.Serializer[dict[str, Any]]):
    name = serializers.RegexField(
        NAME_PATTERN,
        max_length=40,
        help_text="Column name in the result: letters, digits, space, _ . - (not key/name)",
    )
    attribution_model = serializers.ChoiceField(choices=AttributionModel.choices)
    click_window_days = serializers.IntegerField(min_value=1, max_value=90, required=False)
    sms_window_days = serializers.IntegerField(min_value=1, max_value=90, required=False)
    email_window_days = serializers.IntegerField(min_value=1, max_value=90, required=False)
    view_window_hours = serializers.IntegerField(
        min_value=0, max_value=VIEW_WINDOW_HOURS_MAX, required=False
    )

    def validate_name(self, value: str) -> str:
        if value in RESERVED_NAMES:
            raise serializers.ValidationError(f"{value!r} is a column of its own")
        return value


class ComparisonCreateSerializer(serializers.Serializer[dict[str, Any]]):
    start = serializers.DateField()
    end = serializers.DateField()
    dimension = serializers.ChoiceField(choices=Dimension.choices)
    offer = serializers.PrimaryKeyRelatedField(
        queryset=Offer.objects.all(), required=False, allow_null=True
    )
    models = ConfigurationSerializer(many=True, min_length=2, max_length=4)  # type: ignore[call-arg]


component_amend("ComparisonCreateRequest", properties={"models": {"minItems": 2, "maxItems": 4}})


class JobCreatedSerializer(serializers.Serializer[dict[str, Any]]):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=JobStatus.choices)


class ComparisonSerializer(serializers.ModelSerializer[Comparison]):
    models = serializers.JSONField(source="configurations")
    progress = serializers.SerializerMethodField()
    rows = serializers.JSONField(
        help_text='[{"key", "name", "<configuration name>": {"conversions", "revenue", '
        '"conversions_change", "revenue_change"}, ...}]; change is against the first'
    )
    unattributed = serializers.JSONField(
        help_text="Conversions no message gets under each configuration (message, creative, "
        "campaign and offer dimensions)"
    )

    class Meta:
        model = Comparison
        fields = [
            "id",
            "status",
            "start",
            "end",
            "dimension",
            "offer",
            "models",
            "progress",
            "rows",
            "unattributed",
            "moved",
            "error",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, comparison: Comparison) -> float:
        if comparison.status == JobStatus.DONE:
            return 1.0
        total = comparison.conversions_total
        return round(comparison.conversions_done / total, 3) if total else 0.0


class ComparisonMoveSerializer(serializers.ModelSerializer[ComparisonMove]):
    conversion_id = serializers.CharField(source="conversion.conversion_id", allow_null=True)
    occurred_at = serializers.DateTimeField(source="conversion.occurred_at")
    payout = serializers.DecimalField(source="conversion.payout", max_digits=12, decimal_places=4)

    class Meta:
        model = ComparisonMove
        fields = ["conversion", "conversion_id", "occurred_at", "payout", "keys", "credits"]
        read_only_fields = fields


def _answer_400(error: WhatIfInputError) -> Response:
    return Response({"error": str(error)}, status=error.status)


class ComparisonListCreateApi(generics.ListAPIView):
    """Comparisons run so far (newest first), and a new one."""

    serializer_class = ComparisonSerializer
    pagination_class = StandardPagination

    def get_queryset(self) -> QuerySet[Comparison]:
        return Comparison.objects.order_by("-pk")

    @extend_schema(
        request=ComparisonCreateSerializer,
        responses={202: JobCreatedSerializer},
        operation_id="attribution_compare_create",
    )
    def post(self, request: Request) -> Response:
        serializer = ComparisonCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        offer = data.get("offer")
        try:
            comparison = comparison_create(
                start=data["start"],
                end=data["end"],
                dimension=data["dimension"],
                offer_id=offer.pk if offer is not None else None,
                configurations=data["models"],
                requested_by_id=request.user.pk,
            )
        except WhatIfInputError as error:
            return _answer_400(error)
        return Response({"id": comparison.pk, "status": comparison.status}, status=202)


class ComparisonDetailApi(generics.RetrieveAPIView):
    serializer_class = ComparisonSerializer
    queryset = Comparison.objects.all()


class ComparisonMovesApi(generics.ListAPIView):
    """The conversions whose credit moves, with each configuration's credit and why."""

    serializer_class = ComparisonMoveSerializer
    pagination_class = StandardPagination

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "key",
                {"type": "integer", "minimum": -(2**63) + 1, "maximum": 2**63 - 1},
                description="Only moves into or out of this key",
            )
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[ComparisonMove]:
        comparison = get_object_or_404(Comparison, pk=self.kwargs["pk"])
        key = self.request.query_params.get("key")
        digits = (key or "").removeprefix("-")
        if key is not None and not (
            digits.isascii() and digits.isdigit() and abs(int(digits[:20] or 0)) < 2**63
        ):
            raise serializers.ValidationError({"key": ["an integer (a 64-bit id)"]})
        moves: QuerySet[ComparisonMove] = comparison_moves(
            comparison=comparison, key=int(key) if key is not None else None
        )
        return moves


class ReattributionCreateSerializer(serializers.Serializer[dict[str, Any]]):
    start = serializers.DateField()
    end = serializers.DateField()
    offer = serializers.PrimaryKeyRelatedField(queryset=Offer.objects.all())


class ReattributionSerializer(serializers.ModelSerializer[Reattribution]):
    class Meta:
        model = Reattribution
        fields = [
            "id",
            "status",
            "start",
            "end",
            "offer",
            "settings_applied",
            "conversions_total",
            "conversions_done",
            "changed",
            "days_recomputed",
            "error",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields


class ReattributionListCreateApi(generics.ListAPIView):
    """Re-attributions run so far (newest first), and a new one."""

    serializer_class = ReattributionSerializer
    pagination_class = StandardPagination

    def get_queryset(self) -> QuerySet[Reattribution]:
        return Reattribution.objects.order_by("-pk")

    @extend_schema(
        request=ReattributionCreateSerializer,
        responses={202: JobCreatedSerializer},
        operation_id="attribution_reattribute_create",
    )
    def post(self, request: Request) -> Response:
        serializer = ReattributionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            job = reattribution_create(
                start=data["start"],
                end=data["end"],
                offer_id=data["offer"].pk,
                requested_by_id=request.user.pk,
            )
        except WhatIfInputError as error:
            return _answer_400(error)
        return Response({"id": job.pk, "status": job.status}, status=202)


class ReattributionDetailApi(APIView):
    @extend_schema(responses=ReattributionSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ReattributionSerializer(get_object_or_404(Reattribution, pk=pk)).data)


__all__ = [
    "ComparisonDetailApi",
    "ComparisonListCreateApi",
    "ComparisonMovesApi",
    "ReattributionDetailApi",
    "ReattributionListCreateApi",
]
