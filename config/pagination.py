from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request


def _page_integer(request: Request, name: str, *, maximum: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ValidationError({name: ["A whole number of at least 1."]})
    # Python refuses to convert more than 4,300 digits; no page or size is that long anyway.
    value = int(raw) if len(raw) <= 18 else 10**18
    if maximum is not None and value > maximum:
        raise ValidationError({name: [f"At most {maximum}."]})
    return value


class StandardPagination(PageNumberPagination):
    """`?page=` and `?page_size=` as documented: a bad value is a 400 naming it, not ignored
    (DRF's default falls back to page 1 or the default size, which hides a client's bug)."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    last_page_strings = ()

    def get_page_size(self, request: Request) -> int:
        size = _page_integer(request, self.page_size_query_param, maximum=self.max_page_size)
        return size if size is not None else self.page_size

    def get_page_number(self, request: Request, paginator: Any) -> int:
        number = _page_integer(request, self.page_query_param)
        return number if number is not None else 1

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Page number (a page past the last answers 404).",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
