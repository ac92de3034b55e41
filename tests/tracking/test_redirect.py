import os
import re
import time
from typing import cast
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection, transaction

from attribution.models import Offer
from tests.factories import CampaignFactory, CreativeFactory, MessageFactory
from tests.tracking.helpers import drain, make_link
from tracking.models import Click, Creative, Message
from tracking.services.clicks import click_id_generate
from tracking.services.link_cache import link_cache_invalidate

pytestmark = pytest.mark.usefixtures("spool_dir")


@pytest.mark.django_db
def test_redirect_fills_every_macro_url_encoded(client, spool_dir):
    # given
    creative = cast(
        Creative, CreativeFactory(slug="spring sale&more", campaign=CampaignFactory(slug="q2/ny"))
    )
    message = cast(
        Message,
        MessageFactory(
            creative=creative,
            campaign=creative.campaign,
            channel="email",
            offer__destination_url=(
                "https://offer.example.com/land?cid={click_id}&m={message_id}&o={offer_id}"
                "&c={campaign}&cr={creative}&ch={channel}"
            ),
        ),
    )
    link = make_link(message=message)

    # when
    response = client.get(f"/{link.code}")

    # then
    assert response.status_code == 302
    assert response["Cache-Control"] == "no-store"
    location = urlsplit(response["Location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https",
        "offer.example.com",
        "/land",
    )
    assert "c=q2%2Fny" in location.query
    assert "cr=spring%20sale%26more" in location.query
    query = parse_qs(location.query)
    assert query["m"] == [str(message.pk)]
    assert query["o"] == [str(message.offer_id)]
    assert query["c"] == ["q2/ny"]
    assert query["cr"] == ["spring sale&more"]
    assert query["ch"] == ["email"]
    click_id = query["cid"][0]
    assert len(click_id) >= 16
    drain(spool_dir)
    click = Click.objects.get(click_id=click_id)
    assert (click.link_id, click.message_id, click.contact_id, click.offer_id) == (
        link.pk,
        message.pk,
        message.contact_id,
        message.offer_id,
    )
    assert click.channel == "email"


@pytest.mark.django_db
def test_each_click_gets_its_own_click_id(client, spool_dir):
    # given
    link = make_link()

    # when
    locations = [client.get(f"/{link.code}")["Location"] for _ in range(5)]

    # then
    click_ids = [parse_qs(urlsplit(location).query)["cid"][0] for location in locations]
    assert len(set(click_ids)) == 5
    drain(spool_dir)
    assert sorted(Click.objects.values_list("click_id", flat=True)) == sorted(click_ids)


@pytest.mark.django_db
def test_click_ids_start_with_their_time_and_end_with_random_characters(client, spool_dir):
    # given
    link = make_link()

    # when
    click_ids = []
    for _ in range(3):
        location = client.get(f"/{link.code}")["Location"]
        click_ids.append(parse_qs(urlsplit(location).query)["cid"][0])
        time.sleep(0.002)

    # then: 11 hex digits of the click's time in milliseconds, then 16 URL-safe characters
    assert click_ids == sorted(click_ids)
    drain(spool_dir)
    for click_id in click_ids:
        assert re.fullmatch(r"[0-9a-f]{11}[A-Za-z0-9_-]{16}", click_id)
        click = Click.objects.get(click_id=click_id)
        # the stored time is rounded to the microsecond: it may cross a millisecond
        assert abs(int(click_id[:11], 16) - click.occurred_at.timestamp() * 1000) < 1.001
    assert len({click_id[11:] for click_id in click_ids}) == 3


@pytest.mark.django_db
def test_click_keeps_truncated_address_agent_referrer_and_method(client, spool_dir):
    # given
    link = make_link()
    user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148 Safari/604.1"

    # when
    client.get(
        f"/{link.code}",
        REMOTE_ADDR="198.51.100.77",
        HTTP_USER_AGENT=user_agent,
        HTTP_REFERER="https://mail.example.net/inbox",
    )
    client.get(f"/{link.code}", REMOTE_ADDR="2001:db8:abcd:12:1:2:3:4", HTTP_USER_AGENT=user_agent)
    drain(spool_dir)

    # then
    ipv4_click, ipv6_click = Click.objects.order_by("occurred_at")
    assert ipv4_click.ip == "198.51.100.0"
    assert ipv4_click.user_agent == user_agent
    assert ipv4_click.referrer == "https://mail.example.net/inbox"
    assert ipv4_click.method == "GET"
    assert not (ipv4_click.is_bot or ipv4_click.is_preview or ipv4_click.is_duplicate)
    assert ipv6_click.ip == "2001:db8:abcd::"
    # Nothing of the full address reached the disk either.
    assert "198.51.100.77" not in "".join(
        path.read_text() for path in spool_dir.glob("**/*") if path.is_file()
    )


@pytest.mark.django_db
def test_texts_with_quotes_backslashes_and_non_ascii_reach_the_click_unchanged(client, spool_dir):
    # given: what WSGI hands over (latin-1 of the UTF-8 bytes sent), with JSON's special cases
    sent_agent = 'Agent "quoted" \\ back\tslash é ✓'
    sent_referrer = 'https://mail.example.net/?q="x"&y=\\'
    link = make_link()

    # when
    client.get(
        f"/{link.code}",
        REMOTE_ADDR="198.51.100.77",
        HTTP_USER_AGENT=sent_agent.encode().decode("latin-1"),
        HTTP_REFERER=sent_referrer,
        HTTP_SEC_PURPOSE="prefetch",
    )
    drain(spool_dir)

    # then
    stored = Click.objects.get()
    assert (stored.user_agent, stored.referrer) == (sent_agent, sent_referrer)
    assert stored.is_preview


@pytest.mark.django_db
def test_head_request_redirects_and_counts_as_a_preview(client, spool_dir):
    # given
    link = make_link()

    # when
    response = client.head(f"/{link.code}", HTTP_USER_AGENT="Mozilla/5.0 (Linux; Android 14)")
    drain(spool_dir)

    # then
    assert response.status_code == 302
    click = Click.objects.get()
    assert click.method == "HEAD"
    assert click.is_preview


@pytest.mark.django_db
def test_unknown_code_is_404_and_records_nothing(client, spool_dir):
    # when
    response = client.get("/nosuchcode")

    # then
    assert response.status_code == 404
    drain(spool_dir)
    assert not Click.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/" + "a" * 33,
        "/" + "a" * 5000,
        "/ünïcödé",
        "/%F0%9F%98%80",
        "/..%2F..%2Fetc%2Fpasswd",
        "/../../etc/passwd",
        "/%2e%2e",
        "/code%00",
        "/code.php",
        "/co%20de",
        "/code%0d%0aLocation:%20https://evil.example",
        "/'%20OR%201=1--",
    ],
)
def test_malformed_codes_are_404(client, path):
    # given
    make_link(code="code")

    # when
    response = client.get(path)

    # then
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "//evil.example",
        "/%2F%2Fevil.example",
        "/%5C%5Cevil.example",
        "/https://evil.example",
        "/http:%2F%2Fevil.example",
    ],
)
def test_request_cannot_choose_where_it_is_sent(client, path):
    # when
    response = client.get(path)

    # then
    assert response.status_code == 404
    assert "Location" not in response


