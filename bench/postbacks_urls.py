"""The project's own URLs plus two reference views for the intake; bench only."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from attribution.models import Network, Postback
from attribution.services.intake import postback_insert
from config.hot_paths import hot_path
from config.urls import urlpatterns as project_urlpatterns


@csrf_exempt
def bare_postback(request: HttpRequest, network_slug: str) -> HttpResponse:
    """The ceiling: Django answering the same JSON as the intake, and nothing else."""
    return JsonResponse({"status": "accepted", "postback_id": 1})


_network_ids: dict[str, int] = {}


@csrf_exempt
def commit_only_postback(request: HttpRequest, network_slug: str) -> HttpResponse:
    """What the contract alone costs: commit one raw row the way the intake does, then
    answer. No token, no parsing, no Redis."""
    network_id = _network_ids.get(network_slug)
    if network_id is None:
        network_id = _network_ids[network_slug] = Network.objects.get(slug=network_slug).pk
    postback_id = postback_insert(
        network_id=network_id,
        received_at=timezone.now(),
        method="GET",
        query_string=str(request.META.get("QUERY_STRING", "")),
        body="",
        content_type="",
        headers={},
        source_ip=None,
        status=Postback.Status.RECEIVED,
        reason="",
    )
    return JsonResponse({"status": "accepted", "postback_id": postback_id})


# The reference views run through the same middleware as the intake they are compared with.
urlpatterns = [
    hot_path(path("bench/bare-postback/<str:network_slug>/", bare_postback)),
    hot_path(path("bench/commit-only-postback/<str:network_slug>/", commit_only_postback)),
    *project_urlpatterns,
]
