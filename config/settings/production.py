"""Production only tightens what base.py configures.

Behind a TLS-terminating proxy (the usual case) the proxy must set `X-Forwarded-Proto`
and strip any copy sent by the client; set `DJANGO_SECURE_PROXY_SSL_HEADER=false`
when Django is reached directly, so a client cannot claim HTTPS with a header.
`DJANGO_SECURE_SSL_REDIRECT=false` when the proxy already redirects HTTP to HTTPS.
"""

from django.core.exceptions import ImproperlyConfigured

from config.logging import build_logging
from config.settings.base import *  # noqa: F403
from config.settings.base import SECRET_KEY, env

DEBUG = False

_DEFAULT_SECRET_KEY = "dev-insecure-change-me"  # noqa: S105
if SECRET_KEY == _DEFAULT_SECRET_KEY or len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set to a long random value (50+ characters) in production"
    )

# --- HTTPS -------------------------------------------------------------------
if env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=True):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Load balancers and Prometheus probe over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

# --- headers -------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- logs ----------------------------------------------------------------------
LOGGING = build_logging(
    log_format=env.str("LOG_FORMAT", default="json"), level=env.str("LOG_LEVEL", default="INFO")
)
