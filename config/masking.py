"""Personal data in admin lists: masked unless the user may see it.

The permission is `tracking.view_contact_phone` (created by `manage.py setup_roles`,
given to the operator role, not to the analyst role; superusers have it implicitly).
"""

from __future__ import annotations

from typing import Any

PERSONAL_DATA_PERMISSION = "tracking.view_contact_phone"
MASK = "•••"


def may_see_personal_data(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_active", False)
        and user.has_perm(PERSONAL_DATA_PERMISSION)
    )


def mask_phone(value: str | None, user: Any) -> str:
    """`+12015550123` -> `+1201•••0123` for a user without the permission."""
    if not value:
        return ""
    if may_see_personal_data(user):
        return value
    if len(value) <= 9:
        return value[:2] + MASK + value[-2:]
    return value[:5] + MASK + value[-4:]


def mask_email(value: str | None, user: Any) -> str:
    """`jane.doe@example.com` -> `j•••@example.com` for a user without the permission."""
    if not value:
        return ""
    if may_see_personal_data(user):
        return value
    local, _, domain = value.partition("@")
    return f"{local[:1]}{MASK}@{domain}"
