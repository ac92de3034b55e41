"""This project's own user-agent rules, for what the maintained lists do not decide.

crawlerdetect and Matomo's device-detector say "automated" for most fetchers, but
neither tells a link preview from a crawler, and both miss some monitors and AI
fetchers. Each entry is (name, pattern, a real user agent it must match, where
that user agent was published). Patterns are case-insensitive regular expressions
searched anywhere in the user agent. `tests/tracking/test_flags.py` checks every
sample, so adding an entry means adding the string it was seen with and its source.

Scanners (Proofpoint, Mimecast, Barracuda, Microsoft Defender Safe Links) often
fetch with a plain browser user agent; only the requests that name themselves are
caught here. The rest are caught by behaviour in the drainer (tracking/services/scanners.py).
"""

from __future__ import annotations

from typing import NamedTuple

CRAWLER_USER_AGENTS = "github.com/monperrus/crawler-user-agents (crawler-user-agents.json)"


class PreviewAgent(NamedTuple):
    name: str
    pattern: str
    sample: str
    source: str = CRAWLER_USER_AGENTS


# Link-preview fetchers (chat, social and mail-proxy unfurlers) and security scanners
# that name themselves: `is_preview`.
PREVIEW_AGENTS: tuple[PreviewAgent, ...] = (
    # iMessage fetches link previews with a desktop Safari UA that also claims to be
    # Facebook's and Twitter's crawlers, so sites serve it their Open Graph tags.
    PreviewAgent(
        "apple-imessage",
        r"facebookexternalhit/\S+ Facebot Twitterbot",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 "
        "(KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 "
        "Facebot Twitterbot/1.0",
        "developer.apple.com/library/archive/technotes/tn2444 (iMessage link presentation)",
    ),
    # Signal fetches its previews as "WhatsApp/2" so sites answer with Open Graph tags.
    PreviewAgent(
        "whatsapp-signal",
        r"\bWhatsApp\b(?!\.)",
        "WhatsApp/2.23.20.0 A",
    ),
    # LINE (line-poker) and KakaoTalk (kakaotalk-scrap) append their own token to Facebook's.
    PreviewAgent(
        "facebook-meta",
        r"facebook(?:externalhit|externalua|platform|catalog)|\bFacebot\b"
        r"|meta-external(?:agent|fetcher|hit)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "developers.facebook.com/docs/sharing/webmasters/web-crawlers",
    ),
    PreviewAgent(
        "slack",
        r"Slackbot|Slack-ImgProxy",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "api.slack.com/robots",
    ),
    PreviewAgent("telegram", r"TelegramBot", "TelegramBot (like TwitterBot)"),
    PreviewAgent(
        "twitter",
        r"Twitterbot",
        "Twitterbot/1.0",
        "developer.x.com/en/docs/x-for-websites/cards/guides/getting-started",
    ),
    PreviewAgent(
        "discord",
        r"Discordbot",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    ),
    PreviewAgent(
        "skype-teams",
        r"SkypeUriPreview|MicrosoftPreview|Teams(?:Bot|-LinkPreview)",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
        "skype-url-preview@microsoft.com",
    ),
    PreviewAgent(
        "google-page-renderer",
        r"Google-PageRenderer|Google Web Preview",
        "Mozilla/5.0 (Linux; Android 11; Pixel 5) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/90.0.4430.91 Mobile Safari/537.36 (compatible; Google-PageRenderer Google "
        "(+https://developers.google.com/+/web/snippet/))",
        "developers.google.com/search/docs/crawling-indexing/google-special-case-crawlers",
    ),
    PreviewAgent(
        "linkedin",
        r"LinkedInBot",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    ),
    PreviewAgent(
        "snapchat",
        r"Snap ?URL ?Preview",
        "Mozilla/5.0 (compatible; Snap URL Preview Service; bot; snapchat; "
        "https://developers.snap.com/robots)",
        "developers.snap.com/robots",
    ),
    PreviewAgent(
        "bing-preview",
        r"BingPreview",
        "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/534+ (KHTML, like Gecko) BingPreview/1.0b",
    ),
    PreviewAgent(
        "pinterest",
        r"Pinterest(?:bot)?/\d[^\[]*pinterest\.com",
        "Mozilla/5.0 (compatible; Pinterestbot/1.0; +http://www.pinterest.com/bot.html)",
    ),
    PreviewAgent(
        "reddit",
        r"redditbot",
        "Mozilla/5.0 (compatible; redditbot/1.0; +http://www.reddit.com/feedback)",
    ),
    PreviewAgent(
        "iframely-embedly",
        r"Iframely|Embedly",
        "Iframely/1.3.1 (+https://iframely.com/docs/about) Atlassian",
    ),
    # Gmail and Yahoo Mail fetch through their own proxies, not from the reader's device.
    PreviewAgent(
        "gmail-image-proxy",
        r"GoogleImageProxy",
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    ),
    PreviewAgent(
        "yahoo-mail",
        r"YahooMailProxy|Yahoo Link Preview",
        "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
        "help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
    ),
    # Viber's in-app browser ("Mozilla/5.0 ... Viber/<version>") is a person (PERSON_AGENTS).
    PreviewAgent("viber", r"\bViber(?:\b|UrlDownloader)", "Viber"),
    PreviewAgent(
        "vkontakte",
        r"vkShare",
        "Mozilla/5.0 (compatible; vkShare; +http://vk.com/dev/Share)",
        "vk.com/dev/Share",
    ),
    PreviewAgent(
        "mastodon",
        r"\(Mastodon/",
        "http.rb/2.2.2 (Mastodon/1.5.1; +https://example-masto-instance.org/)",
    ),
    PreviewAgent(
        "bluesky",
        r"Bluesky(?: Cardyb|PreviewBot|/)",
        "Mozilla/5.0 (compatible; Bluesky Cardyb/1.1; +mailto:support@bsky.app)",
        "github.com/bluesky-social/indigo (cmd/cardyb)",
    ),
    # Chatwork, Orlo, Buffer, Steam chat and the linkpreview.net API all name themselves so.
    PreviewAgent(
        "generic-link-preview",
        r"Link[ _-]?Preview|URL[ _-]?Preview|URL ?Lookup|page-preview-tool|Url ?Downloader",
        "Chatwork LinkPreview v1",
    ),
    # Google Messages (SMS and RCS on Android) fetches the preview of a link in a text.
    PreviewAgent(
        "google-messages",
        r"GoogleMessages",
        "Mozilla/5.0 (Linux; Android 11) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/99.0.4844.51 Mobile Safari/537.36 (compatible; GoogleMessages)",
        "crawlerdetect providers/crawlers.py lists the token; the sample shows it in context",
    ),
    PreviewAgent(
        "chrome-prefetch-proxy",
        r"Chrome Privacy Preserving Prefetch Proxy",
        "Chrome Privacy Preserving Prefetch Proxy",
        "developer.chrome.com/docs/privacy-security/private-prefetch-proxy",
    ),
    # Security scanners below are matched on the product name they put in the user
    # agent when they do; the samples show that token in context, they are not
    # captures of every form those products send.
    PreviewAgent(
        "proofpoint",
        r"Proofpoint",
        "Mozilla/5.0 (compatible; Proofpoint URL Defense)",
        "own: product name token",
    ),
    PreviewAgent("mimecast", r"Mimecast", "Mimecast-URL-Protect/1.0", "own: product name token"),
    PreviewAgent(
        "barracuda",
        r"Barracuda",
        "Mozilla/5.0 (compatible; Barracuda Sentinel Link Protection)",
        "own: product name token",
    ),
    PreviewAgent(
        "microsoft-safelinks",
        r"SafeLinks|Microsoft Office Protocol Discovery|Microsoft Office Existence Discovery"
        r"|ms-office; MSOffice",
        "Microsoft Office Protocol Discovery",
        "learn.microsoft.com/en-us/office/client-developer/shared/office-protocol-discovery",
    ),
    PreviewAgent(
        "google-safe-browsing",
        r"Google-Safety",
        "Google-Safety",
        "developers.google.com/search/docs/crawling-indexing/google-user-triggered-fetchers",
    ),
)


