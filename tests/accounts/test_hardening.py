"""Finding 10 (settings side): Content-Security-Policy without inline scripts, the API schema and
docs behind sign-in, a Redis password."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
from playwright.sync_api import Page

from accounts.models import Role
from tests.factories import PASSWORD, add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def test_every_page_has_a_policy_without_inline_scripts(client):
    policy = client.get("/accounts/login/")["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";") if d.strip())
    assert directives["script-src"] == "'self'" and directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'" and "unsafe" not in directives["default-src"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_pages_run_under_the_policy_in_chromium(page: Page, live_server):
    """Chromium enforces the header: the login, rate and token pages report no violation and htmx works."""
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    project = make_project(slug="csp")
    rater, lead = make_user(Role.RATER, email="r@lab.org"), make_user(Role.LEAD, email="l@lab.org")
    add_member(project, rater, lead)
    page.goto(f"{live_server.url}/accounts/login/?next=/projects/csp/")
    page.get_by_label("Email").fill("l@lab.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/projects/csp/")
    for path in ("/accounts/tokens/", "/accounts/2fa/setup/", "/projects/csp/dashboard/", "/accounts/invitations/"):
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("networkidle")
    assert page.evaluate("typeof window.htmx") == "object"  # the one script, from our own origin, ran
    assert violations == []


def test_the_api_schema_and_docs_need_a_signed_in_user(client):
    for path in ("/api/schema/", "/api/docs/"):
        assert client.get(path).status_code in (401, 403)
    client.force_login(make_user(Role.RATER))
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.skipif(not shutil.which("redis-server"), reason="redis-server is installed by make test")
def test_redis_password_reaches_cache_and_broker(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--requirepass", "s3cr/t@pw", "--dir", str(tmp_path)],
                              stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        code = ("import django; from django.conf import settings; django.setup(); "
                "from django.core.cache import caches; from redis import Redis; "
                "print(settings.CELERY_BROKER_URL == settings.CACHES['default']['LOCATION']); "
                "Redis.from_url(settings.CELERY_BROKER_URL).set('k', 'v'); print(Redis.from_url(settings.REDIS_URL).get('k'))")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.base", "DJANGO_DEBUG": "1",
               "REDIS_URL": f"redis://127.0.0.1:{port}/0", "REDIS_PASSWORD": "s3cr/t@pw"}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert out.stdout.split() == ["True", "b'v'"], out.stderr[-2000:]
        env.pop("REDIS_PASSWORD")
        refused = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "AuthenticationError" in refused.stderr, refused.stderr[-500:]
    finally:
        server.terminate()
        server.wait(timeout=10)
