import os

from django.core.asgi import get_asgi_application

# Served processes default to production: a deployment that forgets the variable still runs hardened.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
application = get_asgi_application()
