"""Bot and preview flags of a click: decided off the hot path, by the drainer and the import.

Flags never drop a click; they only keep it out of attribution and out of human counts.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from crawlerdetect import CrawlerDetect

from tracking.preview_agents import PREVIEW_AGENTS

# Clients crawlerdetect does not know, or that we want named here so a test pins them.
OWN_BOT_PATTERNS: tuple[str, ...] = (
    r"HeadlessChrome",
    r"PhantomJS",
    r"Playwright",
    r"Puppeteer",
    r"Selenium",
    r"\bcurl/",
    r"\bWget/",
    r"python-requests",
    r"python-urllib",
    r"aiohttp",
    r"python-httpx",
    r"Go-http-client",
    r"node-fetch",
    r"\baxios/",
    r"Apache-HttpClient",
    r"libwww-perl",
    r"^Java/",
)

_OWN_BOTS = re.compile("|".join(OWN_BOT_PATTERNS), re.IGNORECASE)
_PREVIEWS = re.compile("|".join(f"(?:{agent.pattern})" for agent in PREVIEW_AGENTS), re.IGNORECASE)
_crawler_detect = CrawlerDetect()

# Values of Purpose / Sec-Purpose / X-Purpose / X-Moz that mean "not a person yet".
_PREFETCH_WORDS = ("prefetch", "preview", "prerender")


class ClickFlags(NamedTuple):
    is_bot: bool
    is_preview: bool


def preview_agent_matches(user_agent: str) -> bool:
    return _PREVIEWS.search(user_agent) is not None


@lru_cache(maxsize=65_536)
def user_agent_is_bot(user_agent: str) -> bool:
    """An empty user agent is a script: browsers and preview fetchers always send one."""
    if not user_agent.strip():
        return True
    if _OWN_BOTS.search(user_agent):
        return True
    return bool(_crawler_detect.isCrawler(user_agent))


@lru_cache(maxsize=65_536)
def _user_agent_is_preview(user_agent: str) -> bool:
    return preview_agent_matches(user_agent)


def click_flags(*, user_agent: str, method: str, purpose: str) -> ClickFlags:
    """`purpose` is the first of the Sec-Purpose, Purpose, X-Purpose, X-Moz headers sent."""
    purpose = purpose.lower()
    is_preview = (
        method.upper() == "HEAD"
        or any(word in purpose for word in _PREFETCH_WORDS)
        or _user_agent_is_preview(user_agent)
    )
    return ClickFlags(is_bot=user_agent_is_bot(user_agent), is_preview=is_preview)
