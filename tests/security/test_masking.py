import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from config.roles import roles_setup
from tracking.masking import mask_email, mask_phone


@pytest.fixture
def people(db):
    roles_setup()
    users = get_user_model().objects
    operator = users.create_user(username="op", password="x" * 12, is_staff=True)
    operator.groups.add(Group.objects.get(name="operator"))
    analyst = users.create_user(username="an", password="x" * 12, is_staff=True)
    analyst.groups.add(Group.objects.get(name="analyst"))
    admin = users.create_user(username="ad", password="x" * 12, is_staff=True, is_superuser=True)
    return {"operator": operator, "analyst": analyst, "superuser": admin}


@pytest.mark.parametrize(
    ("person", "phone", "email"),
    [
        ("operator", "+12015550123", "jane.doe@example.com"),
        ("superuser", "+12015550123", "jane.doe@example.com"),
        ("analyst", "+1201•••0123", "j•••@example.com"),
    ],
)
def test_personal_data_is_masked_for_users_without_the_permission(people, person, phone, email):
    # when
    shown_phone = mask_phone("+12015550123", people[person])
    shown_email = mask_email("jane.doe@example.com", people[person])

    # then
    assert shown_phone == phone
    assert shown_email == email


def test_nothing_to_mask_shows_nothing(people):
    # when / then
    assert mask_phone(None, people["analyst"]) == ""
    assert mask_email("", people["analyst"]) == ""
    assert mask_phone("+4930123", people["analyst"]) == "+4•••23"
