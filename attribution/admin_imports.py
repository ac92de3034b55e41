"""Admin of CSV conversion imports: upload (run on a worker), progress, row errors as CSV."""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import admin
from django.core.files.uploadedfile import UploadedFile
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from attribution.models import ConversionImport, Network
from attribution.selectors import conversion_import_status
from attribution.services.imports import (
    ImportRefused,
    conversion_import_check,
    conversion_import_create,
    conversion_import_preview,
)


class ConversionImportForm(forms.ModelForm):
    file = forms.FileField(
        required=False,
        help_text="CSV, UTF-8: a header row naming postback fields or their aliases "
        "(click_id, conversion_id, payout, status, occurred_at, email, phone, external_id, "
        "offer_id, ...), one conversion a row",
    )
    # A previewed file, carried to the "Import" press so it need not be chosen again.
    previewed = forms.CharField(required=False, widget=forms.HiddenInput)
    previewed_name = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = ConversionImport
        fields = ["network"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        network = cleaned.get("network")
        upload = cleaned.get("file")
        if isinstance(upload, UploadedFile):
            data = upload.read()
            cleaned["file_name"] = upload.name or ""
        elif cleaned.get("previewed"):
            data = str(cleaned["previewed"]).encode()
            cleaned["file_name"] = cleaned.get("previewed_name") or ""
        else:
            raise forms.ValidationError({"file": "Choose a CSV file."})
        if isinstance(network, Network):
            try:
                text, rows = conversion_import_check(network=network, data=data)
            except ImportRefused as error:
                raise forms.ValidationError({"file": str(error)}) from error
            cleaned["data"] = data
            cleaned["text"] = text
            cleaned["rows"] = rows
            if self.data.get("_preview"):
                # Checked and shown, not imported: the admin re-renders the form.
                raise forms.ValidationError("Preview only: nothing imported yet.")
        return cleaned


DETAIL_FIELDS = [
    "network",
    "file_name",
    "current_status",
    "progress",
    "accepted",
    "rejected",
    "columns",
    "row_errors",
    "requested_by",
    "created_at",
    "started_at",
    "finished_at",
]


@admin.register(ConversionImport)
class ConversionImportAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "network",
        "file_name",
        "current_status",
        "progress",
        "accepted",
        "rejected",
        "requested_by",
        "created_at",
    ]
    list_filter = ["status", "network"]
    list_select_related = ["network", "requested_by"]
    show_full_result_count = False
    ordering = ["-id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ConversionImport]:
        imports = super().get_queryset(request)
        match = request.resolver_match
        if match is not None and match.url_name and match.url_name.endswith("changelist"):
            imports = imports.defer("body")  # a file can be megabytes; the list never shows it
        return imports

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ConversionImportForm
        return super().get_form(request, obj, change, **kwargs)

    add_form_template = "admin/attribution/conversionimport/add_form.html"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return ["network", "file", "previewed", "previewed_name"] if obj is None else DETAIL_FIELDS

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context = dict(extra_context or {})
        if request.method == "POST" and "_preview" in request.POST:
            form = ConversionImportForm(request.POST, request.FILES)
            form.is_valid()
            cleaned = getattr(form, "cleaned_data", {})
            if "text" in cleaned:
                preview = conversion_import_preview(
                    network=cleaned["network"], text=cleaned["text"]
                )
                context["import_preview"] = {**preview, "rows_total": cleaned["rows"]}
                data = request.POST.copy()
                data["previewed"] = cleaned["text"]
                data["previewed_name"] = cleaned.get("file_name", "")
                request.POST = data  # type: ignore[assignment]
        return super().add_view(request, form_url, context)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else DETAIL_FIELDS

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        created = conversion_import_create(
            network_slug=form.cleaned_data["network"].slug,
            data=form.cleaned_data["data"],
            file_name=form.cleaned_data.get("file_name", ""),
            requested_by_id=request.user.pk,
        )
        obj.pk = created.pk
        obj.refresh_from_db()
        obj._state.adding = False

    @admin.display(description="status")
    def current_status(self, conversion_import: ConversionImport) -> str:
        return conversion_import_status(conversion_import=conversion_import)

    @admin.display(description="rows done")
    def progress(self, conversion_import: ConversionImport) -> str:
        return f"{conversion_import.rows_done} of {conversion_import.rows}"

    @admin.display(description="columns and first rows")
    def columns(self, conversion_import: ConversionImport) -> SafeString:
        preview = conversion_import_preview(
            network=conversion_import.network, text=conversion_import.body
        )
        head = format_html_join(
            "", "<th>{}<br><small>{}</small></th>", ((n, f) for n, f in preview["columns"])
        )
        rows = format_html_join(
            "",
            "<tr>{}</tr>",
            (
                (format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),)
                for row in preview["rows"]
            ),
        )
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, rows)

    @admin.display(description="row errors")
    def row_errors(self, conversion_import: ConversionImport) -> SafeString | str:
        if not conversion_import.errors:
            return "-"
        url = reverse("admin:attribution_conversionimport_errors", args=[conversion_import.pk])
        shown = format_html_join(
            "",
            "<li>row {}: {}</li>",
            ((error["row"], error["error"]) for error in conversion_import.errors[:20]),
        )
        return format_html('<ul>{}</ul><a href="{}">All errors as CSV</a>', shown, url)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/errors.csv",
                self.admin_site.admin_view(self.errors_csv),
                name="attribution_conversionimport_errors",
            ),
            *super().get_urls(),
        ]

    def errors_csv(self, request: HttpRequest, pk: int) -> HttpResponse:
        conversion_import = get_object_or_404(ConversionImport.objects.defer("body"), pk=pk)
        if not self.has_view_permission(request, conversion_import):
            return HttpResponse(status=403)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="import-{pk}-errors.csv"'
        writer = csv.writer(response)
        writer.writerow(["row", "error"])
        for error in conversion_import.errors:
            writer.writerow([error["row"], error["error"]])
        return response
