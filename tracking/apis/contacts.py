"""`/api/v1/contacts/` (find by any identifier, detail) and `/api/v1/contacts/identify/`.

Query strings here carry phone numbers and emails (the contract's choice for finding a
contact): nothing here logs them, and Django's request log writes the path alone.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, OperationalError, transaction
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.openapi import component_amend, error_responses
from tracking.apis.errors import service_errors_as_400
from tracking.masking import mask_email, mask_phone
from tracking.models import Contact, IdentitySource
from tracking.selectors import contact_list
from tracking.serializers import PHONE_DESCRIPTION, email_schema, phone_schema
from tracking.services.contacts import (
    EXTERNAL_ID_MAX_LENGTH,
    ContactSpec,
    contact_resolve_one,
    contact_spec_normalize,
)
from tracking.services.merges import contact_survivor_id

IDENTIFY_ATTEMPTS = 3


class ContactSerializer(serializers.ModelSerializer[Contact]):
    merged_ids = serializers.ListField(
        child=serializers.IntegerField(),
        read_only=True,
        help_text="Ids of contacts merged into this one; requests naming them reach this one",
    )
    phone = serializers.SerializerMethodField(help_text="E.164")
    email = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = ["id", "phone", "email", "external_id", "merged_ids"]
        read_only_fields = fields

    def _user(self) -> Any:
        request = self.context.get("request")
        return getattr(request, "user", None)

    def get_phone(self, contact: Contact) -> str | None:
        return mask_phone(contact.phone, self._user()) or None

    def get_email(self, contact: Contact) -> str | None:
        return mask_email(contact.email, self._user()) or None


@extend_schema_field(phone_schema(blank=False))
class _PhoneField(serializers.CharField):
    pass


@extend_schema_field(email_schema(blank=False))
class _EmailField(serializers.CharField):
    pass


class ContactIdentifySerializer(serializers.Serializer[Any]):
    phone = _PhoneField(required=False, allow_null=True, max_length=32)
    email = _EmailField(required=False, allow_null=True, max_length=254)
    external_id = serializers.CharField(
        required=False, allow_null=True, max_length=EXTERNAL_ID_MAX_LENGTH
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        given = [name for name in ("phone", "email", "external_id") if attrs.get(name)]
        if len(given) < 2:
            raise serializers.ValidationError(
                "Name at least two of phone, email and external_id: the identifiers of one person."
            )
        return attrs


def _given(*names: str) -> dict[str, Any]:
    return {
        "required": list(names),
        "properties": {name: {"type": "string"} for name in names},
    }


# At least two identifiers that are not null.
component_amend(
    "ContactIdentifyRequest",
    anyOf=[
        _given("phone", "email"),
        _given("phone", "external_id"),
        _given("email", "external_id"),
    ],
)


def _identifier_filters(request: Request) -> dict[str, str | None]:
    params = request.query_params
    raw = {name: params.get(name) for name in ("phone", "email", "external_id")}
    if not any(raw.values()):
        return dict.fromkeys(raw)
    with service_errors_as_400():
        spec = contact_spec_normalize(
            spec=ContactSpec(phone=raw["phone"], email=raw["email"], external_id=raw["external_id"])
        )
    return {"phone": spec.phone, "email": spec.email, "external_id": spec.external_id}


IDENTIFIER_PARAMETERS = [
    OpenApiParameter(
        "phone",
        {key: value for key, value in phone_schema(blank=True).items() if key != "nullable"},
        description=PHONE_DESCRIPTION,
    ),
    OpenApiParameter(
        "email",
        {key: value for key, value in email_schema(blank=True).items() if key != "nullable"},
        description="Any case",
    ),
    OpenApiParameter(
        "external_id",
        {"type": "string", "maxLength": EXTERNAL_ID_MAX_LENGTH, "pattern": r"^[^\x00]*$"},
    ),
]


class ContactListApi(generics.ListAPIView[Contact]):
    """Contacts found by any identifier (also one a merge left behind); filters combine."""

    serializer_class = ContactSerializer

    def get_queryset(self) -> QuerySet[Contact]:
        return contact_list(**_identifier_filters(self.request))

    @extend_schema(parameters=IDENTIFIER_PARAMETERS)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ContactDetailApi(generics.RetrieveAPIView[Contact]):
    """A contact; the id of a contact merged into another answers with the survivor."""

    serializer_class = ContactSerializer

    def get_queryset(self) -> QuerySet[Contact]:
        return contact_list()

    def get_object(self) -> Contact:
        try:
            requested = int(self.kwargs["pk"])
        except (TypeError, ValueError) as error:
            raise Http404 from error
        contact = _contact_now(requested) if 0 < requested < 2**63 else None
        if contact is None:
            raise Http404
        return contact


class ContactIdentifyApi(APIView):
    # Read by model-permission checks: identifying changes contacts.
    permission_model = Contact

    @extend_schema(
        request=ContactIdentifySerializer,
        responses={200: ContactSerializer, **error_responses(409)},
        description="These identifiers are one person: the contacts they name become one "
        "(the oldest survives), and identifiers not known yet are added to it. Identifiers "
        "of people who cannot be one (a kind with two different values) answer 409 and are "
        "listed for an operator.",
    )
    def post(self, request: Request) -> Response:
        serializer = ContactIdentifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with service_errors_as_400():
            spec = contact_spec_normalize(
                spec=ContactSpec(
                    phone=data.get("phone"),
                    email=data.get("email"),
                    external_id=data.get("external_id"),
                )
            )
        contact_id, conflict_id = _identify(spec, request.user.pk)
        if conflict_id is not None:
            return Response(
                {
                    "error": "These identifiers belong to different people (a kind with two "
                    "values); nothing was merged and an operator can resolve it.",
                    "fields": {"conflict": conflict_id, "contact": contact_id},
                },
                status=status.HTTP_409_CONFLICT,
            )
        # A request merging an overlapping pair may have merged this contact into an older
        # one since ours committed: the answer is the person as they are now.
        contact = _contact_now(contact_id)
        if contact is None:
            raise AssertionError(f"contact {contact_id} is gone and was merged into none")
        return Response(ContactSerializer(contact, context={"request": request}).data)


def _contact_now(contact_id: int) -> Contact | None:
    """The contact this id names now (itself or the one it was merged into), or None.
    Looked up again when a merge moves it between the two reads."""
    for _ in range(3):
        survivor = contact_survivor_id(contact_id=contact_id)
        if survivor is None:
            return None
        contact = contact_list().filter(pk=survivor).first()
        if contact is not None:
            return contact
    return None


def _identify(spec: ContactSpec, user_id: int | None) -> tuple[int, int | None]:
    for attempt in range(1, IDENTIFY_ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return contact_resolve_one(
                    spec=spec, source=IdentitySource.IDENTIFY, requested_by_id=user_id
                )
        except (IntegrityError, OperationalError):
            # A concurrent merge or insert of the same people (or a deadlock between
            # two of them): the next attempt sees what it committed.
            if attempt == IDENTIFY_ATTEMPTS:
                raise
    raise AssertionError("unreachable")
