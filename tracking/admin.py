"""Admin for contacts, campaigns, creatives, messages, links and clicks.

Built for large tables: foreign keys as raw ids, related rows joined in one
query, no full `COUNT(*)` (see `LargeTablePaginator`), exact-match search on
indexed columns. Messages, links and clicks are written by the API and the
redirect, so here they are read-only; contacts are cleaned like the API cleans them.
"""

from __future__ import annotations

import contextlib
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Max, Min, Model, Q, QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html

from tracking import masking
from tracking.models import (
    Campaign,
    Click,
    Contact,
    ContactConflict,
    ContactMerge,
    Creative,
    Link,
    Message,
)
from tracking.services.campaigns import (
    campaign_create,
    campaign_update,
    creative_create,
    creative_update,
)
from tracking.services.contacts import contact_normalize_email, contact_normalize_phone
from tracking.services.merges import contact_conflict_resolve
from tracking.services.reclassify import clicks_reclassify_request

COUNT_LIMIT = 10_000


def _adopt(obj: Model, saved: Model) -> None:
    """The admin goes on with its own instance (log entry, redirect): make it the saved row."""
    obj.pk = saved.pk
    obj.refresh_from_db()
    obj._state.adding = False


class LargeTablePaginator(Paginator):
    """Counts at most `COUNT_LIMIT` rows of a filtered list, and estimates an unfiltered one
    from PostgreSQL's statistics, so a page of a table of millions stays a fast query."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return len(queryset)
        if not queryset.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            estimate = int(row[0]) if row else -1
            if estimate > COUNT_LIMIT:
                return estimate
        return queryset.values("pk")[: COUNT_LIMIT + 1].count()


class LargeTableAdmin(admin.ModelAdmin):
    paginator = LargeTablePaginator
    show_full_result_count = False
    list_per_page = 50


class ReadOnlyAdmin(LargeTableAdmin):
    """Rows written by the API or the redirect: shown, searched, never edited here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ContactForm(forms.ModelForm):
    # Wider than the stored E.164 form: "+1 (201) 555-0123" is cleaned into "+12015550123".
    phone = forms.CharField(max_length=32, required=False, help_text="With country code")

    class Meta:
        model = Contact
        fields = ["phone", "email", "external_id"]

    def clean_phone(self) -> str | None:
        phone = self.cleaned_data.get("phone")
        return contact_normalize_phone(phone=phone) if phone else None

    def clean_email(self) -> str | None:
        email = self.cleaned_data.get("email")
        return contact_normalize_email(email=email) if email else None

    def clean_external_id(self) -> str | None:
        return (self.cleaned_data.get("external_id") or "").strip() or None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # A user who may not see phones and emails edits a form without them: the
        # contact's stored ones still count.
        if not any(
            cleaned.get(name) if name in self.fields else getattr(self.instance, name)
            for name in ("phone", "email", "external_id")
        ):
            raise ValidationError("Give a phone, an email or an external id.")
        return cleaned


def _masked_columns(request: HttpRequest) -> tuple[Any, Any]:
    """The phone and email columns for this request's user, made once per request (the
    admin matches read-only fields by identity across `get_fields`/`get_readonly_fields`)."""
    made: tuple[Any, Any] | None = getattr(request, "_contact_masked_columns", None)
    if made is None:
        made = _masked_columns_for(request.user)
        request._contact_masked_columns = made  # type: ignore[attr-defined]
    return made


def _masked_columns_for(user: Any) -> tuple[Any, Any]:

    @admin.display(description="phone", ordering="phone")
    def phone(contact: Contact) -> str:
        return masking.mask_phone(contact.phone, user)

    @admin.display(description="email", ordering="email")
    def email(contact: Contact) -> str:
        return masking.mask_email(contact.email, user)

    return phone, email


