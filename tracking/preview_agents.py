"""Link-preview fetchers and security scanners: the one list `is_preview` is decided from.

Each entry is (name, pattern, a real user agent it must match). The pattern is a
case-insensitive regular expression searched anywhere in the user agent. The sample
is what `tests/tracking/test_flags.py` checks, one test per entry, so adding an
entry means adding the string it was seen with.

Scanners (Proofpoint, Mimecast, Barracuda, Microsoft Defender Safe Links) often
fetch with a plain browser user agent; only the requests that name themselves are
caught here, together with `HEAD` requests and prefetch headers (see flags.py).
"""

from __future__ import annotations

from typing import NamedTuple


class PreviewAgent(NamedTuple):
    name: str
    pattern: str
    sample: str


PREVIEW_AGENTS: tuple[PreviewAgent, ...] = (
    # iMessage fetches link previews with a desktop Safari UA that also claims to be
    # Facebook's and Twitter's crawlers, so sites serve it their Open Graph tags.
    PreviewAgent(
        "apple-imessage",
        r"facebookexternalhit/\S+ Facebot Twitterbot",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 "
        "(KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 "
        "Facebot Twitterbot/1.0",
    ),
    PreviewAgent("whatsapp", r"\bWhatsApp/", "WhatsApp/2.23.20.0 A"),
    PreviewAgent(
        "facebookexternalhit",
        r"facebookexternalhit|\bFacebot\b|meta-externalagent",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    ),
    PreviewAgent(
        "slack",
        r"Slackbot-LinkExpanding|Slack-ImgProxy",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    ),
    PreviewAgent("telegram", r"TelegramBot", "TelegramBot (like TwitterBot)"),
    PreviewAgent("twitter", r"Twitterbot", "Twitterbot/1.0"),
    PreviewAgent(
        "discord",
        r"Discordbot",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    ),
    PreviewAgent(
        "skype-teams",
        r"SkypeUriPreview",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
        "skype-url-preview@microsoft.com",
    ),
    PreviewAgent(
        "google-page-renderer",
        r"Google-PageRenderer",
        "Mozilla/5.0 (Linux; Android 11; Pixel 5) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/90.0.4430.91 Mobile Safari/537.36 (compatible; Google-PageRenderer Google "
        "(+https://developers.google.com/+/web/snippet/))",
    ),
    PreviewAgent(
        "linkedin",
        r"LinkedInBot",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    ),
    PreviewAgent(
        "snapchat",
        r"Snap URL Preview Service",
        "Mozilla/5.0 (compatible; Snap URL Preview Service; bot; snapchat; "
        "https://developers.snap.com/robots)",
    ),
    PreviewAgent(
        "bing-preview",
        r"BingPreview",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b",
    ),
    # Security scanners below are matched on the product name they put in the user
    # agent when they do; the samples show that token in context, they are not
    # captures of every form those products send.
    PreviewAgent(
        "proofpoint",
        r"Proofpoint",
        "Mozilla/5.0 (compatible; Proofpoint URL Defense)",
    ),
    PreviewAgent("mimecast", r"Mimecast", "Mimecast-URL-Protect/1.0"),
    PreviewAgent(
        "barracuda",
        r"Barracuda",
        "Mozilla/5.0 (compatible; Barracuda Sentinel Link Protection)",
    ),
    PreviewAgent(
        "microsoft-safelinks",
        r"SafeLinks|Microsoft Office Protocol Discovery|ms-office; MSOffice",
        "Microsoft Office Protocol Discovery",
    ),
    PreviewAgent(
        "google-safe-browsing",
        r"Google-Safety|Google-Read-Aloud",
        "Google-Safety",
    ),
)
