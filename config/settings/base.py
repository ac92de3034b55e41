"""Every setting lives here; `production.py` only tightens, `test.py` isolates."""

from datetime import timedelta
from urllib.parse import unquote

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.env import BASE_DIR, env
from config.logging import build_logging

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-insecure-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    # django.contrib.admin with creditflow's site (its dashboard reads the reports' rollups).
    "reports.admin_config.CreditflowAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "tracking",
    "attribution",
    "reports",
    "webhooks",
    "demo",
    "config",
]

MIDDLEWARE = [
    # First, so every response (even a redirect to HTTPS) carries X-Request-ID.
    "config.middleware.request_id_middleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it answers a locked-out login attempt.
    "axes.middleware.AxesMiddleware",
]

# Routes marked `hot_path(...)` in the URLconf (the short links and the postback intake, see
# config/hot_paths.py): no session, login, CSRF or framing. CommonMiddleware stays: it checks
# the Host header against ALLOWED_HOSTS.
HOT_PATH_MIDDLEWARE = [
    "config.middleware.request_id_middleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

# Axes first: it refuses a locked-out username+address before any password is checked.
AUTHENTICATION_BACKENDS = [
    "config.login_lockout.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Admin login brute force (config/login_lockout.py): 10 failures for one username from one
# address within 15 minutes lock that pair out for 15 minutes (429), even with the right
# password. Counted in the Django cache (Redis), so every web process sees the same count.
AXES_HANDLER = "config.login_lockout.LoginLockoutCacheHandler"
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Another try while locked out does not start the 15 minutes again.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The address clicks and postbacks trust (TRUSTED_PROXY_COUNT hops of X-Forwarded-For).
AXES_CLIENT_IP_CALLABLE = "config.client_ip.request_client_ip"
AXES_CLIENT_STR_CALLABLE = "config.login_lockout.login_client_str"
AXES_VERBOSE = False
# Attempts live in Redis, not in axes' tables: its admin pages would always be empty.
AXES_ENABLE_ADMIN = False

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/creditflow"),
}
# A unix socket directory arrives percent-encoded in the URL's host part.
DATABASES["default"]["HOST"] = unquote(DATABASES["default"].get("HOST", ""))
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Every Redis key and Celery queue this deployment owns starts with this, so two
# deployments (or two test runs) can share one Redis server.
REDIS_KEY_PREFIX = env.str("REDIS_KEY_PREFIX", default="creditflow:")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX,
        "TIMEOUT": 300,
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / ".run" / "static"

DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env.int("DATA_UPLOAD_MAX_NUMBER_FIELDS", default=1000)
DATA_UPLOAD_MAX_NUMBER_FILES = 10

# --- creditflow -------------------------------------------------------------

SHORT_LINK_BASE_URL = env.str("SHORT_LINK_BASE_URL", default="http://127.0.0.1:8000")
LINK_FALLBACK_URL = env.str("LINK_FALLBACK_URL", default="")
REPORTS_TIME_ZONE = env.str("REPORTS_TIME_ZONE", default="UTC")
LINK_CODE_LENGTH = env.int("LINK_CODE_LENGTH", default=8)
CLICK_DUPLICATE_WINDOW = timedelta(seconds=env.int("CLICK_DUPLICATE_WINDOW_SECONDS", default=3600))
MESSAGES_BULK_MAX = env.int("MESSAGES_BULK_MAX", default=10_000)
CLICKS_IMPORT_MAX = env.int("CLICKS_IMPORT_MAX", default=10_000)
# A CSV of conversions (API and admin): its size and rows.
CONVERSION_IMPORT_MAX_BYTES = env.int("CONVERSION_IMPORT_MAX_BYTES", default=20 * 1024 * 1024)
CONVERSION_IMPORT_MAX_ROWS = env.int("CONVERSION_IMPORT_MAX_ROWS", default=200_000)
# Where the redirect appends clicks before a drainer moves them into PostgreSQL.
CLICK_SPOOL_DIR = env.path("CLICK_SPOOL_DIR", default=BASE_DIR / ".run" / "click-spool")
# The name of this node's spool (its files, its drainer's lock, its published drain point):
# one per host, the host name unless set (containers on one machine may share a host name).
CLICK_SPOOL_HOST = env.str("CLICK_SPOOL_HOST", default="")
# A web process starts a new spool file after this many bytes.
CLICK_SPOOL_ROTATE_BYTES = env.int("CLICK_SPOOL_ROTATE_BYTES", default=64 * 1024 * 1024)
# How often `drain_clicks` looks for new clicks (a click is visible within 2 s).
CLICK_DRAIN_INTERVAL_SECONDS = env.float("CLICK_DRAIN_INTERVAL_SECONDS", default=0.2)
CLICK_DRAIN_BATCH_BYTES = env.int("CLICK_DRAIN_BATCH_BYTES", default=2 * 1024 * 1024)
# The drainer's niceness (0-19): under load the web wins the CPU and the drainer takes larger
# batches, still every CLICK_DRAIN_INTERVAL_SECONDS (tracking/management/commands/drain_clicks.py).
CLICK_DRAIN_NICE = env.int("CLICK_DRAIN_NICE", default=10)
# Mail security scanners caught by behaviour (tracking/services/scanners.py); 0 turns a signal off.
CLICK_SCANNER_AFTER_SEND_SECONDS = env.int("CLICK_SCANNER_AFTER_SEND_SECONDS", default=10)
CLICK_SCANNER_AFTER_SEND_CHANNELS = env.list("CLICK_SCANNER_AFTER_SEND_CHANNELS", default=["email"])
CLICK_SCANNER_BURST_LINKS = env.int("CLICK_SCANNER_BURST_LINKS", default=2)
CLICK_SCANNER_BURST_SECONDS = env.float("CLICK_SCANNER_BURST_SECONDS", default=2.0)
CLICK_SCANNER_SHARED_ADDRESS_CONTACTS = env.int("CLICK_SCANNER_SHARED_ADDRESS_CONTACTS", default=10)
CLICK_SCANNER_SHARED_ADDRESS_SECONDS = env.int("CLICK_SCANNER_SHARED_ADDRESS_SECONDS", default=10)
# tracking_click is partitioned by month: the beat task keeps this many months ready ahead.
CLICK_PARTITIONS_AHEAD_MONTHS = env.int("CLICK_PARTITIONS_AHEAD_MONTHS", default=2)
# Raw clicks of months older than this are dropped once their days' rollups are final
# (0: keep every click). At least CLICK_RETENTION_MIN_MONTHS: the nightly recompute and
# attribution look back up to 92 days.
CLICK_RETENTION_MONTHS = env.int("CLICK_RETENTION_MONTHS", default=0)
CLICK_RETENTION_MIN_MONTHS = 4
# Proxies in front of the app that append to X-Forwarded-For (0: use the socket address),
# for clicks and postbacks alike (config/client_ip.py). The names it had when clicks and
# postbacks were configured apart still work: CLICK_TRUSTED_PROXY_COUNT, and
# POSTBACK_TRUSTED_PROXY_HEADER=HTTP_X_FORWARDED_FOR (one proxy).
_legacy_postback_header = env.str("POSTBACK_TRUSTED_PROXY_HEADER", default="")
if _legacy_postback_header not in {"", "HTTP_X_FORWARDED_FOR"}:
    raise ImproperlyConfigured(
        "POSTBACK_TRUSTED_PROXY_HEADER may only be HTTP_X_FORWARDED_FOR; "
        "set TRUSTED_PROXY_COUNT to the number of proxies that append to X-Forwarded-For"
    )
TRUSTED_PROXY_COUNT = env.int(
    "TRUSTED_PROXY_COUNT",
    default=env.int("CLICK_TRUSTED_PROXY_COUNT", default=1 if _legacy_postback_header else 0),
)
# The redirect's in-process link cache: how often it asks Redis whether links changed,
# how long an entry is trusted at most, and how many entries a process keeps.
LINK_CACHE_CHECK_SECONDS = env.float("LINK_CACHE_CHECK_SECONDS", default=1.0)
LINK_CACHE_MAX_AGE_SECONDS = env.float("LINK_CACHE_MAX_AGE_SECONDS", default=300.0)
LINK_CACHE_MAX_ENTRIES = env.int("LINK_CACHE_MAX_ENTRIES", default=200_000)
REDIRECT_RETRY_AFTER_SECONDS = env.int("REDIRECT_RETRY_AFTER_SECONDS", default=5)

# --- Django REST framework ---------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Staff only; writes also need the model permission (see config/permissions.py).
    "DEFAULT_PERMISSION_CLASSES": ["config.permissions.StaffWithModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.StandardPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON only, refusing what would fail later (deep nesting, duplicate keys, NUL, a body
    # over DATA_UPLOAD_MAX_MEMORY_SIZE) with a 4xx. An endpoint that takes a file (CSV)
    # names its own `parser_classes`.
    "DEFAULT_PARSER_CLASSES": ["config.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "config.exceptions.api_exception_handler",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "creditflow API",
    "DESCRIPTION": "Messages, tracked links, clicks, conversions and daily reports.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
    # The docs page's JavaScript comes from our static files, not a CDN: works offline.
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Separate request and response components, so a generated client does not ask for
    # read-only fields (`id`, `created_at`) when creating.
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation lists its error answers (401, 403, 413, ...): see config/openapi.py.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.openapi.document_error_answers",
    ],
    # The what-if jobs' `status` (comparisons, reattributions) is one enum with a stable
    # name, not a hashed one (drf_spectacular.W001, which `check --deploy` fails on).
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "reports.models.JobStatus",
        # Conversion imports and webhook range resends: one queued/running/done set.
        "BackgroundJobStatusEnum": "attribution.models.ConversionImport.Status",
    },
}

