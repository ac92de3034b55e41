from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tracking.models import Link, Message


@pytest.mark.django_db
def test_demo_setup_creates_the_login_from_the_environment_and_a_small_demo(monkeypatch):
    # given
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "boss")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-pass-word")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "boss@example.com")
    monkeypatch.setenv("PORT", "8123")

    # when
    call_command("demo_setup", "--small", stdout=StringIO())
    call_command("demo_setup", "--small", stdout=StringIO())
    banner = StringIO()
    call_command("demo_banner", stdout=banner)

    # then
    user = get_user_model().objects.get(username="boss")
    assert user.is_staff and user.is_superuser
    assert user.check_password("s3cret-pass-word")
    assert user.email == "boss@example.com"
    assert Message.objects.count() == 50
    assert Link.objects.count() == 50
    text = banner.getvalue()
    assert "http://127.0.0.1:8123/admin/" in text
    assert "boss / s3cret-pass-word" in text


@pytest.mark.django_db
def test_demo_setup_without_a_password_keeps_a_generated_one(monkeypatch, tmp_path, settings):
    # given
    settings.BASE_DIR = tmp_path
    monkeypatch.delenv("DJANGO_SUPERUSER_USERNAME", raising=False)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)

    # when
    call_command("demo_setup", "--no-data", stdout=StringIO())
    first = (tmp_path / ".run" / "admin-password").read_text().strip()
    call_command("demo_setup", "--no-data", stdout=StringIO())
    banner = StringIO()
    call_command("demo_banner", stdout=banner)

    # then
    assert len(first) >= 12
    assert (tmp_path / ".run" / "admin-password").read_text().strip() == first
    assert get_user_model().objects.get(username="admin").check_password(first)
    assert f"admin / {first}" in banner.getvalue()
