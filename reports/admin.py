"""Reports in the admin: the daily report page, rollup rows, and range recompute jobs.

The report page lives at `/admin/reports/daily/` (URL name `admin:reports_daily`, one of
the site's own URLs: see `reports/admin_site.py`). Other admin pages link to one key's rows
with `reports.admin_views.report_url(dimension=..., key=...)`, i.e.
`/admin/reports/daily/?dimension=offer&key=<id>`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from reports import admin_whatif  # noqa: F401  (registers the what-if pages)
from reports.models import DailyReport, DailyRollup, RollupJob, RollupWatermark
from reports.selectors import MAX_RANGE_DAYS
from reports.services import rollup_job_create


@admin.register(DailyReport)
class DailyReportAdmin(admin.ModelAdmin):
    """The admin index's entry for the report page."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:reports_daily"))


@admin.action(
    description="Recompute the days of the selected rows (on a worker)",
    permissions=["recompute"],
)
def recompute_selected_days(
    modeladmin: DailyRollupAdmin, request: HttpRequest, queryset: QuerySet[DailyRollup]
) -> None:
    bounds = queryset.aggregate(start=Min("day"), end=Max("day"))
    if bounds["start"] is None:
        return
    if (bounds["end"] - bounds["start"]).days + 1 > MAX_RANGE_DAYS:
        modeladmin.message_user(
            request, f"Choose at most {MAX_RANGE_DAYS} days.", level=messages.ERROR
        )
        return
    job = rollup_job_create(
        start=bounds["start"], end=bounds["end"], requested_by_id=request.user.pk
    )
    modeladmin.message_user(request, f"{job} queued.", level=messages.SUCCESS)


@admin.register(DailyRollup)
class DailyRollupAdmin(admin.ModelAdmin):
    list_display = (
        "day",
        "dimension",
        "key",
        "sends",
        "clicks",
        "unique_clicks",
        "bot_clicks",
        "preview_clicks",
        "conversions",
        "revenue",
        "rejected_conversions",
        "reversed_conversions",
        "reversed_revenue",
        "computed_at",
    )
    list_filter = ("dimension",)
    search_fields = ("=key",)
    ordering = ("-day", "dimension", "key")
    show_full_result_count = False
    actions = [recompute_selected_days]

    def has_recompute_permission(self, request: HttpRequest) -> bool:
        # Rollup rows are never edited by hand; recomputing queues a job.
        return bool(request.user.has_perm("reports.add_rollupjob"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RollupJobForm(forms.ModelForm):
    class Meta:
        model = RollupJob
        fields = ("start", "end")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                raise forms.ValidationError("The start is after the end.")
            if end - start >= timedelta(days=MAX_RANGE_DAYS):
                raise forms.ValidationError(f"Choose at most {MAX_RANGE_DAYS} days.")
        return cleaned


@admin.register(RollupJob)
class RollupJobAdmin(admin.ModelAdmin):
    """Adding a job is the date-range form: it is saved, then run on a worker."""

    form = RollupJobForm
    list_display = ("id", "start", "end", "status", "progress", "requested_by", "created_at")
    list_filter = ("status",)
    readonly_fields = (
        "status",
        "progress",
        "days_total",
        "days_done",
        "error",
        "requested_by",
        "created_at",
        "started_at",
        "finished_at",
    )
    list_select_related = ("requested_by",)
    show_full_result_count = False

    @admin.display(description="progress")
    def progress(self, job: RollupJob) -> str:
        return format_html(
            '<progress value="{}" max="{}"></progress> {}/{} days',
            job.days_done,
            job.days_total or 1,
            job.days_done,
            job.days_total,
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return ("start", "end", *self.readonly_fields)
        return ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("start", "end")
        return ("start", "end", *self.readonly_fields)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: RollupJob, form: Any, change: bool) -> None:
        job = rollup_job_create(start=obj.start, end=obj.end, requested_by_id=request.user.pk)
        obj.pk = job.pk
        obj.days_total = job.days_total
        obj.status = job.status


@admin.register(RollupWatermark)
class RollupWatermarkAdmin(admin.ModelAdmin):
    list_display = ("name", "scanned_until", "days_recomputed", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
