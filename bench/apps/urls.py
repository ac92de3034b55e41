"""The project's own URLs, plus two bench-only views in front of them."""

from typing import cast

from django.urls import URLPattern, URLResolver, path

from bench.apps.views import bare_redirect, naive_redirect
from config.hot_paths import hot_path
from config.urls import urlpatterns as project_urlpatterns

# The reference views run through the same middleware as the redirect they are compared with.
urlpatterns: list[URLPattern | URLResolver] = [
    hot_path(path("bench/bare", bare_redirect)),
    hot_path(path("bench/naive/<str:code>", naive_redirect)),
]
urlpatterns += cast(list[URLPattern | URLResolver], project_urlpatterns)
