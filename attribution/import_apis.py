"""`POST /api/v1/conversions/import/` (a CSV of conversions) and
`GET /api/v1/conversions/imports/<id>/` (its progress and row errors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.exceptions import APIException
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.models import ConversionImport
from attribution.selectors import conversion_import_status
from attribution.services.imports import ImportRefused, conversion_import_create
from config.parsers import drain


class ImportTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def _too_large() -> ImportTooLarge:
    limit = settings.CONVERSION_IMPORT_MAX_BYTES
    return ImportTooLarge(f"The file is larger than {limit} bytes (CONVERSION_IMPORT_MAX_BYTES).")


class CsvBodyParser(BaseParser):
    """A `text/csv` body as bytes, refused with 413 past `CONVERSION_IMPORT_MAX_BYTES`."""

    media_type = "text/csv"

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:  # bytes: the stubs know only mappings, DRF passes any value on as `data`
        if stream is None:
            return b""
        limit = settings.CONVERSION_IMPORT_MAX_BYTES
        request = (parser_context or {}).get("request")
        length = request.META.get("CONTENT_LENGTH") if request is not None else None
        if length and str(length).isascii() and str(length).isdigit() and int(length) > limit:
            drain(stream)
            raise _too_large()
        data = bytes(stream.read(limit + 1))
        if len(data) > limit:
            drain(stream)
            raise _too_large()
        return data


class ConversionImportSerializer(serializers.ModelSerializer[ConversionImport]):
    network: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    status = serializers.ChoiceField(
        choices=ConversionImport.Status.choices,
        read_only=True,
        help_text="`done` once every row is stored and every accepted row decided",
    )
    # Declared fields leave the class for `_declared_fields`: `Serializer.errors` stays.
    errors = serializers.ListField(  # type: ignore[assignment]
        child=inline_serializer(
            name="ConversionImportRowError",
            fields={
                "row": serializers.IntegerField(help_text="1-based data row"),
                "error": serializers.CharField(help_text="What is wrong, naming the field"),
            },
        ),
        read_only=True,
    )

    class Meta:
        model = ConversionImport
        fields = [
            "id",
            "network",
            "file_name",
            "status",
            "rows",
            "rows_done",
            "accepted",
            "rejected",
            "errors",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


# A header row with at least one postback field of its own (other cells are free; a network
# alias is taken too), then a first row with something in it, then any lines.
CSV_HEADER_FIELDS = "click_id|conversion_id|payout|status|occurred_at|email|phone|offer_id"
CSV_SCHEMA = {
    "type": "string",
    "pattern": (
        f'^(?:[^,"\\r\\n]*,)*(?:{CSV_HEADER_FIELDS})(?:,[^,"\\r\\n]*)*\\r?\\n'
        "[^\\r\\n]*[A-Za-z0-9][^\\r\\n]*(?:\\r?\\n[^\\r\\n]*)*\\r?\\n?$"
    ),
    "description": "CSV text: a header row of postback fields or aliases, one row per conversion",
}


class ConversionImportApi(APIView):
    permission_model = ConversionImport
    parser_classes = [CsvBodyParser, MultiPartParser]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "network",
                {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"},
                required=True,
                description="The network's slug (none by that slug: 404)",
            )
        ],
        # The document shows the simplest CSV the server takes (a header, then rows), so a
        # generated request is one; a multipart `file` with the same text is taken too.
        request={"text/csv": CSV_SCHEMA},
        responses={
            202: inline_serializer(
                name="ConversionImportQueued",
                fields={
                    "import_id": serializers.IntegerField(),
                    "rows": serializers.IntegerField(),
                },
            )
        },
        description="A CSV of conversions: a header row naming postback fields or their "
        "aliases (click_id, conversion_id, payout, status, occurred_at, email, phone, "
        "external_id, offer_id, ...), one conversion a row. Each row is handled exactly as "
        "the network's postback, on a worker; poll `/api/v1/conversions/imports/<id>/`. "
        "A body that is not such a CSV answers 400 and stores nothing. The same CSV may come "
        "as the `file` of a multipart/form-data body.",
    )
    def post(self, request: Request) -> Response:
        data = request.data
        file_name = ""
        if isinstance(data, bytes):
            content = data
        elif (request.content_type or "").startswith(CsvBodyParser.media_type):
            content = b""  # DRF hands an empty body over as an empty form
        else:
            upload = data.get("file") if hasattr(data, "get") else None
            if not isinstance(upload, UploadedFile):
                raise serializers.ValidationError(
                    {"file": ["Send the CSV as a text/csv body or a multipart `file`."]}
                )
            if upload.size is not None and upload.size > settings.CONVERSION_IMPORT_MAX_BYTES:
                raise _too_large()
            content = upload.read()
            file_name = upload.name or ""
        network = request.query_params.get("network", "")
        try:
            conversion_import = conversion_import_create(
                network_slug=network,
                data=content,
                file_name=file_name,
                requested_by_id=request.user.pk,
            )
        except ImportRefused as error:
            field = (
                "network" if str(error).startswith(("No network", "Name the network")) else "file"
            )
            code = "does_not_exist" if str(error).startswith("No network") else "invalid"
            raise serializers.ValidationError({field: [str(error)]}, code=code) from error
        return Response(
            {"import_id": conversion_import.pk, "rows": conversion_import.rows},
            status=status.HTTP_202_ACCEPTED,
        )


class ConversionImportDetailApi(generics.RetrieveAPIView[ConversionImport]):
    serializer_class = ConversionImportSerializer
    queryset = ConversionImport.objects.select_related("network")

    def get_object(self) -> ConversionImport:
        if not 0 < int(self.kwargs["pk"]) < 2**63:
            raise Http404
        conversion_import = super().get_object()
        conversion_import.status = conversion_import_status(conversion_import=conversion_import)
        return conversion_import
