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
