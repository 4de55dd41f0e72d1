import os
import subprocess
import sys
from pathlib import Path

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
                  DJANGO_SECRET_KEY="x" * 60)
    assert done.stdout.strip().splitlines()[-1] == "False", done.stderr


def test_migrations_are_complete():
    done = manage("makemigrations", "--check", "--dry-run", DJANGO_SETTINGS_MODULE="config.settings.test")
    assert done.returncode == 0, done.stdout + done.stderr
