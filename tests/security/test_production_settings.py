"""Production settings, checked in fresh processes: Django reads settings once per process."""

import functools
import json
import os
import secrets
import subprocess
import sys

from tests.processes import ROOT

# What a browser sees from production: run in a child process with production settings.
_PROBE = """
import json
import django
django.setup()
from django.test import Client

client = Client()
answers = {}
for name, path, extra in [
    ("http_login", "/admin/login/", {}),
    ("https_login", "/admin/login/", {"secure": True}),
    ("proxied_https_login", "/admin/login/", {"HTTP_X_FORWARDED_PROTO": "https"}),
    ("http_healthz", "/healthz", {}),
]:
    response = client.get(path, **extra)
    answers[name] = {
        "status": response.status_code,
        "headers": dict(response.headers),
        "cookies": {
            key: {"secure": bool(morsel["secure"]), "httponly": bool(morsel["httponly"])}
            for key, morsel in response.cookies.items()
        },
    }
print(json.dumps(answers))
"""


def _production_environment(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CREDITFLOW_"))
    }
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    env["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(64)
    env.update(overrides)
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@functools.cache
def _probe(**overrides: str) -> dict[str, dict]:
    """One child process per environment, shared by the tests that read it."""
    result = _run(["-c", _PROBE], _production_environment(**overrides))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_deploy_check_is_clean_with_production_settings():
    # when
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], _production_environment()
    )

    # then
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_with_the_default_secret_key():
    # given: no DJANGO_SECRET_KEY at all, so base.py's development default applies
    env = _production_environment()
    del env["DJANGO_SECRET_KEY"]

    # when
    result = _run(["manage.py", "check"], env)

    # then
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_refuses_a_short_secret_key():
    # when
    result = _run(["manage.py", "check"], _production_environment(DJANGO_SECRET_KEY="short-secret"))

    # then
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_redirects_http_to_https_and_sends_security_headers():
    # when
    answers = _probe()

    # then
    assert answers["http_login"]["status"] == 301
    assert answers["http_login"]["headers"]["Location"].startswith("https://")
    secure = answers["https_login"]
    assert secure["status"] == 200
    assert secure["headers"]["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "includeSubDomains" in secure["headers"]["Strict-Transport-Security"]
    assert secure["headers"]["X-Frame-Options"] == "DENY"
    assert secure["headers"]["X-Content-Type-Options"] == "nosniff"
    assert secure["headers"]["Referrer-Policy"] == "same-origin"
    assert secure["cookies"]["csrftoken"]["secure"] is True


def test_production_trusts_the_proxy_header_for_https():
    # when: the TLS-terminating proxy says the client spoke HTTPS
    answers = _probe()

    # then
    assert answers["proxied_https_login"]["status"] == 200


def test_production_does_not_trust_the_proxy_header_when_told_there_is_no_proxy():
    # when
    answers = _probe(DJANGO_SECURE_PROXY_SSL_HEADER="false")

    # then: a client cannot claim HTTPS with a header
    assert answers["proxied_https_login"]["status"] == 301


def test_health_check_is_not_redirected_to_https():
    # when: a load balancer probes over plain HTTP
    answers = _probe()

    # then
    assert answers["http_healthz"]["status"] in {200, 503}
    assert "Location" not in answers["http_healthz"]["headers"]


def test_ssl_redirect_can_be_left_to_the_proxy():
    # when
    answers = _probe(DJANGO_SECURE_SSL_REDIRECT="false")

    # then
    assert answers["http_login"]["status"] == 200
