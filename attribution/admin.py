"""Operators' pages for networks, offers, postbacks and conversions.

Every write goes through a service: creating a network issues its token (shown
once, in a message), saving an offer invalidates the redirect's link cache,
replaying postbacks enqueues them again.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from attribution.models import (
    Conversion,
    ConversionEvent,
    CreditChange,
    Network,
    Offer,
    Postback,
)
from attribution.services.catalog import (
    network_create,
    network_rotate_token,
    network_update,
    offer_save,
)
from attribution.services.recovery import postback_replay


def _admin_link(model_label: str, pk: int | None, text: str) -> SafeString | str:
    if pk is None:
        return "-"
    try:
        url = reverse(f"admin:{model_label}_change", args=[pk])
    except NoReverseMatch:
        return f"{text}"
    return format_html('<a href="{}">{}</a>', url, text)


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "currency", "response_format", "token_hint", "created_at"]
    search_fields = ["slug", "name"]
    show_full_result_count = False
    fields = [
        "slug",
        "name",
        "currency",
        "allowed_ips",
        "parameter_aliases",
        "status_map",
        "response_format",
        "token_hint",
        "previous_token_valid_until",
    ]
    readonly_fields = ["token_hint", "previous_token_valid_until"]
    actions = ["rotate_token"]

    def get_readonly_fields(self, request: HttpRequest, obj: Network | None = None) -> Any:
        # The slug is in every network's postback URL: fixed once created.
        return [*self.readonly_fields, "slug"] if obj else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Network, form: ModelForm, change: bool) -> None:
        data = form.cleaned_data
        editable = {
            name: data[name]
            for name in (
                "name",
                "allowed_ips",
                "currency",
                "parameter_aliases",
                "status_map",
                "response_format",
            )
            if name in data
        }
        if change:
            network_update(network=obj, **editable)
            return
        network, token = network_create(slug=data["slug"], **editable)
        obj.pk = network.pk
        obj.refresh_from_db()
        obj._state.adding = False
        self.message_user(
            request,
            f"Postback token for {network.slug} (shown only now, copy it): {token}",
            messages.WARNING,
        )

    @admin.action(
        description="Rotate postback token (the old one works 7 more days)",
        permissions=["change"],
    )
    def rotate_token(self, request: HttpRequest, queryset: QuerySet[Network]) -> None:
        for network in queryset:
            token = network_rotate_token(network=network)
            self.message_user(
                request,
                f"New postback token for {network.slug} (shown only now, copy it): {token}",
                messages.WARNING,
            )


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "name",
        "network",
        "status",
        "attribution_model",
        "click_window_days",
        "sms_window_days",
        "email_window_days",
        "view_window_hours",
        "payout",
    ]
    list_filter = ["status", "attribution_model", "network"]
    list_select_related = ["network"]
    raw_id_fields = ["network"]
    search_fields = ["name"]
    show_full_result_count = False

    def save_model(self, request: HttpRequest, obj: Offer, form: ModelForm, change: bool) -> None:
        offer_save(offer=obj)


EVENT_FIELDS = ["created_at", "from_status", "to_status", "payout", "revenue_delta", "postback"]


class ConversionEventInline(admin.TabularInline):
    model = ConversionEvent
    fields = tuple(EVENT_FIELDS)
    readonly_fields = EVENT_FIELDS
    raw_id_fields = ["postback"]
    extra = 0
    can_delete = False
    ordering = ["id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CreditChangeInline(admin.TabularInline):
    """Each time the conversion's credit was decided again: before, after, who and why."""

    model = CreditChange
    fields = ("created_at", "credit_before", "credit_after", "changed_by", "why")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="before")
    def credit_before(self, change: CreditChange) -> str:
        return _credit_summary(change.before)

    @admin.display(description="after")
    def credit_after(self, change: CreditChange) -> str:
        return _credit_summary(change.after)


def _credit_summary(credit: dict[str, Any]) -> str:
    if credit.get("message_id") is None:
        return f"unattributed ({credit.get('reason') or 'no candidate'})"
    kind = (credit.get("attribution_type") or "click_through").replace("_", "-")
    return f"message #{credit['message_id']}, click #{credit.get('credited_click_id')} ({kind})"


CONVERSION_FIELDS: list[str] = [
    "network",
    "conversion_id",
    "click_id",
    "status",
    "payout",
    "currency",
    "occurred_at",
    "received_at",
    "processed",
    "processed_at",
    "decision",
]


