"""creditflow's admin site: its name, the dashboard as home page, and the report pages.

The report pages are the site's own URLs (`admin:reports_daily`, `admin:reports_daily_csv`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, path, reverse

from reports.admin_views import daily_report_csv_view, daily_report_view
from reports.dashboard import FIGURES, dashboard_get
from reports.services import rollup_today

FIGURE_LABELS = {
    "sends": "Sends",
    "human_clicks": "Clicks (human)",
    "bot_clicks": "Bot clicks",
    "preview_clicks": "Preview clicks",
    "conversions": "Conversions",
    "revenue": "Revenue",
}


def _shown(value: int | Decimal) -> str:
    return f"{value:,.2f}" if isinstance(value, Decimal) else f"{value:,}"


class CreditflowAdminSite(admin.AdminSite):
    site_header = "creditflow"
    site_title = "creditflow admin"
    index_title = "Dashboard"
    index_template = "admin/creditflow_dashboard.html"

    def get_urls(self) -> list[URLPattern | URLResolver]:
        return [
            path("reports/daily/", self.admin_view(daily_report_view), name="reports_daily"),
            path(
                "reports/daily/csv/",
                self.admin_view(daily_report_csv_view),
                name="reports_daily_csv",
            ),
            *super().get_urls(),
        ]

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        dashboard = dashboard_get(day=rollup_today())
        rows = []
        for name in FIGURES:
            today = getattr(dashboard.today, name)
            last_week = getattr(dashboard.last_week, name)
            change = None if not last_week else round((today - last_week) * 100 / last_week)
            rows.append(
                {
                    "name": name,
                    "label": FIGURE_LABELS[name],
                    "today": _shown(today),
                    "last_week": _shown(last_week),
                    "change": change,
                }
            )
        report = reverse("admin:reports_daily", current_app=self.name)
        context = {
            "dashboard": dashboard,
            "dashboard_rows": rows,
            "report_links": [
                (f"{label} report", f"{report}?dimension={dimension}")
                for dimension, label in (
                    ("campaign", "Campaigns"),
                    ("creative", "Creatives"),
                    ("offer", "Offers"),
                    ("network", "Networks"),
                )
            ],
            **(extra_context or {}),
        }
        return super().index(request, extra_context=context)
