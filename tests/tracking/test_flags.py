import pytest

from tests.tracking.helpers import drain, make_link
from tracking.models import Click
from tracking.preview_agents import PREVIEW_AGENTS, PreviewAgent
from tracking.services.flags import click_flags

PEOPLE = [
    # iPhone Safari, Android Chrome, Samsung Internet, desktop Firefox, Gmail's in-app browser.
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 GSA/310.0.621847700 Mobile/15E148 Safari/604.1",
]

BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/120.0.6099.109 Safari/537.36",
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "",
]


pytestmark = pytest.mark.usefixtures("spool_dir")


@pytest.mark.parametrize("agent", PREVIEW_AGENTS, ids=[agent.name for agent in PREVIEW_AGENTS])
def test_every_listed_preview_fetcher_is_flagged_as_a_preview(agent: PreviewAgent):
    # when
    flags = click_flags(user_agent=agent.sample, method="GET", purpose="")

    # then
    assert flags.is_preview


@pytest.mark.parametrize("user_agent", PEOPLE)
def test_people_are_neither_bots_nor_previews(user_agent):
    # when
    flags = click_flags(user_agent=user_agent, method="GET", purpose="")

    # then
    assert not flags.is_bot
    assert not flags.is_preview


@pytest.mark.parametrize("user_agent", BOTS)
def test_crawlers_and_scripts_are_bots(user_agent):
    # when
    flags = click_flags(user_agent=user_agent, method="GET", purpose="")

    # then
    assert flags.is_bot


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("HTTP_PURPOSE", "prefetch"),
        ("HTTP_SEC_PURPOSE", "prefetch"),
        ("HTTP_SEC_PURPOSE", "prefetch;prerender"),
        ("HTTP_X_PURPOSE", "preview"),
        ("HTTP_X_MOZ", "prefetch"),
    ],
)
@pytest.mark.django_db
def test_prefetch_headers_make_a_browser_request_a_preview(client, spool_dir, header, value):
    # given
    link = make_link()

    # when
    response = client.get(f"/{link.code}", HTTP_USER_AGENT=PEOPLE[0], **{header: value})
    drain(spool_dir)

    # then
    assert response.status_code == 302
    click = Click.objects.get()
    assert click.is_preview
    assert not click.is_bot


@pytest.mark.django_db
def test_previews_and_bots_still_get_their_redirect_and_are_kept_flagged(client, spool_dir):
    # given
    link = make_link()
    imessage = next(agent for agent in PREVIEW_AGENTS if agent.name == "apple-imessage")

    # when
    responses = [
        client.get(f"/{link.code}", HTTP_USER_AGENT=imessage.sample),
        client.get(f"/{link.code}", HTTP_USER_AGENT=BOTS[0]),
        client.get(f"/{link.code}", HTTP_USER_AGENT=PEOPLE[1]),
    ]
    drain(spool_dir)

    # then
    assert [response.status_code for response in responses] == [302, 302, 302]
    flags = {click.user_agent: (click.is_bot, click.is_preview) for click in Click.objects.all()}
    assert flags[imessage.sample][1] is True
    assert flags[BOTS[0]] == (True, False)
    assert flags[PEOPLE[1]] == (False, False)
