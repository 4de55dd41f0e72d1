import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_production_refuses_to_start_without_a_secret_key():
    done = manage("check", DJANGO_SETTINGS_MODULE="config.settings.production")
    assert done.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in done.stderr


def test_production_settings_pass_the_deployment_checklist():
    done = manage("check", "--deploy", "--fail-level", "WARNING", DJANGO_SETTINGS_MODULE="config.settings.production",
                  DJANGO_SECRET_KEY="a" * 20 + "-production-key-with-enough-entropy-0123456789",
                  DJANGO_ALLOWED_HOSTS="emorate.example.org")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "no issues" in done.stdout


def test_debug_setting_cannot_be_forced_on_in_production():
    done = manage("shell", "-c", "from django.conf import settings; print(settings.DEBUG)",
                  DJANGO_SETTINGS_MODULE="config.settings.production", DJANGO_DEBUG="1",
                  DJANGO_SECRET_KEY="x" * 60, DJANGO_ALLOWED_HOSTS="emorate.example.org")
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr


def test_migrations_are_complete():
    done = manage("makemigrations", "--check", "--dry-run", DJANGO_SETTINGS_MODULE="config.settings.test")
    assert done.returncode == 0, done.stdout + done.stderr


# Bad configuration fails loudly at start, naming the variable: through the web service's own
# start script (deploy/web.sh), as the container runs it.
GOOD = {"DJANGO_SETTINGS_MODULE": "config.settings.production", "DJANGO_ALLOWED_HOSTS": "emorate.example.org",
        "DJANGO_SECRET_KEY": "k" * 20 + "-a-production-key-0123456789abcdef", "EMORATE_PREFLIGHT_WAIT": "0"}


def start_web(**changes: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_ALLOWED_HOSTS"}}
    env = {**env, "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}", **GOOD, **changes}
    env = {k: v for k, v in env.items() if v is not None and v != "<unset>"}
    return subprocess.run(["sh", "deploy/web.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("changes", "message"), [
    ({"DJANGO_SECRET_KEY": "<unset>"}, "DJANGO_SECRET_KEY is not set"),
    ({"DJANGO_SECRET_KEY": "change-me-to-a-long-random-string"}, "DJANGO_SECRET_KEY is the placeholder from .env.example"),
    ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY is too short"),
    ({"DJANGO_ALLOWED_HOSTS": ""}, "DJANGO_ALLOWED_HOSTS is empty"),
    ({"DJANGO_ALLOWED_HOSTS": "<unset>"}, "DJANGO_ALLOWED_HOSTS is empty"),
    ({"DATABASE_URL": "<unset>"}, "DATABASE_URL must name a PostgreSQL database"),
    ({"REDIS_URL": ""}, "REDIS_URL is not set"),
    ({"DATABASE_URL": "postgres://app:app@127.0.0.1:1/app"}, "DATABASE_URL: cannot reach PostgreSQL at 127.0.0.1:1/app"),
    ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "REDIS_URL: cannot reach Redis at 127.0.0.1:1/0"),
    ({"EMORATE_LOG_FORMAT": "xml"}, "EMORATE_LOG_FORMAT must be json or text"),
    ({"EMORATE_STORAGE": "ftp"}, "EMORATE_STORAGE must be local or s3, got 'ftp'"),
    ({"EMORATE_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": ""}, "EMORATE_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME"),
    ({"EMORATE_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": "media", "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:1"},
     "AWS_S3_ENDPOINT_URL: cannot use bucket 'media' at http://127.0.0.1:1"),
])
def test_bad_configuration_stops_the_web_service_naming_the_variable(changes, message):
    done = start_web(**changes)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr and "gunicorn" not in done.stderr.lower()  # stopped before the server


def test_served_processes_default_to_production_and_manage_py_to_local():
    for entry in ("config/wsgi.py", "config/asgi.py", "config/celery.py"):
        assert 'setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")' in (ROOT / entry).read_text(), entry
    assert 'setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")' in (ROOT / "manage.py").read_text()
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY"}}
    done = subprocess.run([sys.executable, "-c", "import config.wsgi"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0 and "DJANGO_SECRET_KEY is not set" in done.stderr  # production, not the demo


def test_a_missing_bucket_stops_the_web_service_naming_the_variable():
    from tests.support.s3 import make_bucket, s3_endpoint

    make_bucket()  # the S3 server answers; the bucket below does not exist on it
    done = start_web(EMORATE_STORAGE="s3", AWS_STORAGE_BUCKET_NAME="no-such-bucket-here",
                     AWS_S3_ENDPOINT_URL=s3_endpoint())
    assert done.returncode == 2, done.stdout + done.stderr
    assert "AWS_STORAGE_BUCKET_NAME: no bucket 'no-such-bucket-here'" in done.stderr
