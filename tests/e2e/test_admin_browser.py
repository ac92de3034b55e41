from datetime import timedelta

from django.utils import timezone

from tests.factories import (
    ClickFactory,
    ContactFactory,
    LinkFactory,
    MessageFactory,
)


def test_operator_opens_a_contacts_journey_in_chromium(logged_in_page, artifacts_dir):
    # given
    contact = ContactFactory.create()
    message = MessageFactory.create(contact=contact)
    link = LinkFactory.create(message=message)
    ClickFactory.create(link=link, occurred_at=timezone.now() - timedelta(hours=1))

    # when
    page = logged_in_page(f"/admin/reports/journey/{contact.pk}/")

    # then
    assert page.locator("tr.click-row").count() == 1
    page.screenshot(path=str(artifacts_dir / "journey.png"), full_page=True)
