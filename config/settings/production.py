"""Production: base settings plus the hardening `manage.py check --deploy` asks for, static files
served by the app (whitenoise), JSON logs and an access line per request.

Refuses to start, naming the variable, without DJANGO_SECRET_KEY, with the placeholder key from
.env.example (or another obviously weak one), or without DJANGO_ALLOWED_HOSTS. DEBUG is forced off.
The deployed topology (Caddy terminating TLS in front of gunicorn, a worker and beat) is in
docker-compose.yml and deploy/, and runs in tests/deploy/test_topology.py.
"""

import os

os.environ["DJANGO_DEBUG"] = "0"
os.environ.pop("EMORATE_ALLOW_INSECURE_KEY", None)
os.environ.setdefault("EMORATE_LOG_FORMAT", "json")
os.environ.setdefault("EMORATE_ACCESS_LOG", "1")

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from .base import *  # noqa: E402,F403
from .base import DATABASES, MIDDLEWARE, REDIS_URL, SECRET_KEY, STORAGES, env_bool, env_int  # noqa: E402

# Keys that must never run a deployment: the .env.example placeholder and its like.
_PLACEHOLDER_KEYS = {"change-me-to-a-long-random-string", "changeme", "change-me", "secret", "django-insecure"}
if SECRET_KEY.strip().lower() in _PLACEHOLDER_KEYS or SECRET_KEY.lower().startswith(("change-me", "changeme")):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is the placeholder from .env.example: set a long random value, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )
if len(SECRET_KEY) < 32:
    raise ImproperlyConfigured(f"DJANGO_SECRET_KEY is too short ({len(SECRET_KEY)} characters; at least 32, 50 advised).")
if not os.environ.get("DJANGO_ALLOWED_HOSTS", "").strip(" ,"):
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is empty: set the host names the site answers to, e.g. DJANGO_ALLOWED_HOSTS=emorate.lab.org"
    )
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://...): "
                               "the embedded SQLite file is for the demo only.")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL is not set: production needs Redis as the Celery broker and cache.")

DEBUG = False
# Caddy (deploy/Caddyfile) terminates TLS and sets X-Forwarded-Proto; only the proxy reaches gunicorn.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_REFERRER_POLICY = "same-origin"

# Static files from the app itself, whatever the proxy does: hashed names (collected at image build
# time), gzip copies, and far-future immutable cache headers for hashed files (whitenoise).
MIDDLEWARE = list(MIDDLEWARE)
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                  "whitenoise.middleware.WhiteNoiseMiddleware")
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
