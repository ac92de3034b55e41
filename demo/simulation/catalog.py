"""What the demo is made of: networks, offers, campaigns, creatives, user agents.

`simulation_catalog_ensure` creates the catalog through the services, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from attribution.models import Network, Offer
from attribution.services.catalog import network_create, network_rotate_token, offer_create
from tracking.models import Campaign, Creative, Message
from tracking.services.campaigns import campaign_create, creative_create

UA_IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
UA_ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.6367.113 Mobile Safari/537.36"
)
# A Gmail reader on a desktop: the click opens in their own browser.
UA_DESKTOP_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
)
UA_MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Safari/605.1.15"
)
UA_IMESSAGE_PREVIEW = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 "
    "(KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 "
    "Facebot Twitterbot/1.0"
)
UA_WHATSAPP_PREVIEW = "WhatsApp/2.24.8.78 A"
UA_BOTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "python-requests/2.31.0",
    "curl/8.5.0",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
)


@dataclass(frozen=True)
class DemoNetwork:
    slug: str
    name: str
    # "query": GET with the network's own parameter names; "json": POST JSON + header token.
    style: str


@dataclass(frozen=True)
class DemoOffer:
    key: str
    name: str
    network: str
    attribution_model: str
    click_window_days: int
    sms_window_days: int
    email_window_days: int
    payout: Decimal
    conversion_rate: float
    path: str


@dataclass(frozen=True)
class DemoCreative:
    slug: str
    name: str
    body: str
    # Multiplies the campaign's click rate: the A/B difference the report should show.
    appeal: float


@dataclass(frozen=True)
class DemoCampaign:
    slug: str
    name: str
    channels: tuple[str, ...]
    offers: tuple[str, ...]
    creatives: tuple[DemoCreative, ...]
    # Chance that a contact gets this campaign on a given day.
    daily_reach: float


NETWORKS = (
    DemoNetwork("demo-adnet", "AdNet (demo)", "query"),
    DemoNetwork("demo-leadhub", "LeadHub (demo)", "json"),
)
OFFERS = (
    DemoOffer(
        "solar", "Solar quotes (demo)", "demo-adnet", "first_click", 30, 1, 5,
        Decimal("42.00"), 0.12, "solar",
    ),
    DemoOffer(
        "card", "Cashback card (demo)", "demo-adnet", "last_click", 7, 1, 5,
        Decimal("85.00"), 0.1, "card",
    ),
    DemoOffer(
        "mealkit", "Meal kit (demo)", "demo-leadhub", "cooperative", 14, 1, 5,
        Decimal("12.50"), 0.22, "meals",
    ),
    DemoOffer(
        "vpn", "VPN trial (demo)", "demo-leadhub", "last_click", 3, 1, 3,
        Decimal("6.00"), 0.25, "vpn",
    ),
)  # fmt: skip
CAMPAIGNS = (
    DemoCampaign(
        "demo-spring-sale",
        "Spring sale (demo)",
        channels=("sms", "email"),
        offers=("mealkit",),
        creatives=(
            DemoCreative("short", "Short copy", "Fresh meals, 50% off: {link}", 1.0),
            DemoCreative("emoji", "Emoji copy", "🥗 Half-price dinners this week {link}", 1.35),
        ),
        daily_reach=0.30,
    ),
    DemoCampaign(
        "demo-flash-sms",
        "Flash deals SMS (demo)",
        channels=("sms",),
        offers=("card", "vpn"),
        creatives=(
            DemoCreative("urgent", "Urgent", "Today only: {link}", 1.2),
            DemoCreative("plain", "Plain", "A deal for you: {link}", 0.8),
        ),
        daily_reach=0.25,
    ),
    DemoCampaign(
        "demo-newsletter",
        "Weekly newsletter (demo)",
        channels=("email",),
        offers=("solar", "card"),
        creatives=(
            DemoCreative("digest", "Digest", "This week's picks: {link}", 1.0),
            DemoCreative("story", "Story", "How Sam cut her bills: {link}", 1.25),
        ),
        daily_reach=0.20,
    ),
)
AREA_CODES = ("201", "202", "212", "312", "415", "617", "713", "305", "206", "303")
# A few public-looking /8 blocks for client addresses (they are truncated to /24 anyway).
ADDRESS_BLOCKS = (24, 50, 67, 73, 98, 107, 174, 184)


@dataclass
class Catalog:
    networks: dict[str, tuple[Network, str]]
    offers: dict[str, Offer]


def simulation_exists() -> bool:
    """True once a simulation has sent messages: `make run` must not add a second demo."""
    return Message.objects.filter(campaign__slug__in=[c.slug for c in CAMPAIGNS]).exists()


def simulation_catalog_ensure() -> Catalog:
    """The demo networks, offers, campaigns and creatives, created through the services
    once. A network that already exists gets a new token: it is shown only at creation."""
    networks: dict[str, tuple[Network, str]] = {}
    for demo_network in NETWORKS:
        existing = Network.objects.filter(slug=demo_network.slug).first()
        if existing is None:
            networks[demo_network.slug] = network_create(
                slug=demo_network.slug, name=demo_network.name
            )
        else:
            token = network_rotate_token(network=existing, grace=timedelta(0))
            networks[demo_network.slug] = (existing, token)
    offers: dict[str, Offer] = {}
    for demo_offer in OFFERS:
        network = networks[demo_offer.network][0]
        offer = Offer.objects.filter(name=demo_offer.name, network=network).first()
        if offer is None:
            offer = offer_create(
                name=demo_offer.name,
                network=network,
                destination_url=(
                    f"https://offers.example.com/{demo_offer.path}"
                    "?click_id={click_id}&m={message_id}&c={campaign}&cr={creative}&ch={channel}"
                ),
                click_window_days=demo_offer.click_window_days,
                attribution_model=demo_offer.attribution_model,
                sms_window_days=demo_offer.sms_window_days,
                email_window_days=demo_offer.email_window_days,
                payout=demo_offer.payout,
            )
        offers[demo_offer.key] = offer
    for demo_campaign in CAMPAIGNS:
        campaign = Campaign.objects.filter(slug=demo_campaign.slug).first()
        if campaign is None:
            campaign = campaign_create(slug=demo_campaign.slug, name=demo_campaign.name)
        for demo_creative in demo_campaign.creatives:
            if not Creative.objects.filter(campaign=campaign, slug=demo_creative.slug).exists():
                creative_create(
                    campaign=campaign,
                    slug=demo_creative.slug,
                    name=demo_creative.name,
                    body=demo_creative.body,
                )
    return Catalog(networks=networks, offers=offers)
