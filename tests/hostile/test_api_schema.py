"""schemathesis against our own OpenAPI document, in process (WSGI), as a staff user.

Checked: no 5xx for any generated input (valid or not), and every answer that the
document describes matches its schema. Bounded: a few examples per operation.
"""

from typing import Any

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.factories import LinkFactory, NetworkFactory, OfferFactory

# Bounded, and the same examples every run (derandomized): a failure here is reproducible.
EXAMPLES_PER_OPERATION = 15
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_api_never_answers_5xx_and_matches_its_own_schema():
    # given: a staff token, a few real rows for the generator to stumble on
    user = get_user_model().objects.create_user(
        username="schema-staff", password="x" * 16, is_staff=True, is_superuser=True
    )
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    LinkFactory.create_batch(2)
    OfferFactory(network=NetworkFactory())
    schema = schemathesis.openapi.from_wsgi(
        "/api/v1/schema/?format=json", get_wsgi_application(), headers=headers
    )
    failures: list[str] = []

    # when: every operation gets generated requests, valid and invalid
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            exercise()
        except Exception as error:  # collected, all reported below
            failures.append(f"{operation.method.upper()} {operation.path}: {error}"[:3000])

    # then
    assert not failures, "\n\n".join(failures)