@pytest.mark.django_db
def test_query_parameters_and_host_header_never_change_the_destination(client):
    # given
    link = make_link(
        message__offer__destination_url="https://offer.example.com/land?cid={click_id}"
    )

    # when
    responses = [
        client.get(f"/{link.code}", {"next": "https://evil.example/"}),
        client.get(f"/{link.code}", {"url": "//evil.example", "redirect": "evil.example"}),
        client.get(f"/{link.code}", HTTP_X_FORWARDED_HOST="evil.example"),
        client.get(f"/{link.code}", HTTP_HOST="evil.example"),
    ]

    # then
    for response in responses[:3]:
        assert response.status_code == 302
        assert urlsplit(response["Location"]).netloc == "offer.example.com"
        assert "evil" not in response["Location"]
    assert responses[3].status_code == 400  # not an allowed host
    assert "Location" not in responses[3]


@pytest.mark.django_db
def test_query_string_is_forwarded_only_when_the_offer_says_so(client):
    # given
    forwarding = make_link(
        message__offer__destination_url="https://a.example/p?cid={click_id}#top",
        message__offer__forward_query_string=True,
    )
    silent = make_link(message__offer__destination_url="https://b.example/p?cid={click_id}")

    # when
    forwarded = client.get(f"/{forwarding.code}?utm_source=sms&x=//evil.example")
    kept = client.get(f"/{silent.code}?utm_source=sms")

    # then
    location = urlsplit(forwarded["Location"])
    assert location.netloc == "a.example"
    assert location.fragment == "top"
    assert parse_qs(location.query)["utm_source"] == ["sms"]
    assert parse_qs(location.query)["x"] == ["//evil.example"]
    assert "utm_source" not in kept["Location"]


