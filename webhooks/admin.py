"""Operators' pages for webhook endpoints, their deliveries and the attempt log.

Writes go through services: creating an endpoint or rotating its secret shows the
secret once (a message); resending makes deliveries due again for the worker.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from webhooks.models import (
    ALL_EVENTS,
    EventType,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookResend,
)
from webhooks.services.endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
    webhook_url_validate,
)
from webhooks.services.resend import webhook_deliveries_resend

EVENT_CHOICES = [(ALL_EVENTS, "All events"), *EventType.choices]


class EndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=2000, assume_scheme="https")
    events = forms.MultipleChoiceField(choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events", "description", "enabled"]

    def clean_url(self) -> str:
        return webhook_url_validate(url=self.cleaned_data["url"])

    def clean_events(self) -> list[str]:
        events = list(self.cleaned_data["events"])
        if not events:
            raise ValidationError("choose at least one")
        return events


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ["id", "url", "events", "enabled", "disabled_reason", "failing_since"]
    list_filter = ["enabled"]
    search_fields = ["url", "description"]
    show_full_result_count = False
    readonly_fields = [
        "disabled_reason",
        "failing_since",
        "previous_secret_valid_until",
        "created_at",
    ]
    actions = ["rotate_secret", "enable", "disable"]

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        if change:
            webhook_endpoint_update(
                endpoint=WebhookEndpoint.objects.get(pk=obj.pk),
                url=data["url"],
                events=data["events"],
                description=data.get("description", ""),
                enabled=data.get("enabled", True),
            )
            return
        endpoint, secret = webhook_endpoint_create(
            url=data["url"], events=data["events"], description=data.get("description", "")
        )
        if not data.get("enabled", True):
            webhook_endpoint_update(endpoint=endpoint, enabled=False)
        obj.pk = endpoint.pk
        obj.refresh_from_db()
        obj._state.adding = False
        self.message_user(
            request,
            f"Signing secret for {endpoint.url} (shown only now, copy it): {secret}",
            messages.WARNING,
        )

    @admin.action(
        description="Rotate signing secret (the old one signs too for a day)",
        permissions=["change"],
    )
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            secret = webhook_endpoint_rotate_secret(endpoint=endpoint)
            self.message_user(
                request,
                f"New signing secret for {endpoint.url} (shown only now, copy it): {secret}",
                messages.WARNING,
            )

    @admin.action(description="Enable (pending deliveries go out again)", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            webhook_endpoint_update(endpoint=endpoint, enabled=True)

    @admin.action(description="Disable", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[WebhookEndpoint]) -> None:
        for endpoint in queryset:
            webhook_endpoint_update(endpoint=endpoint, enabled=False)


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ["attempted_at", "status_code", "succeeded", "latency_ms", "response_start", "error"]
    readonly_fields = ["attempted_at", "status_code", "succeeded", "latency_ms"]
    readonly_fields += ["response_start", "error"]
    extra = 0
    can_delete = False
    ordering = ["-attempted_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Filter by endpoint and date, select (all), and resend: a range is one UPDATE."""

    list_display = [
        "id",
        "endpoint",
        "event_type",
        "conversion_id",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "event_type", "endpoint"]
    list_select_related = ["endpoint"]
    raw_id_fields = ["endpoint", "message"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [
        "endpoint",
        "message",
        "conversion_id",
        "sequence",
        "event_type",
        "status",
        "attempts",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
    ]
    inlines = [AttemptInline]
    actions = ["resend"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(
        description="Resend (same webhook-id, a fresh retry schedule)",
        permissions=["change"],
    )
    def resend(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        count = 0
        for endpoint_id in set(queryset.values_list("endpoint_id", flat=True)):
            count += webhook_deliveries_resend(
                endpoint_id=endpoint_id,
                delivery_ids=list(
                    queryset.filter(endpoint_id=endpoint_id).values_list("pk", flat=True)
                ),
            )
        self.message_user(request, f"{count} deliveries will be sent again.", messages.SUCCESS)


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(admin.ModelAdmin):
    """The delivery log: every attempt's time, answer, latency and the start of the body."""

    list_display = [
        "attempted_at",
        "endpoint",
        "delivery",
        "status_code",
        "succeeded",
        "latency_ms",
        "response_start",
        "error",
    ]
    list_filter = ["succeeded", "endpoint"]
    list_select_related = ["endpoint", "delivery"]
    raw_id_fields = ["endpoint", "delivery"]
    date_hierarchy = "attempted_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookResend)
class WebhookResendAdmin(admin.ModelAdmin):
    """Range resends requested through the API, and how each one went (run on a worker)."""

    list_display = ["id", "endpoint", "since", "until", "status", "resent", "created_at"]
    list_filter = ["status"]
    list_select_related = ["endpoint"]
    raw_id_fields = ["endpoint"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
