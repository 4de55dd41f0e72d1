"""Settings shared by every environment; everything that differs comes from the environment.

Variables (all listed in .env.example):
  DATABASE_URL       default: an SQLite file under var/ (the demo only; tests and deployments use PostgreSQL)
  REDIS_URL          Celery broker and cache; unset = background work runs in-process (demo)
  DJANGO_SECRET_KEY  required unless DJANGO_DEBUG is on
  DJANGO_DEBUG       "1"/"true" turns debug on (default off)
  DJANGO_ALLOWED_HOSTS  comma-separated
  MEDIA_ROOT         where image files are stored
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw.strip() else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("EMORATE_ALLOW_INSECURE_KEY", False):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it in the environment (see .env.example); "
            "only DJANGO_DEBUG=1 runs without one."
        )
    SECRET_KEY = "insecure-development-key-never-use-in-production"

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "core",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "accounts",
    "annotation",
]

MIDDLEWARE = [
    # Probes first: container health checks and Prometheus call the process directly (core/health.py).
    "core.health.ProbeMiddleware",
    # Request id, access log line and request metrics for everything else (core/observability.py).
    "core.observability.RequestObservabilityMiddleware",
    # Bodies over EMORATE_MAX_REQUEST_BYTES are refused before anything reads them (core/limits.py).
    "core.limits.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.audit.ActingUserMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

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

DEMO_SQLITE = BASE_DIR / "var" / "demo.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{DEMO_SQLITE}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # An unreachable database fails a request (and /readyz, and the start-up check) in seconds, not minutes.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5)
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DEMO_SQLITE.parent.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # The demo runs a web server and in-process work side by side: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}

# The rate page's statements run as server-side prepared statements (core/prepared.py),
# planned once per connection with the generic plan: the same plan PostgreSQL picks for each call,
# without the planning (it otherwise re-plans every call because a LIMIT parameter makes the
# generic plan's estimate look dear). Only prepared statements and PL/pgSQL functions are affected.
# Set EMORATE_PG_PREPARE=0 behind a transaction-pooling PgBouncer.
EMORATE_PG_PREPARE = env_bool("EMORATE_PG_PREPARE", True)
if DATABASES["default"]["ENGINE"].endswith("postgresql") and EMORATE_PG_PREPARE:
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.EmailBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Failed logins per (email, client address) before the form refuses further tries for a while.
LOGIN_MAX_FAILURES = env_int("EMORATE_LOGIN_MAX_FAILURES", 5)
LOGIN_LOCKOUT_SECONDS = env_int("EMORATE_LOGIN_LOCKOUT_SECONDS", 15 * 60)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))

# Where images, their served copies and release files live (annotation/services/stored_files.py):
# `local` (MEDIA_ROOT; the demo, one machine) or `s3` (any S3-compatible object storage: several web
# nodes and workers on other machines share nothing but PostgreSQL, Redis and the bucket).
EMORATE_STORAGE = os.environ.get("EMORATE_STORAGE", "").strip().lower() or "local"
if EMORATE_STORAGE not in {"local", "s3"}:
    raise ImproperlyConfigured(f"EMORATE_STORAGE must be local or s3, got {EMORATE_STORAGE!r}")
_bucket = os.environ.get("AWS_STORAGE_BUCKET_NAME", "").strip()
if EMORATE_STORAGE == "s3" and not _bucket:
    raise ImproperlyConfigured("EMORATE_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME (the bucket's name).")
_endpoint = os.environ.get("AWS_S3_ENDPOINT_URL", "").strip()
# The bucket, when one is configured (used by EMORATE_STORAGE=s3, and by `media_migrate` either way).
EMORATE_S3_OPTIONS: dict[str, object] | None = {
    "bucket_name": _bucket,
    "endpoint_url": _endpoint or None,
    "access_key": os.environ.get("AWS_ACCESS_KEY_ID") or None,
    "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
    "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
    # Self-hosted servers (SeaweedFS, MinIO, Ceph) answer on one host name: path-style addresses.
    "addressing_style": os.environ.get("AWS_S3_ADDRESSING_STYLE") or ("path" if _endpoint else None),
    "signature_version": "s3v4",
    "default_acl": None,  # private objects: every file is served through a permission check
    # A name already taken gets a suffix, as on disk: two uploads of the same image racing each other
    # never share (and so never delete) one object.
    "file_overwrite": False,
    "max_memory_size": 8 * 1024 * 1024,  # larger downloads spill to a temporary file
    # One upload per call on the caller's thread: boto3's transfer threads per upload cost more than
    # they give for files of this size (parallel imports run their own workers).
    "use_threads": False,
} if _bucket else None
_local_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
_s3_storage = {"BACKEND": "core.storage.PrivateS3Storage", "OPTIONS": EMORATE_S3_OPTIONS}
STORAGES = {
    "default": _s3_storage if EMORATE_STORAGE == "s3" else _local_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    # Both kinds by name, for `media_migrate --to s3|local`.
    "local": _local_storage,
    **({"s3": _s3_storage} if EMORATE_S3_OPTIONS else {}),
}

# The scoring worker's model folder (docs/scoring.md); empty = no model, the platform says so.
EMORATE_SCORING_MODEL_DIR = os.environ.get("EMORATE_SCORING_MODEL_DIR", "").strip()

# Upload limits (import_images and uploads): real decode with Pillow, these formats only.
EMORATE_IMAGE_MAX_BYTES = env_int("EMORATE_IMAGE_MAX_BYTES", 20 * 1024 * 1024)
EMORATE_IMAGE_MAX_PIXELS = env_int("EMORATE_IMAGE_MAX_PIXELS", 40_000_000)
# The largest request body (a bulk upload of several images); Caddy's EMORATE_MAX_UPLOAD matches it.
EMORATE_MAX_REQUEST_BYTES = env_int("EMORATE_MAX_REQUEST_BYTES", 110 * 1000 * 1000)

REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {
        "BACKEND": "core.cache.ResilientRedisCache", "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("EMORATE_CACHE_PREFIX", "emorate"),
        # A dead Redis must not hang requests: fail fast, the cache degrades (core/cache.py).
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0},
    }}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: explicit queues (design card); without a broker the demo runs tasks in-process.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Publishing a task while the broker is down must not hold a request for long (ratings are already
# committed; the periodic agreement refresh catches up).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# A task whose worker died (acks_late) is delivered again after this many seconds. Longer than
# any task's run time limit; duplicates while a run is alive are harmless (advisory job locks).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("EMORATE_TASK_VISIBILITY_TIMEOUT", 4000)}
CELERY_TASK_ROUTES = {
    "annotation.tasks.agreement_*": {"queue": "agreement"},
    "annotation.tasks.release_*": {"queue": "releases"},
    "annotation.scoring.tasks.*": {"queue": "gpu"},
}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api_auth.HashedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON that nests too deeply is a 400, never a 500 (core/parsers.py)
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS: dict[str, Any] = {
    "TITLE": "emorate API",
    "DESCRIPTION": "Expert emotion annotation: projects, images, ratings, agreement, releases, model scores. "
                   "Authenticate with `Authorization: Token <key>` (create one at /accounts/tokens/ or with "
                   "`manage.py api_token_create EMAIL`).",
    "VERSION": "1.0.0",
    # The documentation page works offline: Swagger UI is served from our own static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

SESSION_COOKIE_HTTPONLY = True
# Sessions are read on every request: from Redis when there is one (written through to the
# database, so a flushed cache logs nobody out); a per-process cache could not see a logout made
# in another process, so without Redis (the demo) they stay in the database alone.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db" if REDIS_URL else "django.contrib.sessions.backends.db"
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie; kept default
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Logs: `json` (one object per line: time, level, logger, message, request id, route, status,
# duration, user id; task id and name in workers) or `text`. Production defaults to json.
EMORATE_LOG_FORMAT = os.environ.get("EMORATE_LOG_FORMAT", "").strip().lower() or "text"
if EMORATE_LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"EMORATE_LOG_FORMAT must be json or text, got {EMORATE_LOG_FORMAT!r}")
# One line per request (core/observability.py): on by default in production, where no other access log runs.
EMORATE_ACCESS_LOG = env_bool("EMORATE_ACCESS_LOG", False)


def logging_config(log_format: str, access_log: bool) -> dict[str, object]:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "core.observability.ContextFilter"}},
        "formatters": {"json": {"()": "core.observability.EmorateJsonFormatter"},
                       "text": {"()": "core.observability.TextFormatter"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
        "loggers": {"emorate.request": {"level": "INFO" if access_log else "WARNING"},
                    # with the access line on, runserver's own per-request line would repeat it
                    **({"django.server": {"level": "WARNING"}} if access_log else {})},
    }


LOGGING = logging_config(EMORATE_LOG_FORMAT, EMORATE_ACCESS_LOG)
# Celery workers log through the same handlers (with the task id and name on every line).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# /metrics (Prometheus text format) answers only `Authorization: Bearer <this token>`; unset = 404.
EMORATE_METRICS_TOKEN = os.environ.get("EMORATE_METRICS_TOKEN", "").strip()

# Error tracking (optional): Sentry with its Django and Celery integrations, no personal data.
SENTRY_DSN = os.environ.get("SENTRY_DSN", "").strip()
if SENTRY_DSN:
    from core.errortracking import init_sentry

    init_sentry(SENTRY_DSN, environment=os.environ.get("SENTRY_ENVIRONMENT", "production"),
                traces_sample_rate=float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0") or 0))

CELERY_BEAT_SCHEDULE = {
    "agreement-refresh": {"task": "annotation.tasks.agreement_refresh_all_task", "schedule": 15 * 60.0},
}


# --- Accounts: sign-in, throttle, API tokens, email, single sign-on, second factor (accounts/) ---
# The client address is read through these proxies only (comma-separated addresses or networks,
# e.g. "10.0.0.0/8,172.16.0.0/12"): X-Forwarded-For is believed from them and from nobody else.
EMORATE_TRUSTED_PROXIES = [p.strip() for p in os.environ.get("EMORATE_TRUSTED_PROXIES", "").split(",") if p.strip()]
# The one throttle (accounts/throttle.py): per account from one address (LOGIN_MAX_FAILURES above),
# per account from anywhere, per client address (IPv6: per /64), all in LOGIN_LOCKOUT_SECONDS.
EMORATE_THROTTLE_ACCOUNT_MAX = env_int("EMORATE_THROTTLE_ACCOUNT_MAX", 20)
EMORATE_THROTTLE_CLIENT_MAX = env_int("EMORATE_THROTTLE_CLIENT_MAX", 50)
# API tokens: default and longest lifetime in days.
EMORATE_API_TOKEN_DAYS = env_int("EMORATE_API_TOKEN_DAYS", 90)
EMORATE_API_TOKEN_MAX_DAYS = env_int("EMORATE_API_TOKEN_MAX_DAYS", 365)
# Password login can be turned off (single sign-on only), except for these admins (break glass).
EMORATE_PASSWORD_LOGIN = env_bool("EMORATE_PASSWORD_LOGIN", True)
EMORATE_BREAK_GLASS_ADMINS = [e.strip() for e in os.environ.get("EMORATE_BREAK_GLASS_ADMINS", "").split(",") if e.strip()]

# Email: SMTP when EMAIL_HOST is set, else printed to the console (the demo).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "").strip()
EMAIL_BACKEND = ("django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST
                 else "django.core.mail.backends.console.EmailBackend")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "emorate <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Links in emails sent outside a request (reminders, digests) start with this.
EMORATE_SITE_URL = os.environ.get("EMORATE_SITE_URL", "http://localhost:8000").rstrip("/")
# Days after which an unaccepted invitation gets one reminder; password reset links last this long (seconds).
EMORATE_INVITATION_REMINDER_DAYS = env_int("EMORATE_INVITATION_REMINDER_DAYS", 3)
PASSWORD_RESET_TIMEOUT = env_int("EMORATE_PASSWORD_RESET_SECONDS", 60 * 60 * 3)
# Email tasks (accounts/tasks.py) and the lead digest (annotation/digest.py), by Celery beat.
CELERY_IMPORTS = ["annotation.digest"]
CELERY_BEAT_SCHEDULE["invitation-reminders"] = {"task": "accounts.tasks.invitation_reminders_task",
                                                "schedule": 60 * 60.0}
CELERY_BEAT_SCHEDULE["lead-digest"] = {"task": "annotation.digest.lead_digests_task", "schedule": 60 * 60.0}

# Webhooks (annotation/services/webhooks.py): internal targets (loopback, private, link-local) are
# refused unless allowed; tries, backoff base and timeout of each delivery.
EMORATE_WEBHOOK_ALLOW_PRIVATE = env_bool("EMORATE_WEBHOOK_ALLOW_PRIVATE", False)
EMORATE_WEBHOOK_MAX_ATTEMPTS = env_int("EMORATE_WEBHOOK_MAX_ATTEMPTS", 6)
EMORATE_WEBHOOK_RETRY_SECONDS = float(os.environ.get("EMORATE_WEBHOOK_RETRY_SECONDS", "30") or 30)
EMORATE_WEBHOOK_TIMEOUT = env_int("EMORATE_WEBHOOK_TIMEOUT", 10)
CELERY_BEAT_SCHEDULE["webhooks-target-sweep"] = {"task": "annotation.tasks.webhooks_sweep_task", "schedule": 5 * 60.0}
# Rounds (#22): a round that finished or fell behind its due date is announced within the hour.
CELERY_BEAT_SCHEDULE["batch-alerts"] = {"task": "annotation.tasks.batch_alerts_task", "schedule": 60 * 60.0}

# Single sign-on (OpenID Connect, accounts/oidc.py): on when OIDC_RP_CLIENT_ID is set. The provider's
# endpoints are listed in its /.well-known/openid-configuration.
OIDC_PROVIDER_NAME = os.environ.get("OIDC_PROVIDER_NAME", "").strip() or "single sign-on"
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "").strip()
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "").strip()
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "").strip()
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "").strip()
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "").strip()
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "").strip() or "RS256"
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "").strip() or "openid email profile"
# Roles and projects for people without an invitation: "group=role" pairs read from this claim, and
# groups starting with the prefix name project slugs (e.g. prefix "emorate-project:" and group
# "emorate-project:hq"). Nobody else gets an account.
OIDC_ROLE_CLAIM = os.environ.get("OIDC_ROLE_CLAIM", "").strip() or "groups"
OIDC_ROLE_MAP = [p.strip() for p in os.environ.get("OIDC_ROLE_MAP", "").split(",") if p.strip()]
OIDC_PROJECT_GROUP_PREFIX = os.environ.get("OIDC_PROJECT_GROUP_PREFIX", "").strip()
# Shown to people single sign-on lets in but emorate does not know (whom to ask for access).
EMORATE_SSO_CONTACT = os.environ.get("EMORATE_SSO_CONTACT", "").strip()
OIDC_USE_PKCE = True
OIDC_TIMEOUT = 10
OIDC_AUTHENTICATION_CALLBACK_URL = "accounts:sso-callback"
LOGIN_REDIRECT_URL_FAILURE = "/accounts/sso/refused/"
for _pair in OIDC_ROLE_MAP:
    if _pair.partition("=")[2].strip() not in {"rater", "lead", "admin"}:
        raise ImproperlyConfigured(f"OIDC_ROLE_MAP: {_pair!r} must be group=rater, group=lead or group=admin")
if OIDC_RP_CLIENT_ID:
    _missing = [n for n in ("OIDC_RP_CLIENT_SECRET", "OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT",
                            "OIDC_OP_USER_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT") if not globals()[n]]
    if _missing:
        raise ImproperlyConfigured(f"OIDC_RP_CLIENT_ID is set, so single sign-on also needs {', '.join(_missing)}")
    AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, "accounts.oidc.EmorateOIDCBackend"]

# Second factor (accounts/twofactor.py): TOTP for leads and admins; admins must enrol when this is on.
EMORATE_REQUIRE_2FA_ADMINS = env_bool("EMORATE_REQUIRE_2FA_ADMINS", False)
OTP_TOTP_ISSUER = "emorate"

# Hardening (#16 finding 10). A Content-Security-Policy with no inline scripts (none exist): scripts,
# fonts, images and connections from this site only; inline styles stay allowed (htmx adds one).
# The Swagger page runs an inline script, so it is left out (it needs a signed-in user anyway).
CONTENT_SECURITY_POLICY = {
    "EXCLUDE_URL_PREFIXES": ["/api/docs/"],
    "DIRECTIVES": {
        "default-src": ["'self'"], "script-src": ["'self'"], "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"], "connect-src": ["'self'"], "font-src": ["'self'"],
        "object-src": ["'none'"], "base-uri": ["'self'"], "frame-ancestors": ["'none'"], "form-action": ["'self'"],
    },
}
# The OpenAPI schema and its documentation page are for signed-in users (session or token).
SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"] = ["rest_framework.permissions.IsAuthenticated"]
# Redis behind a password (`requirepass`): REDIS_PASSWORD is added to REDIS_URL unless the URL has one.
REDIS_PASSWORD = os.environ.get("REDIS_PASSWORD", "")
if REDIS_URL and REDIS_PASSWORD:
    from urllib.parse import quote, urlsplit, urlunsplit

    _redis = urlsplit(REDIS_URL)
    if _redis.password is None:
        _host = f"{_redis.hostname}:{_redis.port}" if _redis.port else str(_redis.hostname)
        _user = quote(_redis.username, safe="") if _redis.username else ""
        REDIS_URL = urlunsplit(_redis._replace(netloc=f"{_user}:{quote(REDIS_PASSWORD, safe='')}@{_host}"))
        CACHES["default"]["LOCATION"] = REDIS_URL
        CELERY_BROKER_URL = CELERY_RESULT_BACKEND = REDIS_URL
