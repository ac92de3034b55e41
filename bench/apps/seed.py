"""`python -m bench.apps.seed`: one network, offer, campaign, creative, contact, message and
link in the bench database; prints them as JSON."""

import json
import sys

import django


def main() -> None:
    django.setup()
    from django.utils import timezone

    from attribution.models import Network, Offer
    from tracking.models import Campaign, Contact, Creative, Link, Message

    network = Network.objects.create(slug="bench", name="Bench", postback_token_hash="0" * 64)
    offer = Offer.objects.create(
        name="Bench offer",
        network=network,
        destination_url="https://offer.example.com/land?cid={click_id}&m={message_id}&c={campaign}",
    )
    campaign = Campaign.objects.create(slug="bench", name="Bench")
    creative = Creative.objects.create(campaign=campaign, slug="bench", name="Bench")
    contact = Contact.objects.create(phone="+12015550100")
    message = Message.objects.create(
        contact=contact,
        campaign=campaign,
        creative=creative,
        offer=offer,
        channel="sms",
        sent_at=timezone.now(),
    )
    link = Link.objects.create(message=message, code="benchAbc2")
    # The naive redirect inserts into its own link, so the clicks of ours can be counted apart.
    naive = Link.objects.create(message=message, code="benchNaive2")
    sys.stdout.write(
        json.dumps(
            {
                "code": link.code,
                "link_id": link.pk,
                "naive_code": naive.code,
                "offer_id": offer.pk,
            }
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