@admin.register(Contact)
class ContactAdmin(LargeTableAdmin):
    form = ContactForm
    list_display = ["id", "phone", "email", "external_id", "created_at", "journey"]
    search_fields = ["=phone", "=email", "=external_id"]
    search_help_text = "Exact phone (with country code), email or external id"
    readonly_fields = ["created_at", "journey"]
    ordering = ["-id"]

    # Phones and emails are shown in full only to users with `tracking.view_contact_phone`
    # (tracking.masking). The columns are made per request, bound to its user: the admin
    # instance is shared by every thread, so the request is never stored on it.

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        phone, email = _masked_columns(request)
        return ["id", phone, email, "external_id", "created_at", "journey"]

    def get_fields(self, request: HttpRequest, obj: Contact | None = None) -> list[Any]:
        if obj is None or masking.may_see_personal_data(request.user):
            return list(super().get_fields(request, obj))
        phone, email = _masked_columns(request)
        return [phone, email, "external_id", "created_at", "journey"]

    def get_readonly_fields(self, request: HttpRequest, obj: Contact | None = None) -> list[Any]:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is None or masking.may_see_personal_data(request.user):
            return readonly
        # "phone" and "email" listed too so the form leaves them out (never edited blind).
        return [*readonly, "phone", "email", *_masked_columns(request)]

    def get_form(
        self, request: HttpRequest, obj: Contact | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is not None and not masking.may_see_personal_data(request.user):
            # The masked columns are not form fields; the phone and email are kept as stored.
            kwargs["fields"] = ["external_id"]
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description="journey")
    def journey(self, contact: Contact) -> str:
        if contact.pk is None:
            return ""
        try:
            url = reverse("reports_contact_journey", args=[contact.pk])
        except NoReverseMatch:
            return ""
        return format_html('<a href="{}">journey</a>', url)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Contact], search_term: str
    ) -> tuple[QuerySet[Contact], bool]:
        # Operators paste phones as they see them: "+1 (201) 555-0123" finds +12015550123.
        term = search_term.strip()
        if term.startswith("+") or term.replace(" ", "").replace("-", "").isdigit():
            with contextlib.suppress(ValidationError):  # not a phone after all: search as typed
                term = contact_normalize_phone(phone=term if term.startswith("+") else f"+{term}")
        elif "@" in term:
            term = term.lower()
        found, may_have_duplicates = super().get_search_results(request, queryset, term)
        if not term:
            return found, may_have_duplicates
        # An identifier a forced merge left as an alias, or the id of a merged contact,
        # finds the contact that holds it now.
        holders = queryset.filter(
            Q(aliases__value=term)
            | Q(
                pk__in=ContactMerge.objects.filter(
                    merged_contact_id=int(term)
                    if term.isascii() and term.isdigit() and len(term) < 19
                    else -1
                ).values("survivor_id")
            )
        )
        return found | holders, True


def _identifiers_masked(identifiers: dict[str, Any], user: Any) -> str:
    shown = {
        "phone": masking.mask_phone(identifiers.get("phone"), user),
        "email": masking.mask_email(identifiers.get("email"), user),
        "external_id": identifiers.get("external_id") or "",
    }
    return ", ".join(f"{kind} {value}" for kind, value in shown.items() if value)


@admin.register(ContactConflict)
class ContactConflictAdmin(LargeTableAdmin):
    """Identifiers that named people who cannot be one. Resolve: merge, or keep apart."""

    list_display = [
        "id",
        "status",
        "contact",
        "other_contact_ids",
        "kinds",
        "channel",
        "source",
        "message",
        "created_at",
    ]
    list_filter = ["status", "source", "channel"]
    list_select_related = ["contact"]
    raw_id_fields = ["contact", "message", "resolved_by"]
    search_fields = ["=contact__id"]
    ordering = ["-id"]
    actions = ["merge_contacts", "keep_apart"]
    exclude = ["identifiers"]
    readonly_fields = ["identifiers_named"]

    @admin.display(description="identifiers named")
    def identifiers_named(self, conflict: ContactConflict) -> str:
        return _identifiers_masked(conflict.identifiers, None)

    def _resolve(self, request: HttpRequest, queryset: QuerySet[ContactConflict], how: str) -> None:
        done = 0
        for conflict_id in queryset.values_list("pk", flat=True):
            conflict = contact_conflict_resolve(
                conflict_id=conflict_id, resolution=how, resolved_by_id=request.user.pk
            )
            done += conflict.status == how
        self.message_user(request, f"{done} conflict(s) {how.replace('_', ' ')}.", messages.INFO)

    @admin.action(
        description="Merge: they are one person (the oldest contact survives)",
        permissions=["change"],
    )
    def merge_contacts(self, request: HttpRequest, queryset: QuerySet[ContactConflict]) -> None:
        self._resolve(request, queryset, ContactConflict.Status.MERGED)

    @admin.action(description="Keep apart: they are different people", permissions=["change"])
    def keep_apart(self, request: HttpRequest, queryset: QuerySet[ContactConflict]) -> None:
        self._resolve(request, queryset, ContactConflict.Status.KEPT_APART)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[Any]:
        # Changed only through the actions (a service), never through the form.
        fields = [field.name for field in ContactConflict._meta.fields]
        return [name for name in fields if name != "identifiers"] + ["identifiers_named"]


