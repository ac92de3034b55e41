"""`/api/v1/messages/` (one, list, detail) and `/api/v1/messages/bulk/` (a list of them)."""

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracking.apis.clicks import ID_SCHEMA, query_id
from tracking.apis.errors import service_errors_as_400
from tracking.models import Message
from tracking.serializers import MessageInputSerializer, MessageSerializer
from tracking.services.contacts import ContactSpec
from tracking.services.messages import (
    MessageResult,
    MessageSpec,
    message_create,
    message_create_bulk,
)

NO_NUL_SCHEMA = {"type": "string", "pattern": "^[^\\x00]*$"}


def _spec(data: dict[str, Any]) -> MessageSpec:
    contact = data["contact"]
    return MessageSpec(
        contact=ContactSpec(
            phone=contact.get("phone"),
            email=contact.get("email"),
            external_id=contact.get("external_id"),
        ),
        channel=data["channel"],
        campaign=data["campaign"],
        creative=data["creative"],
        offer=data["offer"],
        sent_at=data["sent_at"],
        external_id=data.get("external_id") or None,
        links=data.get("links", 1),
    )


def _answer(results: list[MessageResult], *, many: bool) -> Response:
    context = {"links": {result.message.pk: result.links for result in results}}
    messages = [result.message for result in results]
    serializer = MessageSerializer(messages if many else messages[0], many=many, context=context)
    return Response(serializer.data, status=status.HTTP_201_CREATED)


class MessageListCreateApi(generics.ListAPIView[Message]):
    serializer_class = MessageSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("campaign", NO_NUL_SCHEMA, description="Campaign slug"),
            OpenApiParameter("contact", ID_SCHEMA, description="Contact id"),
            OpenApiParameter("external_id", NO_NUL_SCHEMA),
        ],
        description="Messages, newest first, with their links.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Message]:
        queryset = (
            Message.objects.select_related("campaign", "creative")
            .prefetch_related("links")
            .order_by("-id")
        )
        params = self.request.query_params
        for name in ("campaign", "external_id"):
            if "\x00" in params.get(name, ""):
                raise serializers.ValidationError({name: ["Null characters are not allowed."]})
        if params.get("campaign"):
            queryset = queryset.filter(campaign__slug=params["campaign"])
        contact_id = query_id(self.request, "contact")
        if contact_id is not None:
            queryset = queryset.filter(contact_id=contact_id)
        if params.get("external_id"):
            queryset = queryset.filter(external_id=params["external_id"])
        return queryset

    @extend_schema(
        request=MessageInputSerializer,
        responses={201: MessageSerializer},
        description="One message, its contact (created when new) and its tracked links. "
        "With `external_id`, a repeated call returns the stored message and creates nothing.",
    )
    def post(self, request: Request) -> Response:
        serializer = MessageInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        spec = _spec(serializer.validated_data)
        with service_errors_as_400():
            result = message_create(
                contact=spec.contact,
                channel=spec.channel,
                campaign=spec.campaign,
                creative=spec.creative,
                offer=spec.offer,
                sent_at=spec.sent_at,
                external_id=spec.external_id,
                links=spec.links,
                requested_by_id=request.user.pk,
            )
        return _answer([result], many=False)


class MessageDetailApi(generics.RetrieveAPIView[Message]):
    serializer_class = MessageSerializer
    queryset = Message.objects.select_related("campaign", "creative").prefetch_related("links")


class MessageBulkCreateApi(APIView):
    # Read by model-permission checks: creating here means creating messages.
    queryset = Message.objects.none()

    @extend_schema(
        request=MessageInputSerializer(many=True),
        operation_id="messages_create_bulk",
        responses={201: MessageSerializer(many=True)},
        description='A list of messages (or `{"items": [...]}`), all or nothing, at most '
        "`MESSAGES_BULK_MAX`. Answers the messages in the order given; items with an "
        "`external_id` already stored come back as they are.",
    )
    def post(self, request: Request) -> Response:
        items: Any = request.data
        if isinstance(items, Mapping):
            unknown = sorted(set(items) - {"items"})
            if unknown:
                raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
            items = items.get("items")
        if not isinstance(items, list):
            raise serializers.ValidationError({"items": ["Expected a list of messages."]})
        if len(items) > settings.MESSAGES_BULK_MAX:
            raise serializers.ValidationError(
                {
                    "items": [
                        f"At most {settings.MESSAGES_BULK_MAX} messages per call, got {len(items)}."
                    ]
                }
            )
        serializer = MessageInputSerializer(data=items, many=True)
        if not serializer.is_valid():
            errors = serializer.errors
            if isinstance(errors, list):
                raise serializers.ValidationError(
                    {"items": {str(index): error for index, error in enumerate(errors) if error}}
                )
            raise serializers.ValidationError({"items": errors})
        specs = [_spec(data) for data in serializer.validated_data]
        with service_errors_as_400(prefix="items."):
            results = message_create_bulk(items=specs, requested_by_id=request.user.pk)
        return _answer(results, many=True)
