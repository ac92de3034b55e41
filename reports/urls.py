from django.urls import URLPattern, URLResolver, path

from reports.apis import DailyReportApi
from reports.apis_whatif import (
    ComparisonDetailApi,
    ComparisonListCreateApi,
    ComparisonMovesApi,
    ReattributionDetailApi,
    ReattributionListCreateApi,
)

urlpatterns: list[URLPattern | URLResolver] = [
    path("reports/daily/", DailyReportApi.as_view(), name="reports-daily"),
    path("attribution/compare/", ComparisonListCreateApi.as_view(), name="compare"),
    path("attribution/compare/<int:pk>/", ComparisonDetailApi.as_view(), name="compare-detail"),
    path("attribution/compare/<int:pk>/moves/", ComparisonMovesApi.as_view(), name="compare-moves"),
    path("attribution/reattribute/", ReattributionListCreateApi.as_view(), name="reattribute"),
    path(
        "attribution/reattribute/<int:pk>/",
        ReattributionDetailApi.as_view(),
        name="reattribute-detail",
    ),
]
