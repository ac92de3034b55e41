"""Bot and preview flags of a click, with the reason: decided off the hot path, by the
drainer and the import (the redirect only spools the raw user agent and headers).

Flags never drop a click; they only keep it out of attribution and out of human counts.
A click is at most one of bot or preview: a preview (a link unfurler, a security
scanner, a prefetch) is `is_preview` and not `is_bot`, so reports and the API tell
them apart. Order of decision, first match wins:

1. a prefetch header (`Sec-Purpose`, `Purpose`, `X-Purpose`, `X-Moz`): preview;
2. no user agent at all: bot;
3. an in-app browser of a social or messaging app (`PERSON_AGENTS`): person, unless
   one of our bot rules names the fetcher (the lists know app names as crawlers too);
4. our preview list (`PREVIEW_AGENTS`): the lists below only say "automated";
5. the maintained lists: Matomo's device-detector, then crawlerdetect: bot;
6. our bot rules (`BOT_AGENTS`) for what those lists miss: bot;
7. a `HEAD` request from anything else: preview (browsers never send one for a link).

The reason is `<source>:<name>`, e.g. `rule:slack`, `device-detector:UptimeRobot`,
`crawlerdetect:curl`, `header:prefetch`; empty for a person.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import NamedTuple

from crawlerdetect import CrawlerDetect
from device_detector.parser.device.bot import Bot as DeviceDetectorBot
from device_detector.utils import clean_ua

from tracking.preview_agents import BOT_AGENTS, PERSON_AGENTS, PREVIEW_AGENTS

FLAG_REASON_MAX = 100
# The one own bot rule an in-app browser's token overrides (an app's webview may use a
# user agent of its own); every other own bot rule names the fetcher.
NOT_A_BROWSER = "not-a-browser"

logger = logging.getLogger(__name__)


def _named_alternation(rules: tuple[tuple[str, str, str, str], ...]) -> re.Pattern[str]:
    # One regex with a named group per rule: a single pass tells which rule matched.
    return re.compile(
        "|".join(f"(?P<r{index}>{rule[1]})" for index, rule in enumerate(rules)), re.IGNORECASE
    )


_PREVIEWS = _named_alternation(PREVIEW_AGENTS)
_BOTS = _named_alternation(BOT_AGENTS)
_PEOPLE = _named_alternation(PERSON_AGENTS)
_crawler_detect = CrawlerDetect()

# Values of Purpose / Sec-Purpose / X-Purpose / X-Moz that mean "not a person yet":
# Chrome's `Sec-Purpose: prefetch` and `prefetch;prerender`, the older `Purpose: prefetch`,
# Safari's `X-Purpose: preview`, Firefox's `X-Moz: prefetch`.
_PREFETCH_WORDS = ("prefetch", "preview", "prerender")


class ClickFlags(NamedTuple):
    is_bot: bool
    is_preview: bool
    reason: str = ""


HUMAN = ClickFlags(is_bot=False, is_preview=False, reason="")


def _matched_rule(pattern: re.Pattern[str], rules: tuple[tuple[str, ...], ...], text: str) -> str:
    match = pattern.search(text)
    if match is None or match.lastgroup is None:
        return ""
    return rules[int(match.lastgroup[1:])][0]


def preview_agent_matches(user_agent: str) -> bool:
    return _PREVIEWS.search(user_agent) is not None


def _device_detector_bot(user_agent: str) -> str:
    try:
        bot = DeviceDetectorBot(clean_ua(user_agent, user_agent.lower()), None).parse()
    except Exception:
        # The list's parser is third-party code: a bug in it must not stop the drainer, and
        # the other lists and rules still decide. Said once per agent (the caller caches).
        logger.warning("device-detector could not parse a user agent", exc_info=True)
        return ""
    if not bot.is_bot():
        return ""
    return str(bot.ua_data.get("name") or "bot")


def _crawlerdetect_bot(user_agent: str) -> str:
    if not _crawler_detect.isCrawler(user_agent):
        return ""
    matches = _crawler_detect.getMatches()
    return str(matches[0] if isinstance(matches, list) and matches else matches or "crawler")


@lru_cache(maxsize=65_536)
def _user_agent_flags(user_agent: str) -> ClickFlags | None:
    """Flags the user agent alone decides; None when it looks like a person's browser."""
    if not user_agent.strip():
        return ClickFlags(is_bot=True, is_preview=False, reason="no-user-agent")
    own_rule = _matched_rule(_BOTS, BOT_AGENTS, user_agent)
    if _PEOPLE.search(user_agent) and own_rule in ("", NOT_A_BROWSER):
        return HUMAN
    if name := _matched_rule(_PREVIEWS, PREVIEW_AGENTS, user_agent):
        return ClickFlags(is_bot=False, is_preview=True, reason=f"rule:{name}")
    if name := _device_detector_bot(user_agent):
        return ClickFlags(is_bot=True, is_preview=False, reason=f"device-detector:{name}")
    if name := _crawlerdetect_bot(user_agent):
        return ClickFlags(is_bot=True, is_preview=False, reason=f"crawlerdetect:{name}")
    if own_rule:
        return ClickFlags(is_bot=True, is_preview=False, reason=f"rule:{own_rule}")
    return None


def user_agent_is_bot(user_agent: str) -> bool:
    flags = _user_agent_flags(user_agent)
    return flags is not None and flags.is_bot


def click_flags(*, user_agent: str, method: str, purpose: str) -> ClickFlags:
    """`purpose` is the first of the Sec-Purpose, Purpose, X-Purpose, X-Moz headers sent."""
    if purpose:
        lowered = purpose.lower()
        if any(word in lowered for word in _PREFETCH_WORDS):
            return ClickFlags(is_bot=False, is_preview=True, reason=f"header:{lowered[:40]}")
    flags = _user_agent_flags(user_agent)
    if flags is not None and flags is not HUMAN:
        return ClickFlags(flags.is_bot, flags.is_preview, flags.reason[:FLAG_REASON_MAX])
    if method.upper() == "HEAD":
        return ClickFlags(is_bot=False, is_preview=True, reason="head-request")
    return HUMAN
