import hashlib
from decimal import Decimal

import factory
from django.utils import timezone

from attribution.models import Network, Offer
from tracking.models import Campaign, Channel, Contact, Creative, Link, Message

TEST_POSTBACK_TOKEN = "test-postback-token-0123456789"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    phone = factory.Sequence(lambda n: f"+1201555{n % 10000:04d}" if n < 10000 else f"+1202{n:07d}")


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    slug = factory.Sequence(lambda n: f"campaign-{n}")
    name = factory.Sequence(lambda n: f"Campaign {n}")


class CreativeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Creative

    campaign = factory.SubFactory(CampaignFactory)
    slug = factory.Sequence(lambda n: f"creative-{n}")
    name = factory.Sequence(lambda n: f"Creative {n}")
    body = "Deal inside: {link}"


class NetworkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Network

    slug = factory.Sequence(lambda n: f"network-{n}")
    name = factory.Sequence(lambda n: f"Network {n}")
    postback_token_hash = hashlib.sha256(TEST_POSTBACK_TOKEN.encode()).hexdigest()
    token_hint = TEST_POSTBACK_TOKEN[-4:]


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Offer

    name = factory.Sequence(lambda n: f"Offer {n}")
    network = factory.SubFactory(NetworkFactory)
    destination_url = "https://offer.example.com/land?cid={click_id}&m={message_id}"
    payout = Decimal("10.00")


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    contact = factory.SubFactory(ContactFactory)
    creative = factory.SubFactory(CreativeFactory)
    campaign = factory.SelfAttribute("creative.campaign")
    offer = factory.SubFactory(OfferFactory)
    channel = Channel.SMS
    sent_at = factory.LazyFunction(timezone.now)


class LinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Link

    message = factory.SubFactory(MessageFactory)
    code = factory.Sequence(lambda n: f"code{n:06d}")


class ClickFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "tracking.Click"

    click_id = factory.Sequence(lambda n: f"click-{n:016d}")
    occurred_at = factory.LazyFunction(timezone.now)
    link = factory.SubFactory(LinkFactory)
    message = factory.SelfAttribute("link.message")
    contact = factory.SelfAttribute("link.message.contact")
    offer = factory.SelfAttribute("link.message.offer")
    channel = factory.SelfAttribute("link.message.channel")
    user_agent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Safari/604.1"
    ip = "203.0.113.0"


class ConversionFactory(factory.django.DjangoModelFactory):
    """A conversion as a worker leaves it: processed; pass `credited_click` to attribute it."""

    class Meta:
        model = "attribution.Conversion"

    network = factory.SubFactory(NetworkFactory)
    conversion_id = factory.Sequence(lambda n: f"conv-{n}")
    click_id = ""
    payout = Decimal("10.00")
    occurred_at = factory.LazyFunction(timezone.now)
    received_at = factory.LazyFunction(timezone.now)
    processed = True


class ConversionEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "attribution.ConversionEvent"

    conversion = factory.SubFactory(ConversionFactory)
    from_status = ""
    to_status = "approved"
    payout = Decimal("10.00")
    revenue_delta = Decimal("10.00")


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webhooks.WebhookEndpoint"

    url = factory.Sequence(lambda n: f"https://hooks.example.com/{n}")
    events = factory.LazyFunction(lambda: ["*"])
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class WebhookMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webhooks.WebhookMessage"

    event = factory.SubFactory(ConversionEventFactory)
    event_type = "conversion.decided"
    conversion = factory.SelfAttribute("event.conversion")
    body = "{}"
    created_at = factory.LazyFunction(timezone.now)


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webhooks.WebhookDelivery"

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    message = factory.SubFactory(WebhookMessageFactory)
    conversion_id = factory.SelfAttribute("message.conversion_id")
    sequence = factory.SelfAttribute("message.event_id")
    event_type = "conversion.decided"
    next_attempt_at = factory.LazyFunction(timezone.now)
    created_at = factory.LazyFunction(timezone.now)


class WebhookAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webhooks.WebhookAttempt"

    delivery = factory.SubFactory(WebhookDeliveryFactory)
    endpoint = factory.SelfAttribute("delivery.endpoint")
    attempted_at = factory.LazyFunction(timezone.now)
    status_code = 200
    succeeded = True
    latency_ms = 3
    response_start = "ok"


class WebhookResendFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "webhooks.WebhookResend"

    endpoint = factory.SubFactory(WebhookEndpointFactory)