# --- Celery ------------------------------------------------------------------


def _celery_broker_url(redis_url: str) -> str:
    # kombu spells a Redis unix socket "redis+socket://"; redis-py spells it "unix://".
    if redis_url.startswith("unix://"):
        path, _, query = redis_url.removeprefix("unix://").partition("?")
        database = dict(part.split("=", 1) for part in query.split("&") if "=" in part).get(
            "db", "0"
        )
        return f"redis+socket://{path}?virtual_host={database}"
    return redis_url


CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=_celery_broker_url(REDIS_URL))
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_DEFAULT_QUEUE = "celery"
# Webhook deliveries wait on customers' servers: their own queue, so a slow endpoint never
# holds up attribution. A worker started without -Q consumes both; `make run` gives each
# its own process (Procfile).
CELERY_TASK_QUEUES = (Queue("celery"), Queue("webhooks"))
CELERY_TASK_ROUTES = {"webhooks.deliver_endpoint": {"queue": "webhooks"}}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Longer than the longest task's hard time limit, so a slow task is not
    # handed to a second worker while the first is still on it.
    "visibility_timeout": 3600,
    "global_keyprefix": REDIS_KEY_PREFIX,
    "socket_connect_timeout": 2,
}
# Celery's Django fix-up closes every database connection before and after each task,
# whatever CONN_MAX_AGE says: each task then opened a PostgreSQL session of its own (a
# backend forked, its catalog caches filled again), which cost more than deciding a small
# batch. It closes them only every this many tasks now; in between, the worker's own
# task_prerun/task_postrun handler (config/celery_app.py) applies Django's rule, as a
# request does: a connection that errored and fails its health check, or that is older
# than CONN_MAX_AGE, is closed, the others are kept.
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {}
# reports: the days touched since the last scan, every minute (a conversion shows within 2
# minutes); nightly, the trailing window of the longest click window plus two days.
CELERY_BEAT_SCHEDULE["reports-recompute-touched"] = {
    "task": "reports.recompute_touched",
    "schedule": 60.0,
    "options": {"expires": 55},
}
CELERY_BEAT_SCHEDULE["reports-recompute-trailing"] = {
    "task": "reports.recompute_trailing",
    "schedule": crontab(hour=3, minute=17),
}
# reports: what-if jobs stranded by a broker that was down, or by a worker that died.
CELERY_BEAT_SCHEDULE["reports-whatif-jobs-sweep"] = {
    "task": "reports.whatif_jobs_sweep",
    "schedule": 60.0,
    "options": {"expires": 55},
}
# tracking: next months' click partitions; reports: raw clicks past CLICK_RETENTION_MONTHS.
CELERY_BEAT_SCHEDULE["tracking-create-click-partitions"] = {
    "task": "tracking.create_click_partitions",
    "schedule": crontab(hour=2, minute=41),
}
CELERY_BEAT_SCHEDULE["reports-drop-old-clicks"] = {
    "task": "reports.drop_old_clicks",
    "schedule": crontab(hour=4, minute=23),
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# The niceness of Celery workers (0-19, config/celery_app.py): under load the web's requests
# get the CPU first, and a worker deciding postbacks catches up in what the web leaves.
WORKER_NICE = env.int("WORKER_NICE", default=10)
# Each web worker in a session of its own, which Linux schedules as a group of its own
# (config/priority.py): the web is not outweighed by one busy PostgreSQL backend.
WEB_WORKER_OWN_SESSION = env.bool("WEB_WORKER_OWN_SESSION", default=True)

LOGGING = build_logging(
    log_format=env.str("LOG_FORMAT", default="plain"), level=env.str("LOG_LEVEL", default="INFO")
)

# --- attribution (postbacks) -------------------------------------------------

# A live click reaches the table up to ~2 s after its redirect: a postback naming
# an unknown click this young is tried again later instead of called unknown.
CLICK_VISIBILITY_GRACE_SECONDS = env.int("CLICK_VISIBILITY_GRACE_SECONDS", default=10)
# How many other waiting postbacks a processing task takes along with its own.
POSTBACK_BATCH_SIZE = env.int("POSTBACK_BATCH_SIZE", default=500)
# The sweeper enqueues a postback again once it has waited this long since it was last queued.
POSTBACK_SWEEP_AFTER_SECONDS = env.int("POSTBACK_SWEEP_AFTER_SECONDS", default=120)
POSTBACK_MAX_ATTEMPTS = env.int("POSTBACK_MAX_ATTEMPTS", default=10)
# The database row, not the queue, is the source of truth: every minute, postbacks
# still waiting are enqueued again (see attribution/services/recovery.py).
CELERY_BEAT_SCHEDULE["attribution-sweep-postbacks"] = {
    "task": "attribution.sweep_postbacks",
    "schedule": 60.0,
    "options": {"expires": 55},
}

# --- observability ---------------------------------------------------------------

# `/metrics` answers a staff session, or `Authorization: Bearer <METRICS_TOKEN>` when set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Empty: `.run/prometheus/<REDIS_KEY_PREFIX>/` (see config/metrics.py).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# `/healthz` calls the queues stuck past these (status "degraded", still 200; `?strict=1` -> 503).
HEALTH_POSTBACK_STUCK_SECONDS = env.int("HEALTH_POSTBACK_STUCK_SECONDS", default=300)
HEALTH_QUEUE_DEPTH_MAX = env.int("HEALTH_QUEUE_DEPTH_MAX", default=10_000)
HEALTH_CLICK_SPOOL_STUCK_SECONDS = env.int("HEALTH_CLICK_SPOOL_STUCK_SECONDS", default=60)
# The intake keeps networks in memory (checked against a Redis generation, see
# POSTBACK_NETWORK_CHECK_SECONDS), at most this long even when nothing says they changed.
POSTBACK_NETWORK_CACHE_SECONDS = env.int("POSTBACK_NETWORK_CACHE_SECONDS", default=60)
# A postback that could not be stored (database unavailable) is answered 503 with this.
POSTBACK_RETRY_AFTER_SECONDS = env.int("POSTBACK_RETRY_AFTER_SECONDS", default=30)
# How often each web process asks Redis whether any network changed (token, allowlist,
# aliases): a change made elsewhere is seen within this time.
POSTBACK_NETWORK_CHECK_SECONDS = env.float("POSTBACK_NETWORK_CHECK_SECONDS", default=1.0)
# One queued task wakes a worker for every postback that arrives before it starts,
# instead of one task per postback (see attribution.services.wakeup.postback_wake_worker).
POSTBACK_COALESCE_WAKEUPS = env.bool("POSTBACK_COALESCE_WAKEUPS", default=True)
POSTBACK_WAKEUP_TTL_SECONDS = env.int("POSTBACK_WAKEUP_TTL_SECONDS", default=30)
# The intake's wake-ups are sent by a thread of each web process, at most this often:
# postbacks arriving in between share one Redis round trip and one worker batch. With
# 0.02 s, a worker keeping up with 1,000 postbacks a second decided them some 60 at a time
# at twice the CPU per postback of a full batch, beside the web; with 0.25 s each batch
# holds a few hundred. A decision waits up to this much longer.
POSTBACK_WAKEUP_GATHER_SECONDS = env.float("POSTBACK_WAKEUP_GATHER_SECONDS", default=0.25)
# Wrong or missing postback tokens from one address to one network: after this many in
# the window, that address gets 429 (with Retry-After) until the window ends.
POSTBACK_FAILED_TOKEN_LIMIT = env.int("POSTBACK_FAILED_TOKEN_LIMIT", default=20)
POSTBACK_FAILED_TOKEN_WINDOW_SECONDS = env.int("POSTBACK_FAILED_TOKEN_WINDOW_SECONDS", default=300)

# --- webhooks out ------------------------------------------------------------------

# Tasks woken when conversion events commit (attribution/services/outbox.py).
CONVERSION_EVENT_SUBSCRIBER_TASKS = ["webhooks.dispatch"]
CONVERSION_EVENT_WAKEUP_TTL_SECONDS = env.int("CONVERSION_EVENT_WAKEUP_TTL_SECONDS", default=30)
# Loopback, private, link-local and metadata addresses are refused as webhook targets
# (at create/update and again before every delivery) unless this is true.
WEBHOOK_ALLOW_PRIVATE_HOSTS = env.bool("WEBHOOK_ALLOW_PRIVATE_HOSTS", default=False)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Seconds to wait after each failed attempt (the n-th failure waits the n-th value, with
# +-20 % jitter after the first); past the last, the delivery is failed. The default
# adds up to about three days: 20 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then 12 h x 4.
WEBHOOK_RETRY_SCHEDULE_SECONDS = env.list(
    "WEBHOOK_RETRY_SCHEDULE_SECONDS",
    cast=int,
    default=[20, 300, 1800, 7200, 18000, 36000, 36000, 43200, 43200, 43200, 43200],
)
# An endpoint with no successful attempt for this long is disabled, with the reason shown.
WEBHOOK_DISABLE_AFTER_SECONDS = env.int("WEBHOOK_DISABLE_AFTER_SECONDS", default=5 * 86400)
# After a secret rotation the previous secret also signs for this long.
WEBHOOK_ROTATION_GRACE_SECONDS = env.int("WEBHOOK_ROTATION_GRACE_SECONDS", default=86400)
# Deliveries one endpoint's task claims at a time, and how long it keeps sending before it
# lets other endpoints have the worker (it queues itself again when more are due).
WEBHOOK_DELIVERY_BATCH_SIZE = env.int("WEBHOOK_DELIVERY_BATCH_SIZE", default=200)
WEBHOOK_RUN_SECONDS = env.float("WEBHOOK_RUN_SECONDS", default=20.0)
# `/healthz` reports a webhook delivery due longer than this (workers not keeping up) as degraded.
HEALTH_WEBHOOK_STUCK_SECONDS = env.int("HEALTH_WEBHOOK_STUCK_SECONDS", default=300)
# Conversion events the dispatcher turns into deliveries per transaction.
WEBHOOK_DISPATCH_BATCH_SIZE = env.int("WEBHOOK_DISPATCH_BATCH_SIZE", default=1000)
# Retries due within this many seconds are woken with a countdown; later ones by beat.
WEBHOOK_WAKE_COUNTDOWN_MAX_SECONDS = env.int("WEBHOOK_WAKE_COUNTDOWN_MAX_SECONDS", default=300)
# Beat: events not yet dispatched (the after-commit wake-up only saves time) and
# deliveries whose retry is due.
CELERY_BEAT_SCHEDULE["webhooks-dispatch"] = {
    "task": "webhooks.dispatch",
    "schedule": 5.0,
    "options": {"expires": 5},
}
CELERY_BEAT_SCHEDULE["webhooks-deliver-due"] = {
    "task": "webhooks.deliver_due",
    "schedule": 10.0,
    "options": {"expires": 10},
}
