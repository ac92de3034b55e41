"""Staff roles: `operator` runs the business, `analyst` reads it.

- operator: every permission on the creditflow apps and the beat schedule (add, change,
  delete, view), and may see contacts' phone numbers and e-mails. Not users or tokens.
- analyst: view-only on every creditflow model, the report pages included; cannot
  change offers, networks (or their tokens), or anything else; sees contacts masked.

Members must also be `is_staff` to reach the admin and the API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import transaction

OPERATOR = "operator"
ANALYST = "analyst"
OPERATOR_EXTRA_APPS = ("django_celery_beat",)


@dataclass(frozen=True)
class RoleSummary:
    name: str
    permissions: int


# {app label: a callable that makes sure the app's permissions the analyst must not have
# exist, and returns them}.
_operator_only: dict[str, Callable[[], list[Permission]]] = {}


def roles_operator_only_register(
    *, label: str, permissions: Callable[[], list[Permission]]
) -> None:
    """Keep some of an app's view permissions from the analyst; call from `AppConfig.ready()`."""
    _operator_only[label] = permissions


def project_app_labels() -> list[str]:
    """The creditflow apps: those whose package is at the top of this repository (so a new
    app is under both roles without being listed anywhere), but for `config` itself."""
    root = Path(settings.BASE_DIR).resolve()
    return sorted(
        app.label
        for app in django_apps.get_app_configs()
        if Path(app.path).resolve().parent == root and app.label != "config"
    )


def roles_setup() -> list[RoleSummary]:
    """Create or reset both groups to exactly their permissions (safe to run again)."""
    labels = project_app_labels()
    with transaction.atomic():
        operator_only = [
            permission.pk for permissions in _operator_only.values() for permission in permissions()
        ]
        operator_permissions = list(
            Permission.objects.filter(content_type__app_label__in=(*labels, *OPERATOR_EXTRA_APPS))
        )
        analyst_permissions = list(
            Permission.objects.filter(
                content_type__app_label__in=labels, codename__startswith="view_"
            ).exclude(pk__in=operator_only)
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