class BotAgent(NamedTuple):
    name: str
    pattern: str
    sample: str
    source: str = CRAWLER_USER_AGENTS


# Automated clients the lists miss or might miss: `is_bot`, checked after the lists.
BOT_AGENTS: tuple[BotAgent, ...] = (
    BotAgent(
        "headless-browser",
        r"HeadlessChrome|PhantomJS|Playwright|Puppeteer|Selenium|Chrome-Lighthouse|GTmetrix",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.6099.109 Safari/537.36",
        "developer.chrome.com/docs/chromium/headless",
    ),
    BotAgent(
        "http-library",
        r"\bcurl/|\bWget/|python-requests|python-urllib|aiohttp|python-httpx|Go-http-client"
        r"|node-fetch|\baxios/|Apache-HttpClient|libwww-perl|^Java/|^okhttp/|^Dart/|GuzzleHttp"
        r"|^Ruby|^PHP/|Scrapy|^undici|^Deno/|^Bun/|^reqwest",
        "python-requests/2.31.0",
        "own: default user agents of HTTP client libraries",
    ),
    # Uptime, synthetic and observability monitors.
    BotAgent(
        "monitor-named",
        r"UptimeRobot|Pingdom|pingbot|Datadog|NewRelic|New Relic|StatusCake|Site24x7|Checkly"
        r"|Freshping|HetrixTools|OhDear|updown\.io|Uptrends|Catchpoint|ThousandEyes"
        r"|Dynatrace|Ruxit|AppDynamics|CloudWatchSynthetics|Stackdriver|Sematext|Heartbeat"
        r"|Honeybadger|Montastic|PRTG|check_http|Zabbix|LogicMonitor|Nagios|Icinga|Gatus"
        r"|Blackbox Exporter|Prometheus|k6/|Grafana|OnlineOrNot|Cronitor|Better ?Stack|Hotjar",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/138.0.7204.168 Safari/537.36 DatadogSynthetics",
        "docs.datadoghq.com/synthetics/guide/identify_synthetics_bots",
    ),
    BotAgent(
        "monitor-generic",
        r"uptime|synthetic|\bmonitor|health ?check|status ?check|verif(?:y|ier|ication)\b",
        "Better Uptime Bot Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/74.0.3729.169 Safari/537.36",
    ),
    # AI assistants fetching on a user's behalf name themselves "<Vendor>-User".
    BotAgent(
        "ai-assistant",
        r"\b[A-Za-z]+-User\b|\b[A-Za-z]+User/\d|Claude-User|ChatGPT|OAI-SearchBot|GPTBot|Claude|anthropic"
        r"|Perplexity|MistralAI|DuckAssist|Gemini-Deep-Research|NotebookLM|GoogleAgent"
        r"|YouBot|cohere-ai|Bytespider|Kimi-|Manus-|Devin/|NovaAct|AmazonBuyForMe",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; MistralAI-User/1.0; "
        "+https://docs.mistral.ai/robots)",
        "docs.mistral.ai/robots",
    ),
    BotAgent(
        "security-scanner-named",
        r"watchTowr|BrandVerity|Qualys|Nessus|Nuclei|zgrab|masscan|Nmap|Acunetix|Burp ?Suite"
        r"|sqlmap|Nikto|Netsparker|Invicti|Detectify|OpenVAS",
        "Mozilla/5.0 (watchTowr; Windows NT 10.0; Win64; x64; rv:84.0) Gecko/20100101 Firefox/84.0",
    ),
    # Browsers never put a web or mail address in their user agent; fetchers do, to be reached.
    BotAgent(
        "address-in-user-agent",
        r"https?://|\bwww\.[a-z0-9-]+\.[a-z]|@[a-z0-9-]+\.[a-z]{2,}",
        "Mozilla/5.0 (compatible; AccessStatus/1.0; +https://www.accesslink.fr/page/a-propos-de-accessstatus/)",
    ),
    # A person's click comes from a browser: a Mozilla/ user agent, Opera's old form, or
    # a feature phone's (MIDP, CLDC, Opera Mini, UC). Anything else is a program.
    BotAgent(
        "not-a-browser",
        r"^(?!Mozilla/|Opera/|.*(?:MIDP|CLDC|Opera Mini|UCWEB|UCBrowser|UC Browser|BlackBerry"
        r"|Nokia|SAMSUNG-|SonyEricsson|NetFront|Obigo|Teleca|Profile/|Dorado|Maemo|Polaris"
        r"|UP\.Browser|MAUI|WAP Browser|MRE/))",
        "Snipcart/1.0",
        "developer.mozilla.org/en-US/docs/Web/HTTP/Headers/User-Agent (browser formats)",
    ),
    BotAgent(
        "self-declared",
        r"\b(?:bot|crawler|spider|scraper|fetcher|checker|validator)\b",
        "Mozilla/5.0 (compatible; ExampleFetcher checker)",
        "own: the words automated clients use for themselves",
    ),
)


