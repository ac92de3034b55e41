from django.http import HttpRequest, HttpResponse


def postback_intake(request: HttpRequest, network_slug: str) -> HttpResponse:
    raise NotImplementedError("issue 5")
