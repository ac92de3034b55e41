"""`/api/v1/webhooks/`: endpoints, their delivery log, resends (see INTERFACES.md)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tracking.apis.errors import service_errors_as_400
from webhooks import selectors
from webhooks.models import (
    ALL_EVENTS,
    EventType,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookResend,
)
from webhooks.services.endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from webhooks.services.resend import webhook_deliveries_resend, webhook_resend_request

# The document shows http(s) with a host name; the server also takes a public address literal
# (a private one is refused, which no pattern can say well), and checks it all itself.
WEBHOOK_URL_PATTERN = (
    r"^https?://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
    r"(?::[1-9][0-9]{0,3})?(?:[/?#][!-~]*)?$"
)


@extend_schema_field({"type": "string", "pattern": WEBHOOK_URL_PATTERN, "maxLength": 2000})
class _WebhookUrlField(serializers.CharField):
    pass


EVENT_CHOICES = [ALL_EVENTS, *[choice.value for choice in EventType]]


class EndpointSerializer(serializers.ModelSerializer):
    url = _WebhookUrlField(
        max_length=2000,
        help_text="http(s) URL of a public host (a private or loopback address: 400; a host "
        "name that does not resolve: 404)",
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES),
        min_length=1,
        max_length=len(EVENT_CHOICES),
        help_text='Event types, or ["*"] for all',
    )

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "events",
            "enabled",
            "disabled_reason",
            "description",
            "failing_since",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["disabled_reason", "failing_since", "created_at", "updated_at"]
        extra_kwargs = {"enabled": {"required": False}, "description": {"required": False}}


class EndpointCreatedSerializer(EndpointSerializer):
    """The create answer: the only time the secret is shown."""

    secret = serializers.CharField(read_only=True, help_text="whsec_<base64>: keep it")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]


class WebhookListCreateApi(generics.ListCreateAPIView):
    serializer_class = EndpointSerializer

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return selectors.webhook_endpoint_list()

    @extend_schema(request=EndpointSerializer, responses={201: EndpointCreatedSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        enabled = data.pop("enabled", True)
        with service_errors_as_400():
            endpoint, secret = webhook_endpoint_create(**data)
            if not enabled:
                endpoint = webhook_endpoint_update(endpoint=endpoint, enabled=False)
        answer = EndpointCreatedSerializer(endpoint).data
        answer["secret"] = secret
        return Response(answer, status=status.HTTP_201_CREATED)


class WebhookDetailApi(generics.RetrieveUpdateAPIView):
    serializer_class = EndpointSerializer
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        return selectors.webhook_endpoint_list()

    def perform_update(self, serializer: serializers.BaseSerializer[WebhookEndpoint]) -> None:
        with service_errors_as_400():
            serializer.instance = webhook_endpoint_update(
                endpoint=self.get_object(), **serializer.validated_data
            )


class SecretSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    secret = serializers.CharField()
    previous_secret_valid_until = serializers.DateTimeField()


class WebhookRotateSecretApi(APIView):
    """A new secret, shown once; the previous one signs too for WEBHOOK_ROTATION_GRACE_SECONDS."""

    permission_model = WebhookEndpoint

    @extend_schema(request=None, responses={200: SecretSerializer})
    def post(self, request: Request, pk: int) -> Response:
        endpoint = get_object_or_404(selectors.webhook_endpoint_list(), pk=pk)
        secret = webhook_endpoint_rotate_secret(endpoint=endpoint)
        endpoint.refresh_from_db()
        return Response(
            SecretSerializer(
                {
                    "id": endpoint.pk,
                    "secret": secret,
                    "previous_secret_valid_until": endpoint.previous_secret_valid_until,
                }
            ).data
        )


class AttemptSerializer(serializers.ModelSerializer):
    delivery_id = serializers.IntegerField(source="delivery.id", read_only=True)
    webhook_id = serializers.CharField(source="delivery.message.webhook_id", read_only=True)
    event_type = serializers.CharField(source="delivery.event_type", read_only=True)
    conversion = serializers.IntegerField(source="delivery.conversion_id", read_only=True)
    delivery_status = serializers.CharField(source="delivery.status", read_only=True)
    status = serializers.IntegerField(
        source="status_code", read_only=True, allow_null=True, help_text="HTTP status, if any"
    )

    class Meta:
        model = WebhookAttempt
        fields = [
            "id",
            "delivery_id",
            "webhook_id",
            "event_type",
            "conversion",
            "attempted_at",
            "status",
            "status_code",
            "succeeded",
            "latency_ms",
            "response_start",
            "error",
            "delivery_status",
        ]
        read_only_fields = fields


class WebhookDeliveryListApi(generics.ListAPIView):
    """The endpoint's delivery log: every attempt, newest first."""

    serializer_class = AttemptSerializer

    def get_queryset(self) -> QuerySet[WebhookAttempt]:
        endpoint = get_object_or_404(selectors.webhook_endpoint_list(), pk=self.kwargs["pk"])
        return selectors.webhook_attempt_list(endpoint_id=endpoint.pk).select_related(
            "delivery__message"
        )


class ResendSerializer(serializers.Serializer):
    delivery_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=10_000,
    )
    since = serializers.DateTimeField(required=False, help_text="Deliveries created from then")
    until = serializers.DateTimeField(required=False, help_text="... and before then")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("name delivery_ids, or a since/until range")
        if attrs.get("since") and attrs.get("until") and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": ["must be after since"]})
        return attrs


class ResendAnswerSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=WebhookResend.Status.choices)
    resent = serializers.IntegerField(
        allow_null=True, help_text="Deliveries made due again (null until a range is done)"
    )
    resend_id = serializers.IntegerField(
        allow_null=True, help_text="A range runs on a worker: poll resends/<resend_id>/"
    )


class WebhookResendApi(APIView):
    """Send deliveries again, each under its own `webhook-id`: by id at once, or a time range
    on a worker (poll `resends/<resend_id>/` until `done`)."""

    permission_model = WebhookEndpoint

    @extend_schema(request=ResendSerializer, responses={202: ResendAnswerSerializer})
    def post(self, request: Request, pk: int) -> Response:
        endpoint = get_object_or_404(selectors.webhook_endpoint_list(), pk=pk)
        serializer = ResendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data.get("delivery_ids"):
            count = webhook_deliveries_resend(endpoint_id=endpoint.pk, **data)
            answer = {"status": WebhookResend.Status.DONE, "resent": count, "resend_id": None}
        else:
            resend = webhook_resend_request(
                endpoint_id=endpoint.pk, since=data.get("since"), until=data.get("until")
            )
            answer = {"status": resend.status, "resent": None, "resend_id": resend.pk}
        return Response(ResendAnswerSerializer(answer).data, status=status.HTTP_202_ACCEPTED)


class ResendJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookResend
        fields = ["id", "status", "since", "until", "resent", "created_at", "finished_at"]
        read_only_fields = fields


class WebhookResendDetailApi(generics.RetrieveAPIView):
    serializer_class = ResendJobSerializer

    def get_queryset(self) -> QuerySet[WebhookResend]:
        return WebhookResend.objects.filter(endpoint_id=self.kwargs["pk"])

    def get_object(self) -> WebhookResend:
        return get_object_or_404(self.get_queryset(), pk=self.kwargs["resend_id"])
