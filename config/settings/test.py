"""Settings for the test suite: real PostgreSQL and Redis only (started by `make test`)."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-deployment-0123456789")
os.environ.setdefault("EMORATE_CACHE_PREFIX", f"emorate-test-{os.getpid()}")

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

from .base import *  # noqa: E402,F403
from .base import DATABASES, REDIS_URL  # noqa: E402

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" or not REDIS_URL:
    raise ImproperlyConfigured(
        "The tests run on real PostgreSQL and Redis only: set DATABASE_URL=postgres://... and REDIS_URL "
        "(`make test` starts both and sets them)."
    )

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed; real hashers in production
# A worker process started by a fault test is handed the test's MEDIA_ROOT through the environment.
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT") or tempfile.mkdtemp(prefix="emorate-test-media-"))
DATABASES["default"]["CONN_MAX_AGE"] = 0
