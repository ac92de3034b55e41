from django.urls import URLPattern, URLResolver, path

from reports.apis import DailyReportApi

urlpatterns: list[URLPattern | URLResolver] = [
    path("reports/daily/", DailyReportApi.as_view(), name="reports-daily"),
]
