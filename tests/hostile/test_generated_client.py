"""A client generated from the live OpenAPI document drives a whole flow, no hand-written HTTP.

What an integrator does: fetch `/api/v1/schema/`, run openapi-python-client on it, and call
the API through the generated functions and models against the real server.
"""

import datetime
import importlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.server import ApiServer, staff_token


def _generate(server: ApiServer, token: str, directory: Path) -> str:
    request = urllib.request.Request(  # noqa: S310 (our own server)
        f"{server.url}/api/v1/schema/?format=json", headers={"Authorization": f"Token {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
        document = json.load(answer)
    (directory / "openapi.json").write_text(json.dumps(document))
    subprocess.run(
        [
            str(Path(sys.executable).parent / "openapi-python-client"),
            "generate",
            "--path",
            str(directory / "openapi.json"),
            "--meta",
            "none",
            "--output-path",
            str(directory / "creditflow_client"),
        ],
        cwd=directory,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return "creditflow_client"


def _module(package: str, name: str) -> Any:
    return importlib.import_module(f"{package}.{name}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_generated_client_drives_the_whole_flow(tmp_path):
    # given: a real server, and a client generated from its own document
    token = staff_token()
    server = ApiServer().start()
    try:
        package = _generate(server, token, tmp_path)
        sys.path.insert(0, str(tmp_path))
        try:
            _drive(package, server.url, token)
        finally:
            sys.path.remove(str(tmp_path))
            for name in [name for name in sys.modules if name.startswith(package)]:
                del sys.modules[name]
    finally:
        server.stop()


def _drive(package: str, base_url: str, token: str) -> None:
    client_module = _module(package, "client")
    models = _module(package, "models")
    api = f"{package}.api"
    client = client_module.AuthenticatedClient(base_url=base_url, token=token, prefix="Token")

    # when: network, offer, campaign, creative
    network = _module(api, "networks.networks_create").sync(
        client=client, body=models.NetworkRequest(slug="acme", name="Acme", currency="USD")
    )
    offer = _module(api, "offers.offers_create").sync(
        client=client,
        body=models.OfferRequest(
            name="Loans",
            network=network.id,
            destination_url="https://offer.example.com/land?cid={click_id}",
            attribution_model=models.AttributionModelEnum.LAST_CLICK,
        ),
    )
    campaign = _module(api, "campaigns.campaigns_create").sync(
        client=client, body=models.CampaignRequest(slug="spring", name="Spring")
    )
    creative = _module(api, "creatives.creatives_create").sync(
        client=client,
        body=models.CreativeRequest(
            campaign=campaign.id, slug="short", name="Short", body="Hi {link}"
        ),
    )
    # a bulk of messages
    sent_at = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
    messages = _module(api, "messages.messages_create_bulk").sync(
        client=client,
        body=[
            models.MessageInputRequest(
                contact=models.ContactInputRequestType0(phone=f"+1201555{number:04d}"),
                channel=models.ChannelEnum.SMS,
                campaign=campaign.slug,
                creative=creative.slug,
                offer=offer.id,
                sent_at=sent_at,
                external_id=f"send-{number}",
            )
            for number in range(20)
        ],
    )
    # a click import
    imported = _module(api, "clicks.clicks_import").sync(
        client=client,
        body=[
            models.ClickImportItemRequest(
                code=message.links[0].code,
                occurred_at=sent_at + datetime.timedelta(minutes=5),
                user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
                ip="203.0.113.7",
            )
            for message in messages[:5]
        ],
    )
    clicks = _module(api, "clicks.clicks_list").sync(client=client, message=messages[0].id)
    conversions = _module(api, "conversions.conversions_list").sync(
        client=client, network=network.slug
    )
    report = _module(api, "reports.reports_daily").sync(
        client=client,
        dimension=models.ReportsDailyDimension.CAMPAIGN,
        start=datetime.date(2026, 3, 1),
        end=datetime.date(2026, 3, 31),
    )
    unknown = _module(api, "offers.offers_retrieve").sync(client=client, id=999_999)

    # then: typed answers all the way
    assert network.slug == "acme"
    assert offer.network == network.id
    assert creative.campaign == campaign.id
    assert len(messages) == 20
    assert all(message.links[0].short_url.endswith(message.links[0].code) for message in messages)
    assert len(imported.click_ids) == 5
    assert [click.click_id for click in clicks.results] == [imported.click_ids[0]]
    assert conversions.count == 0
    assert report.count == len(report.results)
    assert isinstance(unknown, models.Error)
    assert unknown.error
