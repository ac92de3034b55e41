"""`/api/v1/clicks/` (list, detail) and `/api/v1/clicks/import/` (history from another tracker)."""

from __future__ import annotations

from datetime import UTC, timedelta
from ipaddress import ip_address
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracking.models import Click
from tracking.selectors import click_get, click_list
from tracking.services.clicks import (
    CLICK_ID_PATTERN,
    LINK_CODE_PATTERN,
    ClickImportInvalid,
    ClickImportItem,
    clicks_import,
)

# A clock a little ahead of ours is not an error; a day ahead is.
FUTURE_TOLERANCE = timedelta(minutes=5)


class ClickSerializer(serializers.ModelSerializer[Click]):
    code = serializers.CharField(source="link.code", read_only=True)

    class Meta:
        model = Click
        fields = [
            "id",
            "click_id",
            "occurred_at",
            "code",
            "link",
            "message",
            "contact",
            "offer",
            "channel",
            "user_agent",
            "referrer",
            "ip",
            "method",
            "is_bot",
            "is_preview",
            "is_duplicate",
            "flag_reason",
            "is_imported",
            "recorded_at",
        ]
        read_only_fields = fields


@extend_schema(
    parameters=[
        OpenApiParameter("message", OpenApiTypes.INT, description="Message id"),
        OpenApiParameter("code", OpenApiTypes.STR, description="Link code"),
    ]
)
class ClickListApi(generics.ListAPIView[Click]):
    """Clicks, newest first."""

    serializer_class = ClickSerializer

    def get_queryset(self) -> QuerySet[Click]:
        message = self.request.query_params.get("message")
        code = self.request.query_params.get("code")
        message_id: int | None = None
        if message is not None:
            if not message.isdigit():
                raise ValidationError({"message": ["must be a message id (an integer)"]})
            message_id = int(message)
        if code is not None and LINK_CODE_PATTERN.fullmatch(code) is None:
            raise ValidationError({"code": ["not a link code"]})
        return click_list(message_id=message_id, code=code)


class ClickDetailApi(APIView):
    @extend_schema(responses=ClickSerializer)
    def get(self, request: Request, click_id: str) -> Response:
        click = click_get(click_id=click_id) if CLICK_ID_PATTERN.fullmatch(click_id) else None
        if click is None:
            raise NotFound("no click with this click_id")
        return Response(ClickSerializer(click).data)


def _invalid(index: int, field: str, message: str) -> Response:
    return Response(
        {
            "error": f"item {index}: {field}: {message}",
            "index": index,
            "field": field,
            "fields": {"items": {str(index): {field: [message]}}},
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


def _parse_item(index: int, raw: Any) -> ClickImportItem:
    if not isinstance(raw, dict):
        raise ClickImportInvalid(index=index, field="item", message="must be an object")
    code = raw.get("code")
    if not isinstance(code, str) or not code:
        raise ClickImportInvalid(index=index, field="code", message="required, a link code")
    if LINK_CODE_PATTERN.fullmatch(code) is None:
        raise ClickImportInvalid(index=index, field="code", message="unknown link code")
    occurred_raw = raw.get("occurred_at")
    occurred_at = parse_datetime(occurred_raw) if isinstance(occurred_raw, str) else None
    if occurred_at is None:
        raise ClickImportInvalid(
            index=index, field="occurred_at", message="required, an ISO 8601 time"
        )
    if timezone.is_naive(occurred_at):
        occurred_at = occurred_at.replace(tzinfo=UTC)
    if occurred_at > timezone.now() + FUTURE_TOLERANCE:
        raise ClickImportInvalid(index=index, field="occurred_at", message="is in the future")
    user_agent = raw.get("user_agent") or ""
    if not isinstance(user_agent, str):
        raise ClickImportInvalid(index=index, field="user_agent", message="must be a string")
    ip = raw.get("ip") or None
    if ip is not None:
        try:
            if not isinstance(ip, str):
                raise ValueError(ip)
            ip_address(ip)
        except ValueError:
            raise ClickImportInvalid(
                index=index, field="ip", message="must be an IPv4 or IPv6 address"
            ) from None
    return ClickImportItem(code=code, occurred_at=occurred_at, user_agent=user_agent, ip=ip)


class ClickImportApi(APIView):
    """All or nothing: one bad item answers 400 naming it, and nothing is written."""

    @extend_schema(
        request=inline_serializer(
            "ClickImportItem",
            fields={
                "code": serializers.CharField(),
                "occurred_at": serializers.DateTimeField(),
                "user_agent": serializers.CharField(required=False),
                "ip": serializers.IPAddressField(required=False),
            },
            many=True,
        ),
        responses={
            201: inline_serializer(
                "ClickImportResult",
                {"click_ids": serializers.ListField(child=serializers.CharField())},
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if not isinstance(data, list):
            return Response(
                {"error": "expected a list of clicks"}, status=status.HTTP_400_BAD_REQUEST
            )
        if not data:
            return Response({"error": "the list is empty"}, status=status.HTTP_400_BAD_REQUEST)
        limit = settings.CLICKS_IMPORT_MAX
        if len(data) > limit:
            return Response(
                {"error": f"at most {limit} clicks per call, got {len(data)}"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        try:
            items = [_parse_item(index, raw) for index, raw in enumerate(data)]
            click_ids = clicks_import(items=items)
        except ClickImportInvalid as invalid:
            return _invalid(invalid.index, invalid.field, invalid.message)
        return Response({"click_ids": click_ids}, status=status.HTTP_201_CREATED)
