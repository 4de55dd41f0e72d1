"""docker-compose.yml cannot run here (no Docker engine): keep it correct by reading it."""

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from deploy.topology import CADDY_COMMAND, SERVICE_SCRIPTS

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
TOPOLOGY_SOURCE = (ROOT / "deploy" / "topology.py").read_text()


def command_words(service: dict) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def script_commands(script: str) -> str:
    """A deploy/ script without its comments."""
    return "\n".join(line for line in (ROOT / script).read_text().splitlines() if not line.lstrip().startswith("#"))


APP_SERVICES = ("migrate", "web", "worker", "beat", "gpu-worker")


def test_services_present_and_gpu_worker_behind_profile():
    services = COMPOSE["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "caddy", "gpu-worker"} <= set(services)
    assert services["gpu-worker"]["profiles"] == ["gpu"]
    assert services["gpu-worker"]["environment"]["EMORATE_WORKER_QUEUES"] == "gpu"
    for name in APP_SERVICES:
        assert services[name]["env_file"] == ".env", name
        assert {"postgres", "redis"} <= set(services[name]["depends_on"]), name
    for name in ("web", "worker", "beat", "gpu-worker"):  # the schema is in place before they start
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
    assert services["caddy"]["depends_on"]["web"] == {"condition": "service_healthy"}


def test_only_the_tls_proxy_is_published():
    published = {name for name, service in COMPOSE["services"].items() if service.get("ports")}
    assert published == {"caddy"}
    assert sorted(COMPOSE["services"]["caddy"]["ports"]) == ["443:443", "80:80"]


def test_each_command_is_the_one_the_topology_test_runs():
    """One source of truth: compose runs the deploy/ scripts and Caddyfile that
    tests/deploy/test_topology.py runs as local processes (deploy/topology.py)."""
    services = COMPOSE["services"]
    for name, script in SERVICE_SCRIPTS.items():
        assert command_words(services[name]) == [script], name
    assert command_words(services["gpu-worker"]) == [SERVICE_SCRIPTS["worker"]]
    assert command_words(services["migrate"]) == ["deploy/migrate.sh"]
    assert "deploy/migrate.sh" in TOPOLOGY_SOURCE and "deploy/collectstatic.sh" in TOPOLOGY_SOURCE
    # Caddy: the same command, with the repository's Caddyfile mounted where the command reads it.
    caddy = services["caddy"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in caddy["volumes"] if v.startswith("./")}
    words = command_words(caddy)
    config_path = words[words.index("--config") + 1]
    assert mounted[config_path] == "./" + CADDY_COMMAND[CADDY_COMMAND.index("--config") + 1]
    assert [w for w in words if w != config_path] == [w for w in CADDY_COMMAND if w != "deploy/Caddyfile"]
    # The image collects static files at build time with the same script, not at each start.
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "RUN sh deploy/collectstatic.sh" in dockerfile
    assert "collectstatic" not in " ".join(script_commands(s) for s in SERVICE_SCRIPTS.values())
    assert "DJANGO_SETTINGS_MODULE=config.settings.production" in dockerfile


def test_health_checks_use_the_probes():
    services = COMPOSE["services"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    for name in ("worker", "gpu-worker"):
        assert "inspect ping" in " ".join(services[name]["healthcheck"]["test"]), name


@pytest.mark.parametrize("script", sorted({*SERVICE_SCRIPTS.values(), "deploy/migrate.sh", "deploy/collectstatic.sh"}))
def test_every_script_refers_to_things_that_exist(script):
    assert (ROOT / script).read_text().startswith("#!/bin/sh")
    text = script_commands(script)
    assert "set -eu" in text
    for target in re.findall(r"gunicorn (\S+)", text):
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
    for config_file in re.findall(r"--config (\S+)", text):  # gunicorn's settings file loads
        loaded: dict[str, object] = {}
        exec(compile((ROOT / config_file).read_text(), config_file, "exec"), loaded)  # noqa: S102 - our own file
        assert loaded["worker_class"] == "gthread" and int(loaded["workers"]) >= 1 and int(loaded["threads"]) >= 1
    for app in re.findall(r"celery -A (\S+)", text):
        assert importlib.import_module(app).celery_app.main == "emorate"
    for command in re.findall(r"manage\.py (\w+)", text):
        assert command in get_commands(), command
    for module in re.findall(r"python -m (\S+)", text):
        assert importlib.util.find_spec(module) is not None, module
    from django.conf import settings
    known = {"default"} | {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    for default in re.findall(r"EMORATE_WORKER_QUEUES:-([\w,]+)", text):
        assert set(default.split(",")) <= known
    for service in COMPOSE["services"].values():
        queues = service.get("environment", {}).get("EMORATE_WORKER_QUEUES")
        if queues:
            assert set(queues.split(",")) <= known, queues


def test_the_image_leaves_out_secrets_and_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".env", ".git", ".venv", "var/", "media/"):
        assert entry in ignored, entry


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
    for var in re.findall(r"\{\$(\w+)", (ROOT / "deploy" / "Caddyfile").read_text()):  # Caddy's {$VAR:default}
        assert var in declared or var.startswith("CADDY_") or var == "EMORATE_UPSTREAM", var


def test_images_are_pinned():
    for name, service in COMPOSE["services"].items():
        image = service.get("image", "")
        if "build" not in service:
            assert ":" in image and not image.endswith(":latest"), name
