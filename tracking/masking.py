"""Contacts' phone numbers and e-mails in the admin: masked unless the user may see them.

The permission is `tracking.view_contact_phone` (declared on `Contact.Meta.permissions`,
given to the operator role by `manage.py setup_roles`, not to the analyst role;
superusers have it implicitly). The mask itself is `config.masking`'s.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

from config.masking import email_masked, phone_masked

PERSONAL_DATA_PERMISSION = "tracking.view_contact_phone"


def may_see_personal_data(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_active", False)
        and user.has_perm(PERSONAL_DATA_PERMISSION)
    )


def mask_phone(value: str | None, user: Any) -> str:
    """`+12015550123` -> `+1201•••0123` for a user without the permission."""
    if value and may_see_personal_data(user):
        return value
    return phone_masked(value)


def mask_email(value: str | None, user: Any) -> str:
    """`jane.doe@example.com` -> `j•••@example.com` for a user without the permission."""
    if value and may_see_personal_data(user):
        return value
    return email_masked(value)


def personal_data_permission_ensure() -> list[Permission]:
    """The permission, for the operator role only: migrate creates it; created here only
    if migrate's post_migrate step has not run."""
    app_label, codename = PERSONAL_DATA_PERMISSION.split(".")
    content_type = ContentType.objects.get_by_natural_key(app_label, "contact")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type,
        codename=codename,
        defaults={"name": "Can see contacts' full phone numbers and emails"},
    )
    return [permission]
