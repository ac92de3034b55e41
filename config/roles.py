"""Staff roles: `operator` runs the business, `analyst` reads it.

- operator: every permission on the creditflow apps and the beat schedule (add, change,
  delete, view), and may see contacts' phone numbers and e-mails. Not users or tokens.
- analyst: view-only on every creditflow model, the report pages included; cannot
  change offers, networks (or their tokens), or anything else; sees contacts masked.

Members must also be `is_staff` to reach the admin and the API.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from config.masking import PERSONAL_DATA_PERMISSION

OPERATOR = "operator"
ANALYST = "analyst"
CREDITFLOW_APPS = ("tracking", "attribution", "reports")
OPERATOR_EXTRA_APPS = ("django_celery_beat",)


@dataclass(frozen=True)
class RoleSummary:
    name: str
    permissions: int


def personal_data_permission_ensure() -> Permission:
    """`tracking.view_contact_phone`: declared on `Contact.Meta.permissions`, so migrate
    creates it; fetched here (created only if migrate's post_migrate step has not run)."""
    app_label, codename = PERSONAL_DATA_PERMISSION.split(".")
    content_type = ContentType.objects.get_by_natural_key(app_label, "contact")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename=codename,
        defaults={"name": "Can see contacts' full phone numbers and emails"},
    )
    return permission


def roles_setup() -> list[RoleSummary]:
    """Create or reset both groups to exactly their permissions (safe to run again)."""
    with transaction.atomic():
        personal_data = personal_data_permission_ensure()
        operator_permissions = list(
            Permission.objects.filter(
                content_type__app_label__in=(*CREDITFLOW_APPS, *OPERATOR_EXTRA_APPS)
            )
        )
        analyst_permissions = list(
            Permission.objects.filter(
                content_type__app_label__in=CREDITFLOW_APPS, codename__startswith="view_"
            ).exclude(pk=personal_data.pk)
        )
        summaries = []
        for name, permissions in (
            (OPERATOR, operator_permissions),
            (ANALYST, analyst_permissions),
        ):
            group, _ = Group.objects.get_or_create(name=name)
            group.permissions.set(permissions)
            summaries.append(RoleSummary(name=name, permissions=len(permissions)))
    return summaries
