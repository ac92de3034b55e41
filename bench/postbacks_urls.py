"""The project's own URLs plus a bare view answering the intake's JSON; bench only."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def bare_postback(request: HttpRequest, network_slug: str) -> HttpResponse:
    """The ceiling: Django answering the same JSON as the intake, and nothing else."""
    return JsonResponse({"status": "accepted", "postback_id": 1})


urlpatterns = [
    path("bench/bare-postback/<str:network_slug>/", bare_postback),
    *project_urlpatterns,
]
