"""`GET /api/v1/reports/daily/`: the stored daily cells of one dimension over a date range."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.pagination import StandardPagination
from reports.models import Dimension
from reports.selectors import (
    API_ORDERINGS,
    ReportInputError,
    report_query_parse,
    report_rows_as_dicts,
    report_rows_by_day_and_key,
)
from reports.services import rollup_today


class DailyReportRowSerializer(serializers.Serializer[dict[str, Any]]):
    day = serializers.DateField()
    dimension = serializers.CharField()
    key = serializers.IntegerField()
    name = serializers.CharField()
    sends = serializers.IntegerField()
    clicks = serializers.IntegerField()
    unique_clicks = serializers.IntegerField()
    bot_clicks = serializers.IntegerField(help_text="Bots and previews")
    preview_clicks = serializers.IntegerField(
        help_text="Link previews, scanners and prefetches alone (also in `bot_clicks`)"
    )
    conversions = serializers.IntegerField()
    rejected_conversions = serializers.IntegerField()
    reversed_conversions = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=4)
    reversed_revenue = serializers.DecimalField(max_digits=16, decimal_places=4)
    view_through_conversions = serializers.IntegerField(
        help_text="Credited to a send never clicked (view-through): not in `conversions`"
    )
    view_through_revenue = serializers.DecimalField(
        max_digits=16, decimal_places=4, help_text="Revenue of view-through conversions"
    )
    epc = serializers.DecimalField(max_digits=16, decimal_places=4)
    revenue_per_send = serializers.DecimalField(max_digits=16, decimal_places=4)


class DailyReportApi(APIView):
    pagination_class = StandardPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("dimension", OpenApiTypes.STR, enum=Dimension.values, required=True),
            OpenApiParameter("start", OpenApiTypes.DATE, required=True),
            OpenApiParameter("end", OpenApiTypes.DATE, required=True),
            OpenApiParameter(
                "key",
                {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
                description="Only this message/offer/... id",
            ),
            OpenApiParameter(
                "ordering",
                OpenApiTypes.STR,
                enum=[f"{sign}{name}" for name in API_ORDERINGS for sign in ("", "-")],
                description="Sort on the server: day (default: by day, then key), key, or a"
                " metric (ties by day, then key); a leading - reverses the whole order.",
            ),
        ],
        responses=DailyReportRowSerializer(many=True),
        operation_id="reports_daily",
        description="Stored daily cells of one dimension, by day then key. Any range: a start "
        "after the end has no days, so no rows.",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        missing = [name for name in ("dimension", "start", "end") if not params.get(name)]
        if missing:
            return Response({"error": f"Missing parameter: {', '.join(missing)}."}, status=400)
        try:
            query = report_query_parse(
                dimension=params.get("dimension"),
                start=params.get("start"),
                end=params.get("end"),
                key=params.get("key"),
                default_end=rollup_today(),
                max_days=None,
                reversed_is_empty=True,
            )
        except ReportInputError as error:
            return Response({"error": str(error)}, status=400)
        try:
            rows = report_rows_by_day_and_key(query=query, ordering=params.get("ordering") or "day")
        except ReportInputError as error:
            return Response({"error": str(error)}, status=400)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(rows, request, view=self)  # type: ignore[arg-type]
        cells = report_rows_as_dicts(dimension=query.dimension, rows=page or [])
        serializer = DailyReportRowSerializer(cells, many=True)  # type: ignore[arg-type]
        return paginator.get_paginated_response(serializer.data)