@pytest.mark.django_db
def test_paused_offer_answers_410_and_still_records_the_click(client, spool_dir):
    # given
    link = make_link(message__offer__status=Offer.Status.PAUSED)

    # when
    response = client.get(f"/{link.code}")

    # then
    assert response.status_code == 410
    drain(spool_dir)
    assert Click.objects.filter(link=link).count() == 1


@pytest.mark.django_db
def test_paused_offer_goes_to_the_fallback_url_when_one_is_set(client, settings):
    # given
    settings.LINK_FALLBACK_URL = "https://brand.example/offers"
    link = make_link(message__offer__status=Offer.Status.PAUSED)

    # when
    response = client.get(f"/{link.code}")

    # then
    assert response.status_code == 302
    assert response["Location"] == "https://brand.example/offers"


@pytest.mark.django_db
def test_other_methods_are_refused(client):
    # given
    link = make_link()

    # when
    response = client.post(f"/{link.code}")

    # then
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.django_db
def test_no_redirect_without_a_durable_click(client, settings, tmp_path):
    # given: the spool directory cannot be created (its parent is a file)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.CLICK_SPOOL_DIR = blocker / "spool"
    link = make_link()

    # when
    response = client.get(f"/{link.code}")

    # then
    assert response.status_code == 503
    assert response["Retry-After"]


@pytest.mark.django_db(transaction=True)
def test_pausing_an_offer_reaches_the_redirect_within_the_check_interval(client, settings):
    # given
    settings.LINK_CACHE_CHECK_SECONDS = 0.5
    link = make_link()
    assert client.get(f"/{link.code}").status_code == 302

    # when
    with transaction.atomic():
        offer = Offer.objects.select_for_update().get(pk=link.message.offer_id)
        offer.status = Offer.Status.PAUSED
        offer.save()
        link_cache_invalidate()
    paused_at = time.monotonic()
    statuses = []
    while time.monotonic() - paused_at < 2:
        statuses.append(client.get(f"/{link.code}").status_code)
        if statuses[-1] == 410:
            break
        time.sleep(0.05)

    # then
    assert statuses[-1] == 410
    assert time.monotonic() - paused_at <= 0.5 + 0.3


@pytest.mark.django_db(transaction=True)
def test_database_outage_keeps_known_links_redirecting_and_their_clicks(client, spool_dir):
    # given: one link resolved before the outage, one never seen
    known = make_link()
    unseen = make_link()
    assert client.get(f"/{known.code}").status_code == 302
    original_port = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = "1"  # nothing listens there

    # when
    try:
        during_outage = client.get(f"/{known.code}")
        uncached = client.get(f"/{unseen.code}")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = original_port

    # then
    assert during_outage.status_code == 302
    assert uncached.status_code == 503
    assert uncached["Retry-After"]
    drain(spool_dir)
    click_id = parse_qs(urlsplit(during_outage["Location"]).query)["cid"][0]
    assert Click.objects.filter(click_id=click_id, link=known).count() == 1
    assert Click.objects.filter(link=known).count() == 2


@pytest.mark.django_db
def test_redis_outage_keeps_the_redirect_answering(client, settings):
    # given: a link already resolved, then Redis (the cache generation) becomes unreachable
    link = make_link()
    assert client.get(f"/{link.code}").status_code == 302
    settings.LINK_CACHE_CHECK_SECONDS = 0
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }

    # when
    response = client.get(f"/{link.code}")

    # then
    assert response.status_code == 302


@pytest.mark.django_db
def test_a_worker_forked_after_clicks_never_repeats_its_parents_next_click_ids(client, spool_dir):
    # given: the parent answered a click (the random characters of its next ids are drawn)
    link = make_link()
    client.get(f"/{link.code}")
    read_end, write_end = os.pipe()

    # when: a worker forked now and the parent each make the next clicks' ids
    child = os.fork()
    if child == 0:  # pragma: no cover (the forked worker)
        os.close(read_end)
        os.write(write_end, " ".join(click_id_generate() for _ in range(300)).encode())
        os._exit(0)
    os.close(write_end)
    parents = [click_id_generate() for _ in range(300)]
    with os.fdopen(read_end, "rb") as pipe:
        childs = pipe.read().decode().split()
    os.waitpid(child, 0)

    # then: no random part is handed out twice
    assert len(childs) == 300
    assert not {click_id[11:] for click_id in parents} & {click_id[11:] for click_id in childs}
