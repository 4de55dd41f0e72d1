"""Development and the demo (`make demo`): debug on, the embedded SQLite database unless
DATABASE_URL is set, background work in-process unless REDIS_URL is set. manage.py's default;
never used by the deployment (the image and compose set config.settings.production)."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")

from .base import *  # noqa: E402,F403
