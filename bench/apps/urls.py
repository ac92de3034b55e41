"""The project's own URLs, plus two bench-only views in front of them."""

from typing import cast

from django.urls import URLPattern, URLResolver, path

from bench.apps.views import bare_redirect, naive_redirect
from config.urls import urlpatterns as project_urlpatterns

urlpatterns: list[URLPattern | URLResolver] = [
    path("bench/bare", bare_redirect),
    path("bench/naive/<str:code>", naive_redirect),
]
urlpatterns += cast(list[URLPattern | URLResolver], project_urlpatterns)
