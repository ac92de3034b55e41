import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command

from tests.tracking.helpers import drain, make_link
from tracking.click_quality import flags_label, labelled_requests_read, quality_table
from tracking.models import Click
from tracking.preview_agents import (
    BOT_AGENTS,
    PERSON_AGENTS,
    PREVIEW_AGENTS,
    BotAgent,
    PersonAgent,
    PreviewAgent,
)
from tracking.services.flags import click_flags

EVALUATION_SET = Path(__file__).parent / "data" / "click_quality.csv"

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
def test_every_listed_preview_fetcher_is_a_preview_named_by_its_rule(agent: PreviewAgent):
    # given: the sample and where it was published
    assert agent.source

    # when
    flags = click_flags(user_agent=agent.sample, method="GET", purpose="")

    # then
    assert (flags.is_bot, flags.is_preview) == (False, True)
    assert flags.reason == f"rule:{agent.name}"


@pytest.mark.parametrize("agent", BOT_AGENTS, ids=[agent.name for agent in BOT_AGENTS])
def test_every_own_bot_rule_catches_its_sample(agent: BotAgent):
    # given: the sample and where it was published
    assert agent.source
    assert re.search(agent.pattern, agent.sample, re.IGNORECASE)

    # when
    flags = click_flags(user_agent=agent.sample, method="GET", purpose="")

    # then: a bot, by the lists when they know it, else by this rule
    assert (flags.is_bot, flags.is_preview) == (True, False)
    assert flags.reason.startswith(("device-detector:", "crawlerdetect:", "rule:"))


@pytest.mark.parametrize("agent", PERSON_AGENTS, ids=[agent.name for agent in PERSON_AGENTS])
def test_in_app_browsers_are_people(agent: PersonAgent):
    # when
    flags = click_flags(user_agent=agent.sample, method="GET", purpose="")

    # then
    assert agent.source
    assert flags == (False, False, "")


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        # Checkly's API checks (checklyhq.com/docs/monitoring/allowlisting), unknown to the lists.
        ("Checkly/1.0 (https://www.checklyhq.com)", "rule:monitor-named"),
        # Datadog documents this suffix for its browser tests (identify_synthetics_bots).
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/124.0.6367.60 Safari/537.36 DatadogSynthetics",
            "device-detector:",
        ),
        # Amazon's user-triggered fetcher (crawler-user-agents.json), unknown to both lists.
        (
            "Mozilla/5.0 (compatible; Amzn-User; +https://developer.amazon.com/)",
            "rule:ai-assistant",
        ),
        # Mistral's user-triggered fetcher (docs.mistral.ai/robots).
        (
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; MistralAI-User/1.0; "
            "+https://docs.mistral.ai/robots)",
            "device-detector:MistralAI-User",
        ),
        # Device-detector's list names Uptime Robot (its fixtures, bots.yml).
        (
            "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
            "device-detector:",
        ),
        ("Snipcart/1.0", "rule:not-a-browser"),
    ],
)
def test_monitors_and_assistants_are_bots_with_the_reason(user_agent, reason):
    # when
    flags = click_flags(user_agent=user_agent, method="GET", purpose="")

    # then
    assert flags.is_bot
    assert not flags.is_preview
    assert flags.reason.startswith(reason)


@pytest.mark.parametrize("user_agent", PEOPLE)
def test_people_are_neither_bots_nor_previews(user_agent):
    # when
    flags = click_flags(user_agent=user_agent, method="GET", purpose="")

    # then
    assert not flags.is_bot
    assert not flags.is_preview
    assert flags.reason == ""


@pytest.mark.parametrize("user_agent", BOTS)
def test_crawlers_and_scripts_are_bots(user_agent):
    # when
    flags = click_flags(user_agent=user_agent, method="GET", purpose="")

    # then
    assert flags.is_bot
    assert flags.reason


@pytest.mark.parametrize(
    ("header", "value"),
    [
        # Chrome (developer.chrome.com/docs/web-platform/prerender-pages), the legacy Purpose,
        # Safari's Top Sites preview, Firefox's link prefetching (developer.mozilla.org).
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
    assert click.flag_reason == f"header:{value}"


@pytest.mark.django_db
def test_a_request_without_a_user_agent_header_is_a_bot(client, spool_dir):
    # given
    link = make_link()

    # when: Django's test client sends no User-Agent unless told to
    response = client.get(f"/{link.code}")
    drain(spool_dir)

    # then
    assert response.status_code == 302
    click = Click.objects.get()
    assert (click.is_bot, click.is_preview, click.flag_reason) == (True, False, "no-user-agent")


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
    flags = {
        click.user_agent: (click.is_bot, click.is_preview, click.flag_reason)
        for click in Click.objects.all()
    }
    assert flags[imessage.sample] == (False, True, "rule:apple-imessage")
    assert flags[BOTS[0]][:2] == (True, False)
    assert flags[PEOPLE[1]] == (False, False, "")


@pytest.mark.django_db
def test_the_evaluation_set_clicked_through_the_redirect_meets_the_targets(
    client, api_client, spool_dir
):
    # given: several hundred labelled user agents and header cases from public sources
    # (tests/tracking/data/README.md), one link
    requests = labelled_requests_read(path=EVALUATION_SET)
    assert len(requests) >= 500
    link = make_link()

    # when: each one clicks the link, the drainer runs, and the flags are read back
    # from the clicks API
    click_ids = []
    for request in requests:
        meta = request.meta()
        if request.method == "HEAD":
            response = client.head(f"/{link.code}", **meta)
        else:
            response = client.get(f"/{link.code}", **meta)
        assert response.status_code == 302
        click_ids.append(parse_qs(urlsplit(response["Location"]).query)["cid"][0])
    drain(spool_dir)
    read_back = {}
    page = f"/api/v1/clicks/?code={link.code}&page_size=1000"
    while page:
        body = api_client.get(page).json()
        read_back.update({click["click_id"]: click for click in body["results"]})
        page = body["next"]
    predicted = {
        index: flags_label(
            is_bot=read_back[click_id]["is_bot"], is_preview=read_back[click_id]["is_preview"]
        )
        for index, click_id in enumerate(click_ids)
    }
    table = quality_table(requests=requests, predicted=predicted)

    # then
    assert table.human_false_positives == 0, table.misses
    assert table.recall("preview") >= 0.98, table.misses
    assert table.recall("bot") >= 0.98, table.misses
    flagged = [click for click in read_back.values() if click["is_bot"] or click["is_preview"]]
    assert all(click["flag_reason"] for click in flagged)


def test_the_quality_command_prints_the_table(capsys):
    # when
    call_command("click_quality", "--file", str(EVALUATION_SET))

    # then
    output = capsys.readouterr().out
    assert "| human |" in output
    assert "Human false positives: 0" in output


@pytest.mark.parametrize(
    "user_agent",
    [
        # Slack's desktop app (Electron) and its Android webview: crawlerdetect lists "Slack/".
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Slack/4.35.131 Chrome/118.0.5993.159 Electron/27.1.3 Safari/537.36 Sonic "
        "Slack_SSB/4.35.131",
        "Mozilla/5.0 (Linux; Android 13; Pixel 6) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36 Slack/23.12.10",
    ],
)
def test_apps_a_list_calls_crawlers_are_people_in_their_own_webview(user_agent):
    # when
    flags = click_flags(user_agent=user_agent, method="GET", purpose="")

    # then
    assert flags == (False, False, "")