@admin.register(Conversion)
class ConversionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "network",
        "conversion_id",
        "status",
        "payout",
        "currency",
        "attributed",
        "reason",
        "attribution_model",
        "attribution_type",
        "occurred_at",
    ]
    list_filter = [
        "status",
        "attributed",
        "attribution_type",
        "reason",
        "attribution_model",
        "network",
    ]
    list_select_related = ["network"]
    search_fields = ["=conversion_id", "=click_id"]
    raw_id_fields = [
        "network",
        "credited_click",
        "message",
        "creative",
        "campaign",
        "offer",
        "contact",
    ]
    show_full_result_count = False
    inlines = [ConversionEventInline, CreditChangeInline]
    fields = tuple(CONVERSION_FIELDS)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return CONVERSION_FIELDS

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Attribution decision")
    def decision(self, conversion: Conversion) -> SafeString:
        rows: list[tuple[str, Any]] = [
            ("attributed", "yes" if conversion.attributed else "no"),
            ("reason", conversion.reason or "-"),
            ("model", conversion.attribution_model or "-"),
            ("type", conversion.get_attribution_type_display() or "-"),
            (
                "credited click",
                _admin_link(
                    "tracking_click",
                    conversion.credited_click_id,
                    f"click #{conversion.credited_click_id}",
                ),
            ),
            (
                "message",
                _admin_link(
                    "tracking_message", conversion.message_id, f"message #{conversion.message_id}"
                ),
            ),
            (
                "contact",
                _admin_link(
                    "tracking_contact", conversion.contact_id, f"contact #{conversion.contact_id}"
                ),
            ),
            (
                "offer",
                _admin_link(
                    "attribution_offer", conversion.offer_id, f"offer #{conversion.offer_id}"
                ),
            ),
            ("campaign", conversion.campaign_id or "-"),
            ("creative", conversion.creative_id or "-"),
        ]
        return format_html(
            "<table>{}</table>",
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )


POSTBACK_FIELDS: list[str] = [
    "network",
    "status",
    "reason",
    "received_at",
    "processed_at",
    "attempts",
    "last_enqueued_at",
    "conversion",
    "method",
    "source_ip",
    "content_type",
    "query_string",
    "pretty_body",
    "pretty_headers",
]


@admin.register(Postback)
class PostbackAdmin(admin.ModelAdmin):
    list_display = ["id", "network", "status", "reason", "method", "attempts", "received_at"]
    list_filter = ["status", "network", "method"]
    list_select_related = ["network"]
    raw_id_fields = ["network", "conversion"]
    search_fields = ["=id"]
    show_full_result_count = False
    actions = ["replay"]
    fields = tuple(POSTBACK_FIELDS)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return POSTBACK_FIELDS

    def get_queryset(self, request: HttpRequest) -> QuerySet[Postback]:
        postbacks = super().get_queryset(request)
        match = request.resolver_match
        if match is not None and match.url_name and match.url_name.endswith("changelist"):
            # A raw body can be megabytes; the list never shows it.
            postbacks = postbacks.defer("body", "headers")
        return postbacks

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Body")
    def pretty_body(self, postback: Postback) -> SafeString:
        body = postback.body
        # Not JSON (a form, or junk a network sent): shown exactly as stored.
        with contextlib.suppress(ValueError, RecursionError):
            body = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>", body[:100_000])

    @admin.display(description="Headers (secrets removed)")
    def pretty_headers(self, postback: Postback) -> SafeString:
        return format_html(
            "<pre>{}</pre>", json.dumps(postback.headers, indent=2, ensure_ascii=False)
        )

    @admin.action(
        description="Replay (process again; processed ones: their conversion decided again)",
        permissions=["change"],
    )
    def replay(self, request: HttpRequest, queryset: QuerySet[Postback]) -> None:
        outcome = postback_replay(
            postback_ids=list(queryset.values_list("pk", flat=True)),
            replayed_by_id=request.user.pk,
        )
        self.message_user(
            request,
            f"{outcome.enqueued} postback(s) queued again; "
            f"{outcome.already_processed} already processed: {outcome.redecided} "
            f"conversion(s) decided again, {outcome.credit_changed} now credited elsewhere.",
            messages.SUCCESS,
        )


# Registered with the rest of the app's admin.
from attribution import admin_imports  # noqa: E402, F401
