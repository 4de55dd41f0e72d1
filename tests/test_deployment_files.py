"""docker-compose.yml cannot run here (no Docker engine): keep it correct by reading it."""

import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def command_words(service: dict) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def test_services_present_and_gpu_worker_behind_profile():
    services = COMPOSE["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "gpu-worker"} <= set(services)
    assert services["gpu-worker"]["profiles"] == ["gpu"]
    assert "gpu" in command_words(services["gpu-worker"])
    for name in ("web", "worker", "beat", "gpu-worker"):
        assert services[name]["env_file"] == ".env", name
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}, name


@pytest.mark.parametrize("name", ["web", "worker", "beat", "gpu-worker"])
def test_every_command_refers_to_things_that_exist(name):
    words = command_words(COMPOSE["services"][name])
    text = " ".join(words)
    for target in re.findall(r"gunicorn (\S+)", text):
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
    for config_file in re.findall(r"--config (\S+)", text):  # gunicorn's settings file loads
        loaded: dict[str, object] = {}
        exec(compile((ROOT / config_file).read_text(), config_file, "exec"), loaded)  # noqa: S102 - our own file
        assert loaded["worker_class"] == "gthread" and int(loaded["workers"]) >= 1 and int(loaded["threads"]) >= 1
    for app in re.findall(r"celery -A (\S+)", text) + re.findall(r"celery\W+-A\W+(\S+)", text):
        assert importlib.import_module(app).celery_app.main == "emorate"
    for command in re.findall(r"manage\.py (\w+)", text):
        assert command in get_commands(), command
    if "--queues" in words:
        from django.conf import settings
        known = {"default"} | {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
        queues = set(words[words.index("--queues") + 1].split(","))
        assert queues <= known, queues - known
    assert (ROOT / "manage.py").exists() or "manage.py" not in text


def test_build_and_env_files_exist_and_cover_the_settings():
    assert (ROOT / "Dockerfile").exists()
    env_example = (ROOT / ".env.example").read_text()
    declared = set(re.findall(r"^([A-Z_]+)=", env_example, flags=re.M))
    settings_src = (ROOT / "config" / "settings" / "base.py").read_text() + \
        (ROOT / "config" / "settings" / "production.py").read_text()
    read = set(re.findall(r'(?:env_bool|env_int|os\.environ\.get)\("([A-Z_]+)"', settings_src))
    read -= {"EMORATE_ALLOW_INSECURE_KEY", "EMORATE_CACHE_PREFIX", "DATABASE_CONN_MAX_AGE", "DJANGO_LOG_LEVEL",
             "DJANGO_SECURE_HSTS_SECONDS"}  # optional tuning knobs with safe defaults
    assert read <= declared, f"settings read but missing from .env.example: {sorted(read - declared)}"
    for var in re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()):
        assert var in declared or var == "EMORATE_MODELS_DIR", var


def test_images_are_pinned():
    for name, service in COMPOSE["services"].items():
        image = service.get("image", "")
        if "build" not in service:
            assert ":" in image and not image.endswith(":latest"), name