class PersonAgent(NamedTuple):
    name: str
    pattern: str
    sample: str
    source: str


# In-app browsers are people. The lists have flagged some of their tokens (e.g. an
# app name that is also a crawler's); these win over the lists, never over our own
# preview or bot rules.
PERSON_AGENTS: tuple[PersonAgent, ...] = (
    PersonAgent(
        "in-app-browser",
        r"\bInstagram \d|\[FB_IAB/|\bFBAN/|\bFBAV/|\bFB4A\b|MessengerLite|\bMicroMessenger/"
        r"|BytedanceWebview|musical_ly|\bSnapchat/\d|\bTwitterAndroid\b|\bTwitter for iPhone"
        r"|LinkedInApp|\[Pinterest/|Pinterest for (?:Android|iOS)|\bLine/\d"
        r"|\bGSA/\d|\bTelegram-Android/|\bReddit/|\bTikTok\b|\bBarcelona \d|\bNAVER\(inapp"
        r"|\bKAKAOTALK[ /]\d|\bZalo\b|\bWeibo\b|^Mozilla/5\.0 .*\b(?:WhatsApp|Viber)/\d"
        # Slack's desktop app and its mobile webview (crawlerdetect lists any "Slack/").
        r"|Slack_SSB/|Safari/[\d.]+ Slack/\d",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/436.0.0.26.114;]",
        "device-detector fixtures mobile_apps.yml",
    ),
)
