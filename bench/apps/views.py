"""Reference points for the redirect benchmark; never routed in the real project."""

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import timezone

from tracking.models import Click, Link
from tracking.services.clicks import click_id_generate


def bare_redirect(request: HttpRequest) -> HttpResponse:
    """The ceiling: Django answering a 302 and nothing else."""
    return HttpResponseRedirect("https://offer.example.com/land")


def naive_redirect(request: HttpRequest, code: str) -> HttpResponse:
    """What most self-hosted shorteners do: look the link up and insert the click, per request."""
    link = Link.objects.select_related("message__offer").filter(code=code).first()
    if link is None:
        raise Http404
    message = link.message
    click = Click.objects.create(
        click_id=click_id_generate(),
        occurred_at=timezone.now(),
        link=link,
        message=message,
        contact_id=message.contact_id,
        offer_id=message.offer_id,
        channel=message.channel,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
        ip=request.META.get("REMOTE_ADDR") or None,
        method=request.method or "GET",
    )
    destination = message.offer.destination_url.replace("{click_id}", click.click_id)
    return HttpResponseRedirect(destination)
