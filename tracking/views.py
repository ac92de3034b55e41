from django.http import HttpRequest, HttpResponse


def redirect(request: HttpRequest, code: str) -> HttpResponse:
    raise NotImplementedError("issue 4")
