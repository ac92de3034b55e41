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

from django.contrib.auth.models import Group, Permission
from django.db import transaction

OPERATOR = "operator"
ANALYST = "analyst"
OPERATOR_EXTRA_APPS = ("django_celery_beat",)


@dataclass(frozen=True)
class RoleSummary:
    name: str
    permissions: int


@dataclass(frozen=True)
class _RoleApp:
    label: str
    # Makes sure the app's view permissions the analyst must not have exist, and returns them.
    operator_only: Callable[[], list[Permission]] | None


_apps: dict[str, _RoleApp] = {}


def roles_app_register(
    *, label: str, operator_only: Callable[[], list[Permission]] | None = None
) -> None:
    """Put an app's models under both roles; call from its `AppConfig.ready()`."""
    _apps[label] = _RoleApp(label=label, operator_only=operator_only)


def roles_setup() -> list[RoleSummary]:
    """Create or reset both groups to exactly their permissions (safe to run again)."""
    labels = sorted(_apps)
    with transaction.atomic():
        operator_only = [
            permission.pk
            for app in _apps.values()
            if app.operator_only is not None
            for permission in app.operator_only()
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