@admin.register(ContactMerge)
class ContactMergeAdmin(ReadOnlyAdmin):
    """Who merged which contacts into which, when, and from which request."""

    list_display = [
        "id",
        "survivor",
        "merged_contact_id",
        "source",
        "requested_by",
        "request_id",
        "moved",
        "created_at",
    ]
    list_filter = ["source"]
    list_select_related = ["survivor", "requested_by"]
    raw_id_fields = ["survivor", "requested_by"]
    search_fields = ["=survivor__id", "=merged_contact_id", "=request_id"]
    ordering = ["-id"]
    exclude = ["identifiers"]

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(LargeTableAdmin):
    list_display = ["id", "slug", "name", "created_at"]
    search_fields = ["slug", "name"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]
    ordering = ["-id"]

    def save_model(
        self, request: HttpRequest, obj: Campaign, form: forms.ModelForm, change: bool
    ) -> None:
        values = {name: form.cleaned_data[name] for name in ("slug", "name")}
        if change:
            campaign_update(campaign=obj, **values)
        else:
            _adopt(obj, campaign_create(**values))


@admin.register(Creative)
class CreativeAdmin(LargeTableAdmin):
    list_display = ["id", "slug", "name", "campaign", "created_at"]
    list_select_related = ["campaign"]
    search_fields = ["slug", "name", "campaign__slug"]
    autocomplete_fields = ["campaign"]
    readonly_fields = ["created_at"]
    ordering = ["-id"]

    def save_model(
        self, request: HttpRequest, obj: Creative, form: forms.ModelForm, change: bool
    ) -> None:
        values = {name: form.cleaned_data[name] for name in ("campaign", "slug", "name", "body")}
        if change:
            creative_update(creative=obj, **values)
        else:
            _adopt(obj, creative_create(**values))


class LinkInline(admin.TabularInline):
    model = Link
    fields = ["code", "created_at"]
    readonly_fields = ["code", "created_at"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "sent_at",
        "channel",
        "campaign",
        "creative_slug",
        "offer",
        "contact_id",
        "external_id",
    ]
    list_select_related = ["campaign", "creative", "offer"]
    list_filter = ["channel"]
    search_fields = ["=external_id", "=campaign__slug", "=links__code"]
    search_help_text = "Exact external id, campaign slug or link code"
    raw_id_fields = ["contact", "campaign", "creative", "offer"]
    inlines = [LinkInline]
    ordering = ["-id"]

    @admin.display(description="creative", ordering="creative__slug")
    def creative_slug(self, message: Message) -> str:
        return message.creative.slug


@admin.register(Link)
class LinkAdmin(ReadOnlyAdmin):
    list_display = ["code", "message_id", "campaign", "channel", "created_at"]
    list_select_related = ["message__campaign"]
    search_fields = ["=code", "=message__external_id"]
    search_help_text = "Exact link code or message external id"
    raw_id_fields = ["message"]
    ordering = ["-id"]

    @admin.display(description="campaign")
    def campaign(self, link: Link) -> str:
        return link.message.campaign.slug

    @admin.display(description="channel")
    def channel(self, link: Link) -> str:
        return link.message.channel


@admin.register(Click)
class ClickAdmin(ReadOnlyAdmin):
    list_display = [
        "click_id",
        "occurred_at",
        "link_code",
        "channel",
        "is_bot",
        "is_preview",
        "is_duplicate",
        "flag_reason",
        "is_imported",
        "ip",
    ]
    list_select_related = ["link"]
    list_filter = ["channel", "is_bot", "is_preview", "is_duplicate", "is_imported"]
    search_fields = ["=click_id", "=link__code"]
    search_help_text = "Exact click id or link code"
    raw_id_fields = ["link", "message", "contact", "offer"]
    # Newest recorded first: the primary key (id, occurred_at) serves this on every
    # partition; occurred_at alone has only a BRIN index, which cannot give an order.
    ordering = ["-id"]
    actions = ["reclassify_days"]

    @admin.display(description="link", ordering="link__code")
    def link_code(self, click: Click) -> str:
        return click.link.code

    def has_reclassify_permission(self, request: HttpRequest) -> bool:
        # Rows stay read-only here; re-classifying is a write, for who may change clicks.
        return request.user.has_perm("tracking.change_click")

    @admin.action(
        description="Classify the days of the selected clicks again (on a worker)",
        permissions=["reclassify"],
    )
    def reclassify_days(self, request: HttpRequest, queryset: QuerySet[Click]) -> None:
        bounds = queryset.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
        if bounds["first"] is None:
            return
        zone = ZoneInfo(settings.REPORTS_TIME_ZONE)
        start = timezone.localtime(bounds["first"], zone).date()
        end = timezone.localtime(bounds["last"], zone).date()
        clicks_reclassify_request(start=start, end=end, requested_by_id=request.user.pk)
        self.message_user(
            request,
            f"Clicks of {start} to {end} will be classified again; conversions and reports follow.",
            messages.SUCCESS,
        )
