"""API permission: staff only; reading is open to staff, writing needs the model permission.

Wire it as the default (`REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"]`). A view that
writes without a `queryset` (bulk create, imports) should name its model with
`permission_model = Message`; otherwise a write needs some `add_` permission in the
view's app, which the operator role has and the analyst role has not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Model
from rest_framework.permissions import SAFE_METHODS, BasePermission

if TYPE_CHECKING:
    # rest_framework.views imports this module (through api_settings) while it loads.
    from rest_framework.request import Request
    from rest_framework.views import APIView

WRITE_ACTIONS = {"POST": "add", "PUT": "change", "PATCH": "change", "DELETE": "delete"}


def _view_model(view: APIView) -> type[Model] | None:
    explicit = getattr(view, "permission_model", None)
    if explicit is not None:
        return explicit
    queryset = getattr(view, "queryset", None)
    if queryset is None and hasattr(view, "get_queryset"):
        try:
            queryset = view.get_queryset()
        except (AssertionError, ValueError, TypeError, LookupError):
            # A GenericAPIView without a queryset, or one that reads query parameters.
            queryset = None
    return getattr(queryset, "model", None)


def _has_some_add_permission(user: Any, app_label: str) -> bool:
    prefix = f"{app_label}.add_"
    return any(permission.startswith(prefix) for permission in user.get_all_permissions())


class StaffWithModelPermissions(BasePermission):
    message = "Staff only; changing this needs the model's add/change/delete permission."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        if request.method in SAFE_METHODS:
            return True
        action = WRITE_ACTIONS.get(request.method or "")
        if action is None:
            return False
        if user.is_superuser:
            return True
        model = _view_model(view)
        if model is None:
            return _has_some_add_permission(user, type(view).__module__.split(".", 1)[0])
        return bool(user.has_perm(f"{model._meta.app_label}.{action}_{model._meta.model_name}"))
