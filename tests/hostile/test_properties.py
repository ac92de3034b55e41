"""Property-based tests: postback parsing, click flagging and the API's JSON and form parsers
at every write endpoint hold for any input."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from json import dumps
from typing import cast
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from attribution.services.parsing import (
    MAX_PAYOUT,
    STANDARD_ALIASES,
    STATUS_SYNONYMS,
    PostbackInvalid,
    postback_parse,
    query_pairs,
    request_fields,
    without_secrets,
)
from tracking.preview_agents import PREVIEW_AGENTS
from tracking.services.clicks import ip_truncate
from tracking.services.flags import click_flags

RECEIVED_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PROPERTIES = settings(max_examples=300, deadline=None, database=None)

any_text = st.text(max_size=200)
identifiers = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc", "Zs"]),
    min_size=1,
    max_size=64,
).filter(lambda text: text.strip() == text and text.strip())
payouts = st.decimals(min_value=0, max_value=MAX_PAYOUT, places=4, allow_nan=False)
currencies = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)
statuses = st.sampled_from(sorted(STATUS_SYNONYMS))
# Hypothesis wants naive bounds and adds the zone itself.
moments = st.datetimes(
    min_value=datetime(2001, 1, 1),  # noqa: DTZ001
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def _parse(query_string: str = "", body: str = "", content_type: str = "", **network):
    return postback_parse(
        query_string=query_string,
        body=body,
        content_type=content_type,
        received_at=RECEIVED_AT,
        parameter_aliases=network.get("aliases", {}),
        status_map=network.get("status_map", {}),
        default_currency=network.get("currency", "USD"),
    )


@PROPERTIES
@given(
    query_string=any_text,
    body=any_text,
    content_type=st.sampled_from(["", "application/json", "application/x-www-form-urlencoded"]),
    aliases=st.dictionaries(any_text, st.one_of(any_text, st.lists(any_text)), max_size=3),
    status_map=st.dictionaries(any_text, any_text, max_size=3),
)
def test_parsing_any_input_either_succeeds_or_names_the_problem(
    query_string, body, content_type, aliases, status_map
):
    # when
    try:
        parsed = _parse(query_string, body, content_type, aliases=aliases, status_map=status_map)
    except PostbackInvalid as problem:
        # then: a reason a network can read, never another exception
        assert str(problem)
        return

    # then: what comes out is always storable
    assert parsed.click_id or parsed.conversion_id
    assert len(parsed.click_id) <= 255
    assert parsed.payout is None or Decimal(0) <= parsed.payout <= MAX_PAYOUT
    assert len(parsed.currency) == 3
    assert parsed.status in {"approved", "pending", "rejected", "reversed"}
    assert parsed.occurred_at.tzinfo is not None


@PROPERTIES
@given(
    click_id=identifiers,
    conversion_id=st.one_of(st.none(), identifiers),
    payout=payouts,
    currency=currencies,
    status=statuses,
    occurred_at=moments,
    as_unix_seconds=st.booleans(),
    click_name=st.sampled_from(STANDARD_ALIASES["click_id"]),
    payout_name=st.sampled_from(STANDARD_ALIASES["payout"]),
    in_json=st.booleans(),
)
def test_whatever_alias_or_encoding_a_network_uses_the_values_come_back(
    click_id,
    conversion_id,
    payout,
    currency,
    status,
    occurred_at,
    as_unix_seconds,
    click_name,
    payout_name,
    in_json,
):
    # given
    fields = {
        click_name: click_id,
        payout_name: str(payout),
        "currency": currency.lower(),
        "status": status.upper(),
        "timestamp": str(int(occurred_at.timestamp()))
        if as_unix_seconds
        else occurred_at.isoformat(),
    }
    if conversion_id is not None:
        fields["conversion_id"] = conversion_id
    assume(len(set(fields)) == len(fields))

    # when
    if in_json:
        parsed = _parse(body=dumps(fields), content_type="application/json")
    else:
        parsed = _parse(query_string=urlencode(fields))

    # then
    assert parsed.click_id == click_id
    assert parsed.conversion_id == conversion_id
    assert parsed.payout == payout
    assert parsed.currency == currency
    assert parsed.status == STATUS_SYNONYMS[status]
    expected_time = occurred_at.replace(microsecond=0) if as_unix_seconds else occurred_at
    assert abs(parsed.occurred_at - expected_time) < timedelta(seconds=1)


@PROPERTIES
@given(payout=st.one_of(st.decimals(max_value=Decimal("-0.0001")), st.just("NaN"), any_text))
def test_a_negative_or_unreadable_payout_is_refused(payout):
    # given: (a blank payout counts as absent)
    assume(str(payout).strip() and not _is_non_negative_number(str(payout)))

    # when / then
    with pytest.raises(PostbackInvalid, match="payout"):
        _parse(query_string=urlencode({"click_id": "abc", "payout": str(payout)}))


def _is_non_negative_number(text: str) -> bool:
    try:
        value = Decimal(text.strip())
    except ArithmeticError:
        return False
    return value.is_finite() and Decimal(0) <= value <= MAX_PAYOUT


@PROPERTIES
@given(
    query_click=identifiers,
    body_click=identifiers,
)
def test_the_body_wins_over_the_query_string(query_click, body_click):
    # when
    fields = request_fields(
        query_string=urlencode({"click_id": query_click}),
        body=urlencode({"click_id": body_click}),
        content_type="application/x-www-form-urlencoded",
    )

    # then
    assert fields["click_id"] == body_click


@PROPERTIES
@given(
    token=identifiers,
    token_name=st.sampled_from(STANDARD_ALIASES["token"]),
    in_json=st.booleans(),
    other=st.dictionaries(
        st.sampled_from(["click_id", "payout", "status"]), identifiers, max_size=3
    ),
)
def test_a_token_is_never_stored_whatever_its_name(token, token_name, in_json, other):
    # given
    fields = {**other, token_name: token}

    # when
    if in_json:
        query_string, body = without_secrets(
            query_string=urlencode({token_name: token}),
            body=dumps(fields),
            content_type="application/json",
            network_aliases={},
        )
    else:
        query_string, body = without_secrets(
            query_string=urlencode(fields),
            body=urlencode(fields),
            content_type="application/x-www-form-urlencoded",
            network_aliases={},
        )

    # then
    stored = request_fields(
        query_string=query_string,
        body=body,
        content_type="application/json" if in_json else "application/x-www-form-urlencoded",
    )
    assert token_name not in stored
    for name, value in other.items():
        assert stored[name] == value


@PROPERTIES
@given(
    query_string=st.text(
        alphabet=st.one_of(st.sampled_from("&=%+;#?aF09 "), st.characters(codec="utf-8")),
        max_size=60,
    )
)
def test_a_query_string_is_read_into_the_same_pairs_as_parse_qsl_reads(query_string):
    assert query_pairs(query_string) == parse_qsl(query_string, keep_blank_values=True)


@PROPERTIES
@given(
    token=identifiers,
    token_name=st.sampled_from(STANDARD_ALIASES["token"]),
    encoded=st.lists(st.booleans(), min_size=40, max_size=40),
)
def test_a_token_is_never_stored_however_its_name_is_encoded(token, token_name, encoded):
    # given: some of the name's characters percent-encoded, as a URL may carry them
    name = "".join(
        quote(character, safe="") if not encode else f"%{ord(character):02X}"
        for character, encode in zip(token_name, encoded, strict=False)
    )
    query_string = f"{name}={quote(token, safe='')}&click_id=abc"
    assert request_fields(query_string=query_string, body="", content_type="")[token_name] == token

    # when
    stored, _ = without_secrets(
        query_string=query_string, body="", content_type="", network_aliases={}
    )

    # then
    assert stored == "click_id=abc"


# --- click flagging ------------------------------------------------------------

BROWSERS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
]
PURPOSE_WORDS = ["prefetch", "preview", "prerender"]


@PROPERTIES
@given(user_agent=any_text, method=any_text, purpose=any_text)
def test_flagging_any_request_never_fails_and_is_stable(user_agent, method, purpose):
    # when
    first = click_flags(user_agent=user_agent, method=method, purpose=purpose)
    second = click_flags(user_agent=user_agent, method=method, purpose=purpose)

    # then
    assert first == second
    assert isinstance(first.is_bot, bool)
    assert isinstance(first.is_preview, bool)


@PROPERTIES
@given(user_agent=any_text, purpose=any_text)
def test_a_head_request_is_never_a_person(user_agent, purpose):
    # when
    flags = click_flags(user_agent=user_agent, method="HEAD", purpose=purpose)

    # then: a preview, or a bot when its agent says so (an uptime monitor's HEAD)
    assert flags.is_preview or flags.is_bot


@PROPERTIES
@given(
    user_agent=st.sampled_from(BROWSERS),
    before=st.text(alphabet="abc;= ", max_size=10),
    word=st.sampled_from(PURPOSE_WORDS),
    upper=st.booleans(),
)
def test_a_prefetch_header_makes_a_preview_of_a_real_browser(user_agent, before, word, upper):
    # given
    purpose = before + (word.upper() if upper else word)

    # when
    flags = click_flags(user_agent=user_agent, method="GET", purpose=purpose)

    # then
    assert flags.is_preview
    assert not flags.is_bot


@PROPERTIES
@given(user_agent=st.sampled_from(BROWSERS), method=st.sampled_from(["GET", "get", "Get"]))
def test_a_real_browser_get_is_a_human_click(user_agent, method):
    # when
    flags = click_flags(user_agent=user_agent, method=method, purpose="")

    # then
    assert not flags.is_bot
    assert not flags.is_preview


@PROPERTIES
@given(agent=st.sampled_from(PREVIEW_AGENTS), padding=st.text(alphabet="xyz ", max_size=20))
def test_every_known_preview_fetcher_is_a_preview_wherever_its_name_appears(agent, padding):
    # when
    user_agent = f"{padding} {agent.sample} {padding}"
    flags = click_flags(user_agent=user_agent, method="GET", purpose="")

    # then
    assert flags.is_preview


@PROPERTIES
@given(whitespace=st.text(alphabet=" \t", max_size=5))
def test_an_empty_user_agent_is_a_bot(whitespace):
    # when
    flags = click_flags(user_agent=whitespace, method="GET", purpose="")

    # then
    assert flags.is_bot


@PROPERTIES
@given(address=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)))
def test_stored_addresses_are_truncated_and_keep_their_network(address):
    # when
    stored = ip_truncate(str(address))

    # then
    assert stored is not None
    truncated = ip_address(stored)
    if isinstance(address, IPv4Address):
        assert address in ip_network(f"{truncated}/24")
        assert stored.endswith(".0")
    elif isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        assert address.ipv4_mapped in ip_network(f"{truncated}/24")
    else:
        assert address in ip_network(f"{truncated}/48")
        assert int(truncated) & ((1 << 80) - 1) == 0


@PROPERTIES
@given(junk=any_text)
def test_junk_addresses_are_dropped_not_stored(junk):
    # given
    try:
        ip_address(junk.strip().split("%", 1)[0])
    except ValueError:
        pass
    else:
        assume(False)

    # when
    stored = ip_truncate(junk)

    # then: nothing, or (for sloppy IPv4 such as "010.1.2.3") a real, truncated address
    assert stored is None or ip_address(stored)


@pytest.mark.parametrize("junk", ["\u00b9.2.3.4", "1.\u0662.3.4", "\uff11.2.3.4"])
def test_addresses_with_digits_int_refuses_or_other_scripts_are_dropped(junk):
    # when: digits to str.isdigit() (superscript, Arabic-Indic, fullwidth); the first raised
    # ValueError out of ip_truncate (a forwarded address reaches it from the request)
    stored = ip_truncate(junk)

    # then
    assert stored is None


# --- The API's JSON and form parsers, at every write endpoint -------------------------------

API_WRITES = [
    ("post", "/api/v1/networks/"),
    ("post", "/api/v1/offers/"),
    ("post", "/api/v1/campaigns/"),
    ("post", "/api/v1/creatives/"),
    ("post", "/api/v1/messages/"),
    ("post", "/api/v1/messages/bulk/"),
    ("post", "/api/v1/clicks/import/"),
    ("post", "/api/v1/contacts/identify/"),
    ("post", "/api/v1/attribution/compare/"),
    ("post", "/api/v1/attribution/reattribute/"),
    ("post", "/api/v1/webhooks/"),
    ("patch", "/api/v1/networks/{network}/"),
    ("patch", "/api/v1/offers/{offer}/"),
    ("patch", "/api/v1/campaigns/{campaign}/"),
    ("patch", "/api/v1/creatives/{creative}/"),
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["slug", "name", "offer", "contact", "phone", "code", "url", "x", ""])
            | st.text(max_size=8),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)
raw_json = st.one_of(
    json_values.map(lambda value: dumps(value).encode()),
    st.binary(max_size=300),
    st.integers(min_value=1, max_value=3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.sampled_from([b'{"a": 1, "a": 2}', b"[1e999]", b'["\\ud800"]', b"NaN", b""]),
)
form_bodies = st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5).map(
    lambda fields: urlencode(fields).encode()
)
bodies = st.one_of(
    st.tuples(raw_json, st.just("application/json")),
    st.tuples(raw_json, st.just("application/json; charset=latin-1")),
    st.tuples(form_bodies, st.just("application/x-www-form-urlencoded")),
    st.tuples(st.binary(max_size=200), st.just("multipart/form-data; boundary=xyz")),
    st.tuples(st.binary(max_size=200), st.just("text/plain")),
)


@pytest.fixture
def catalog_ids(db):
    from attribution.models import Offer
    from tests.factories import CreativeFactory, OfferFactory
    from tracking.models import Creative

    offer = cast(Offer, OfferFactory())
    creative = cast(Creative, CreativeFactory())
    return {
        "network": offer.network_id,
        "offer": offer.pk,
        "campaign": creative.campaign_id,
        "creative": creative.pk,
    }


@pytest.mark.django_db
@settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(write=st.sampled_from(API_WRITES), body=bodies)
def test_any_body_at_any_write_endpoint_is_answered_never_a_5xx(
    api_client, catalog_ids, write, body
):
    # given
    method, path = write
    raw, content_type = body

    # when
    response = getattr(api_client, method)(
        path.format(**catalog_ids), data=raw, content_type=content_type
    )

    # then: accepted, or a 4xx with a reason; JSON either way
    assert response.status_code < 500, (path, raw[:80], response.content[:300])
    if response.status_code >= 400:
        assert response.json()["error"], (path, raw[:80])
