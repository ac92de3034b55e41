from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from attribution.views import postback_intake
from config.api_root import ApiRootApi
from config.exceptions import api_not_found
from config.health import healthz
from config.hot_paths import hot_path
from config.metrics import metrics_view
from reports.admin_journey import journey_urls
from tracking.views import redirect

api_patterns: list[URLPattern | URLResolver] = [
    path("", ApiRootApi.as_view(), name="api-root"),
    path("", include("tracking.urls")),
    path("", include("attribution.urls")),
    path("", include("reports.urls")),
    path("", include("webhooks.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
]

urlpatterns = [
    # Before the admin's own catch-all: /admin/reports/journey/<contact_id>/.
    path("admin/", include(journey_urls())),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include(api_patterns)),
    # Any other path under /api/ answers the API's JSON 404, with DEBUG on too (`make run`):
    # Django's handler404 is skipped for its HTML debug page then.
    re_path(r"^api/", api_not_found, name="api-not-found"),
    # hot_path: phones and networks, served without session, login, CSRF or framing.
    hot_path(path("postback/<str:network_slug>/", postback_intake, name="postback")),
    # Last: every other single path segment is a short link code.
    hot_path(path("<str:code>", redirect, name="redirect")),
]

handler404 = "config.exceptions.not_found"
handler400 = "config.exceptions.bad_request"
