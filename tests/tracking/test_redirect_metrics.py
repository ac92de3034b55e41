from typing import cast

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import LinkFactory
from tracking.models import Link

pytestmark = pytest.mark.usefixtures("spool_dir")


def _redirect_counts(client: Client) -> dict[str, float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if sample.name == "creditflow_redirects_total":
                counts[sample.labels["outcome"]] = sample.value
    return counts


@pytest.mark.django_db
def test_redirect_answers_show_in_metrics_by_outcome(client, admin_client_logged_in):
    # given
    link = cast(Link, LinkFactory())
    visitor = Client()
    before = _redirect_counts(admin_client_logged_in)

    # when
    found = visitor.get(f"/{link.code}")
    missing = visitor.get("/nosuchcode")
    after = _redirect_counts(admin_client_logged_in)

    # then
    assert found.status_code == 302
    assert missing.status_code == 404
    assert after.get("redirect", 0) - before.get("redirect", 0) == 1
    assert after.get("not_found", 0) - before.get("not_found", 0) == 1
