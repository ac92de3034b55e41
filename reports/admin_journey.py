"""The admin page of a contact's journey: `/admin/reports/journey/<contact_id>/`.

Read-only, staff only, inside the admin's look. The phone and email are masked
unless the user may see them (`tracking.view_contact_phone`; superusers may).
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from reports.journey import MAX_ID, contact_journey_get
from tracking.masking import mask_email, mask_phone, may_see_personal_data
from tracking.services.merges import contact_survivor_id


def contact_journey_view(request: HttpRequest, contact_id: int) -> HttpResponse:
    if not request.user.has_perm("tracking.view_contact"):
        raise PermissionDenied("You may not view contacts.")
    journey = contact_journey_get(contact_id=contact_id)
    if journey is None:
        survivor = contact_survivor_id(contact_id=contact_id) if 0 < contact_id <= MAX_ID else None
        if survivor is not None:
            # A merged contact's journey is now the survivor's.
            return HttpResponseRedirect(reverse("reports_contact_journey", args=[survivor]))
        raise Http404("No contact with this id.")
    contact = journey.contact
    personal_data_shown = may_see_personal_data(request.user)
    context = {
        **admin.site.each_context(request),
        "title": f"Journey of contact #{contact.pk}",
        "journey": journey,
        "contact": contact,
        "phone": mask_phone(contact.phone, request.user),
        "email": mask_email(contact.email, request.user),
        "personal_data_masked": not personal_data_shown,
        "opts": contact._meta,
    }
    return TemplateResponse(request, "admin/reports/journey.html", context)


def journey_urls() -> list[URLPattern]:
    """URL patterns to mount under `/admin/`: reversed as `reports_contact_journey`."""
    return [
        path(
            "reports/journey/<int:contact_id>/",
            admin.site.admin_view(contact_journey_view),
            name="reports_contact_journey",
        ),
    ]
