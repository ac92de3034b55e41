"""Malformed paths, headers, encodings and bodies at the two public endpoints: never a 5xx."""

from typing import Any, cast
from urllib.parse import quote, quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.models import Network
from tests.factories import TEST_POSTBACK_TOKEN, LinkFactory, NetworkFactory
from tracking.models import Link

FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

junk_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300)
junk_bytes = st.binary(max_size=2000)
header_values = st.one_of(
    junk_text.map(lambda text: text.encode("utf-8").decode("latin-1")),
    st.sampled_from(
        [
            "",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
            "\x00\x01\x02",
            "A" * 10_000,
            "facebookexternalhit/1.1",
            "() { :; }; /bin/bash -c 'id'",
            "../../../../etc/passwd",
            "%00%0d%0aSet-Cookie: x=1",
        ]
    ),
)
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"])
content_types = st.sampled_from(
    [
        "",
        "application/json",
        "application/json; charset=utf-16",
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "text/plain; charset=no-such-charset",
        "application/xml",
    ]
)


def _request(client: Any, method: str, path: str, body: bytes, content_type: str, **meta: str):
    return client.generic(method, path, data=body, content_type=content_type, **meta)


@pytest.mark.django_db
@FUZZ
@given(
    segment=st.one_of(junk_text, junk_bytes.map(lambda raw: quote_from_bytes(raw, safe=""))),
    query=junk_bytes,
    method=methods,
    user_agent=header_values,
    forwarded_for=header_values,
    purpose=header_values,
)
def test_short_links_never_answer_5xx(
    client, spool_dir, segment, query, method, user_agent, forwarded_for, purpose
):
    # given
    link = cast(Link, LinkFactory())
    paths = [
        f"/{quote(segment, safe='')}",
        f"/{link.code}",
        f"/{link.code}{quote(segment, safe='')}",
    ]

    for path in paths:
        # when
        response = _request(
            client,
            method,
            f"{path}?{quote_from_bytes(query, safe='=&')}",
            b"",
            "",
            HTTP_USER_AGENT=user_agent,
            HTTP_X_FORWARDED_FOR=forwarded_for,
            HTTP_SEC_PURPOSE=purpose,
        )

        # then: a redirect only ever to the offer, and never a server error
        assert response.status_code < 500, (path, response.status_code)
        if response.status_code == 302:
            assert response["Location"].startswith("https://offer.example.com/")


@pytest.mark.django_db
@FUZZ
@given(
    slug=st.one_of(junk_text, st.just("fuzz-network")),
    query=junk_bytes,
    body=st.one_of(junk_bytes, junk_text.map(str.encode)),
    content_type=content_types,
    method=methods,
    token_header=st.one_of(st.just(TEST_POSTBACK_TOKEN), header_values),
)
def test_postbacks_never_answer_5xx(client, slug, query, body, content_type, method, token_header):
    # given
    if not Network.objects.filter(slug="fuzz-network").exists():
        NetworkFactory(slug="fuzz-network")
    path = f"/postback/{quote(slug, safe='')}/?{quote_from_bytes(query, safe='=&')}"

    # when
    response = _request(
        client, method, path, body, content_type, HTTP_X_POSTBACK_TOKEN=token_header
    )

    # then
    assert response.status_code < 500, response.content[:500]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
def test_a_huge_postback_body_is_refused_with_a_reason_not_a_crash(client, content_type):
    # given: a body past DATA_UPLOAD_MAX_MEMORY_SIZE, and a form with too many fields
    network = cast(Network, NetworkFactory())
    huge = b"{" + b'"a":"' + b"x" * (11 * 1024 * 1024) + b'"}'
    many_fields = "&".join(f"f{index}=1" for index in range(5000)).encode()

    # when
    too_big = client.post(
        f"/postback/{network.slug}/?token={TEST_POSTBACK_TOKEN}&click_id=abc",
        data=huge,
        content_type=content_type,
    )
    too_many = client.post(
        f"/postback/{network.slug}/?token={TEST_POSTBACK_TOKEN}&click_id=abc",
        data=many_fields,
        content_type="application/x-www-form-urlencoded",
    )

    # then
    assert too_big.status_code in {400, 413}
    assert "error" in too_big.json()
    assert too_many.status_code < 500


@pytest.mark.django_db
def test_a_huge_query_string_or_header_on_a_short_link_is_not_a_crash(client, spool_dir):
    # given
    link = cast(Link, LinkFactory())

    # when
    long_query = client.get(f"/{link.code}?" + "a=" + "b" * 100_000)
    long_agent = client.get(f"/{link.code}", HTTP_USER_AGENT="x" * 100_000)
    long_code = client.get("/" + "a" * 5000)

    # then
    assert long_query.status_code == 302
    assert long_agent.status_code == 302
    assert long_code.status_code == 404
