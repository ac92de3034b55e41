"""`/api/v1/clicks/` (list, detail) and `/api/v1/clicks/import/` (history from another tracker)."""

from __future__ import annotations

from datetime import UTC, timedelta
from ipaddress import ip_address
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import request_body_amend
from tracking.models import Click
from tracking.selectors import click_get, click_list
from tracking.serializers import ID_MAX
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


LINK_CODE_SCHEMA = {"type": "string", "pattern": f"^{LINK_CODE_PATTERN.pattern}$"}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": ID_MAX}


def query_id(request: Request, name: str) -> int | None:
    """`?<name>=<id>`: None when absent, else a positive integer, or a 400 naming it."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not 1 <= int(raw) <= ID_MAX:
        raise ValidationError({name: [f"must be an id (an integer from 1 to {ID_MAX})"]})
    return int(raw)


@extend_schema(
    parameters=[
        OpenApiParameter("message", ID_SCHEMA, description="Message id"),
        OpenApiParameter("code", LINK_CODE_SCHEMA, description="Link code"),
    ]
)
class ClickListApi(generics.ListAPIView[Click]):
    """Clicks, newest first."""

    serializer_class = ClickSerializer

    def get_queryset(self) -> QuerySet[Click]:
        message_id = query_id(self.request, "message")
        code = self.request.query_params.get("code")
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


def _invalid(index: int, field: str, message: str, status_code: int = 400) -> Response:
    return Response(
        {
            "error": f"item {index}: {field}: {message}",
            "index": index,
            "field": field,
            "fields": {"items": {str(index): {field: [message]}}},
        },
        status=status_code,
    )


ITEM_FIELDS = frozenset({"code", "occurred_at", "user_agent", "ip"})


def _parse_item(index: int, raw: Any) -> ClickImportItem:
    if not isinstance(raw, dict):
        raise ClickImportInvalid(index=index, field="item", message="must be an object")
    unknown = sorted(set(raw) - ITEM_FIELDS)
    if unknown:
        raise ClickImportInvalid(index=index, field=str(unknown[0])[:100], message="Unknown field.")
    code = raw.get("code")
    if not isinstance(code, str) or not code:
        raise ClickImportInvalid(index=index, field="code", message="required, a link code")
    if LINK_CODE_PATTERN.fullmatch(code) is None:
        raise ClickImportInvalid(index=index, field="code", message="not a link code")
    occurred_raw = raw.get("occurred_at")
    try:
        occurred_at = parse_datetime(occurred_raw) if isinstance(occurred_raw, str) else None
    except ValueError:  # well-formed but impossible, e.g. minute 75 in an offset
        occurred_at = None
    if occurred_at is None:
        raise ClickImportInvalid(
            index=index, field="occurred_at", message="required, an ISO 8601 time"
        )
    if timezone.is_naive(occurred_at):
        occurred_at = occurred_at.replace(tzinfo=UTC)
    if occurred_at > timezone.now() + FUTURE_TOLERANCE:
        # Well-formed, but history cannot happen later than now: a conflict with the clock.
        raise ClickImportInvalid(
            index=index, field="occurred_at", message="is in the future", status=409
        )
    user_agent = raw.get("user_agent") or ""
    if not isinstance(user_agent, str) or "\x00" in user_agent:
        raise ClickImportInvalid(
            index=index, field="user_agent", message="must be a string without NUL characters"
        )
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


@extend_schema_field(LINK_CODE_SCHEMA)
class _LinkCodeField(serializers.CharField):
    pass


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}, {"maxLength": 0}],
    }
)
class _OptionalIpField(serializers.CharField):
    pass


request_body_amend("clicks_import", minItems=1)


class ClickImportApi(APIView):
    """All or nothing: one bad item answers 400 naming it, and nothing is written."""

    @extend_schema(
        request=inline_serializer(
            "ClickImportItem",
            fields={
                "code": _LinkCodeField(help_text="A link's code"),
                "occurred_at": serializers.DateTimeField(
                    help_text="Not in the future (a few minutes' clock skew allowed): 409"
                ),
                "user_agent": serializers.CharField(required=False, allow_null=True),
                "ip": _OptionalIpField(required=False, allow_null=True),
            },
            many=True,
        ),
        operation_id="clicks_import",
        description="History from another tracker, all or nothing (at most `CLICKS_IMPORT_MAX`"
        "): the new click ids in the order given. A bad item answers 400 naming it, a code of "
        "no link 404, a time in the future 409; then nothing is written.",
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
            return _invalid(invalid.index, invalid.field, invalid.message, invalid.status)
        return Response({"click_ids": click_ids}, status=status.HTTP_201_CREATED)
