"""What if in the admin: comparisons (a form, then the table, a chart and CSV) and
re-attributions (a form, then progress). Both run on workers; the pages only ask and show.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from attribution.models import VIEW_WINDOW_HOURS_MAX, AttributionModel, Offer
from reports.models import Comparison, Dimension, JobStatus, Reattribution
from reports.selectors import MAX_RANGE_DAYS
from reports.whatif import (
    WhatIfInputError,
    comparison_create,
    comparison_moves,
    reattribution_create,
)

SLOTS = 4
# The biggest shifts first; the CSV and the API have every row.
TABLE_ROWS = 500
CHART_KEYS = 15
CHART_WIDTH = 760
CHART_LABEL_WIDTH = 220
CHART_ROW_HEIGHT = 14


class ComparisonForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    dimension = forms.ChoiceField(choices=Dimension.choices, initial=Dimension.CAMPAIGN)
    offer = forms.ModelChoiceField(
        queryset=Offer.objects.order_by("name"), required=False, empty_label="every offer"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        defaults = ["first_click", "last_click", "cooperative", ""]
        for slot in range(1, SLOTS + 1):
            required = slot <= 2
            self.fields[f"name_{slot}"] = forms.CharField(
                max_length=40,
                required=required,
                initial=defaults[slot - 1].replace("_click", ""),
                label=f"Configuration {slot}: name",
            )
            self.fields[f"attribution_model_{slot}"] = forms.ChoiceField(
                choices=[("", "---"), *AttributionModel.choices],
                required=required,
                initial=defaults[slot - 1],
                label="model",
            )
            for name, top in (
                ("click_window_days", 90),
                ("sms_window_days", 90),
                ("email_window_days", 90),
                ("view_window_hours", VIEW_WINDOW_HOURS_MAX),
            ):
                self.fields[f"{name}_{slot}"] = forms.IntegerField(
                    min_value=0 if name == "view_window_hours" else 1,
                    max_value=top,
                    required=False,
                    label=name.replace("_", " "),
                    help_text="empty: the offer's own",
                )

    def configurations(self) -> list[dict[str, Any]]:
        found = []
        for slot in range(1, SLOTS + 1):
            name = self.cleaned_data.get(f"name_{slot}")
            model = self.cleaned_data.get(f"attribution_model_{slot}")
            if not name or not model:
                continue
            found.append(
                {"name": name, "attribution_model": model}
                | {
                    setting: self.cleaned_data.get(f"{setting}_{slot}")
                    for setting in (
                        "click_window_days",
                        "sms_window_days",
                        "email_window_days",
                        "view_window_hours",
                    )
                }
            )
        return found

    def slots(self) -> list[list[forms.BoundField]]:
        names = (
            "name",
            "attribution_model",
            "click_window_days",
            "sms_window_days",
            "email_window_days",
            "view_window_hours",
        )
        return [[self[f"{name}_{slot}"] for name in names] for slot in range(1, SLOTS + 1)]


@dataclass(frozen=True)
class ShiftBar:
    label: str
    name: str
    x: float
    y: float
    width: float
    positive: bool
    value: str


def shift_chart(comparison: Comparison) -> dict[str, Any]:
    """Horizontal bars: each key's revenue under every other configuration minus the first."""
    names = [str(c["name"]) for c in comparison.configurations]
    rows = comparison.rows[:CHART_KEYS]
    changes = [
        Decimal(row[name]["revenue_change"]) for row in rows for name in names[1:] if name in row
    ]
    largest = max((abs(change) for change in changes), default=Decimal(0)) or Decimal(1)
    half = (CHART_WIDTH - CHART_LABEL_WIDTH) / 2
    middle = CHART_LABEL_WIDTH + half
    bars: list[ShiftBar] = []
    labels: list[tuple[float, str]] = []
    y = 4.0
    for row in rows:
        labels.append((y + CHART_ROW_HEIGHT * (len(names) - 1) / 2 + 4, str(row["name"])[:34]))
        for name in names[1:]:
            change = Decimal(row[name]["revenue_change"])
            width = float(abs(change) / largest) * (half - 4)
            bars.append(
                ShiftBar(
                    label=str(row["name"]),
                    name=name,
                    x=middle if change >= 0 else middle - width,
                    y=y,
                    width=max(width, 0.5),
                    positive=change >= 0,
                    value=f"{change:+.2f}",
                )
            )
            y += CHART_ROW_HEIGHT
        y += 6
    return {
        "width": CHART_WIDTH,
        "height": int(y) + 4,
        "middle": middle,
        "bars": bars,
        "labels": labels,
        "label_x": CHART_LABEL_WIDTH - 8,
        "bar_height": CHART_ROW_HEIGHT - 3,
    }


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    """Adding is the comparison form; a comparison's page is its result."""

    list_display = ("id", "__str__", "offer", "status", "progress", "moved", "created_at")
    list_filter = ("status", "dimension")
    list_select_related = ("offer",)
    show_full_result_count = False

    @admin.display(description="progress")
    def progress(self, comparison: Comparison) -> str:
        return format_html(
            '<progress value="{}" max="{}"></progress> {}/{}',
            comparison.conversions_done,
            comparison.conversions_total or 1,
            comparison.conversions_done,
            comparison.conversions_total,
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<int:pk>/csv/",
                self.admin_site.admin_view(self.csv_view),
                name="reports_comparison_csv",
            )
        ]
        return own + super().get_urls()

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise Http404
        # Opened from the daily report: its days and dimension come along.
        form = ComparisonForm(request.POST or None, initial=request.GET.dict())
        error = ""
        if request.method == "POST" and form.is_valid():
            offer = form.cleaned_data["offer"]
            try:
                comparison = comparison_create(
                    start=form.cleaned_data["start"],
                    end=form.cleaned_data["end"],
                    dimension=form.cleaned_data["dimension"],
                    offer_id=offer.pk if offer is not None else None,
                    configurations=form.configurations(),
                    requested_by_id=request.user.pk,
                )
            except WhatIfInputError as problem:
                error = str(problem)
            else:
                self.message_user(
                    request, "Comparison queued: it runs on a worker.", messages.SUCCESS
                )
                return HttpResponseRedirect(
                    reverse("admin:reports_comparison_change", args=[comparison.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Compare attribution models",
            "opts": self.model._meta,
            "form": form,
            "error": error,
        }
        return TemplateResponse(request, "admin/reports/comparison_form.html", context)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        comparison = self.get_object(request, object_id)
        if comparison is None or not self.has_view_permission(request, comparison):
            raise Http404
        key = request.GET.get("key") or ""
        digits = key.removeprefix("-")
        moves = comparison_moves(
            comparison=comparison,
            key=int(key) if digits.isascii() and digits.isdigit() and len(digits) < 19 else None,
        )
        page = Paginator(moves, 50).get_page(request.GET.get("page"))
        names = [str(c["name"]) for c in comparison.configurations]
        context = {
            **self.admin_site.each_context(request),
            "title": str(comparison),
            "opts": self.model._meta,
            "comparison": comparison,
            "names": names,
            "running": comparison.status in (JobStatus.QUEUED, JobStatus.RUNNING),
            "chart": shift_chart(comparison) if comparison.rows else None,
            "rows": [
                {"key": row["key"], "name": row["name"], "cells": [row[name] for name in names]}
                for row in comparison.rows[:TABLE_ROWS]
            ],
            "rows_left_out": max(0, len(comparison.rows) - TABLE_ROWS),
            "unattributed": [comparison.unattributed.get(name) for name in names]
            if comparison.unattributed
            else None,
            "moves": page,
            "key": key or "",
            "csv_url": reverse("admin:reports_comparison_csv", args=[comparison.pk]),
        }
        return TemplateResponse(request, "admin/reports/comparison.html", context)

    def csv_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        comparison = Comparison.objects.filter(pk=pk).first()
        if comparison is None:
            raise Http404
        names = [str(c["name"]) for c in comparison.configurations]
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="comparison-{pk}.csv"'
        writer = csv.writer(response)
        header = [comparison.dimension, "name"]
        for name in names:
            header += [f"{name} conversions", f"{name} revenue", f"{name} revenue change"]
        writer.writerow(header)
        for row in comparison.rows:
            line = [row["key"], _csv_safe(str(row["name"]))]
            for name in names:
                cell = row[name]
                line += [cell["conversions"], cell["revenue"], cell["revenue_change"]]
            writer.writerow(line)
        return response


def _csv_safe(text: str) -> str:
    # A name an operator typed must not run as a formula in a spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


class ReattributionForm(forms.ModelForm):
    class Meta:
        model = Reattribution
        fields = ("offer", "start", "end")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The start is after the end.")
            if (end - start).days + 1 > MAX_RANGE_DAYS:
                raise forms.ValidationError(f"Choose at most {MAX_RANGE_DAYS} days.")
        return cleaned


@admin.register(Reattribution)
class ReattributionAdmin(admin.ModelAdmin):
    """Adding is the form (offer and days); it runs on a worker under the offer's settings."""

    form = ReattributionForm
    list_display = (
        "id",
        "offer",
        "start",
        "end",
        "status",
        "progress",
        "changed",
        "requested_by",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("offer", "requested_by")
    raw_id_fields = ("offer",)
    show_full_result_count = False
    readonly_fields = (
        "status",
        "settings_applied",
        "conversions_total",
        "conversions_done",
        "changed",
        "days_recomputed",
        "error",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
    )

    @admin.display(description="progress")
    def progress(self, job: Reattribution) -> str:
        return format_html(
            '<progress value="{}" max="{}"></progress> {}/{}',
            job.conversions_done,
            job.conversions_total or 1,
            job.conversions_done,
            job.conversions_total,
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("offer", "start", "end")
        return ("offer", "start", "end", *self.readonly_fields)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("offer", "start", "end", *self.readonly_fields) if obj is not None else ()

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Reattribution, form: Any, change: bool) -> None:
        job = reattribution_create(
            start=obj.start, end=obj.end, offer_id=obj.offer_id, requested_by_id=request.user.pk
        )
        obj.pk = job.pk
        obj.status = job.status
