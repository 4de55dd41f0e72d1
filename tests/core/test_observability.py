"""Health, readiness, metrics, request ids, JSON logs and error tracking, in the Django process.

The same things run end to end behind Caddy in tests/deploy/test_topology.py; here each rule is
pinned on its own, quickly, including the failures that the topology cannot easily cause.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import threading
import zlib
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.test import override_settings

from annotation import taxonomy
from annotation.rating.claim import assignment_claim
from annotation.services.image_import import image_import_one
from core.errortracking import _scrub
from core.observability import ContextFilter, EmorateJsonFormatter, bind_celery_task
from tests.factories import add_member, image_bytes, make_project, make_user

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any database access in this test raises.
    response = client.get("/healthz", HTTP_HOST="not-an-allowed-host.example")  # probes bypass host checks
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_names_every_dependency(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok", "storage": "ok"}}


@pytest.mark.django_db
def test_readyz_is_503_naming_redis_when_redis_is_unreachable(client):
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["failing"] == ["redis"]
    assert body["checks"]["redis"].startswith("failing:") and body["checks"]["database"] == "ok"


@pytest.mark.django_db
def test_readyz_is_503_naming_storage_when_media_is_not_writable(client, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with override_settings(MEDIA_ROOT=str(blocker / "media")):
        response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failing"] == ["storage"]


@pytest.mark.django_db
def test_readyz_is_503_naming_the_database_while_a_migration_is_not_applied(client, monkeypatch):
    from django.db import connection

    import core.health

    monkeypatch.setattr(core.health, "_migrated", False)
    with connection.cursor() as cursor:  # inside the test's transaction: rolled back afterwards
        cursor.execute("DELETE FROM django_migrations WHERE id = (SELECT max(id) FROM django_migrations "
                       "WHERE app = 'annotation')")
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["failing"] == ["database"]
    assert "1 migration(s) not applied" in response.json()["checks"]["database"]


def metrics_text(client, token: str = "s3cret-token") -> str:  # type: ignore[no-untyped-def]
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def value(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, flags=re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_are_hidden_without_the_configured_token(client):
    with override_settings(EMORATE_METRICS_TOKEN=""):
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404
    with override_settings(EMORATE_METRICS_TOKEN="s3cret-token"):
        assert client.get("/metrics").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
        assert client.get("/metrics", HTTP_AUTHORIZATION="s3cret-token").status_code == 404


@pytest.mark.django_db
@override_settings(EMORATE_METRICS_TOKEN="s3cret-token")
def test_metrics_count_ratings_refusals_leases_and_latency(client):
    project = make_project(slug="m", target_ratings=2)
    rater = make_user(email="m-rater@example.org")
    add_member(project, rater)
    for i in range(3):
        image_import_one(project=project, name=f"{i}.jpg", data=image_bytes(color=(i, 2 * i, 3)), meta=None)
    before = metrics_text(client)
    assert value(before, "emorate_images_below_target", 'project="m"') == 3
    assignment = assignment_claim(project=project, rater=rater)
    client.force_login(rater)
    url = f"/projects/m/rate/{assignment.pk}/submit/"
    refused = client.post(url, data=json.dumps({"emo:Amusement": "99"}), content_type="application/json",
                          HTTP_HX_REQUEST="true")
    assert 400 <= refused.status_code < 500
    good = {"client_token": "t-1", "active_seconds": "3.5", **{f"emo:{n}": "2" for n in taxonomy.EMOTIONS}}
    accepted = client.post(url, data=json.dumps(good), content_type="application/json", HTTP_HX_REQUEST="true")
    assert accepted.status_code == 200
    after = metrics_text(client)
    assert value(after, "emorate_ratings_stored_total", 'project="m"') == 1
    assert value(after, "emorate_open_leases", 'project="m"') == 1  # the next image, claimed by the submit
    status = str(refused.status_code)
    assert value(after, "emorate_submissions_refused_total", f'status="{status}"') == \
        value(before, "emorate_submissions_refused_total", f'status="{status}"') + 1
    route = 'method="POST",route="/projects/<slug:slug>/rate/<int:assignment_id>/submit/"'
    assert value(after, "emorate_http_request_duration_seconds_count", route) >= 2
    for queue in ("default", "agreement", "releases", "gpu"):
        assert f'emorate_celery_queue_depth{{queue="{queue}"}}' in after
    assert "emorate_release_builds{status=\"failed\"}" in after


def test_every_response_carries_a_request_id(client):
    first = client.get("/healthz")
    assert "X-Request-ID" not in first  # probes are answered before the request id middleware
    response = client.get("/accounts/login/")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    kept = client.get("/accounts/login/", HTTP_X_REQUEST_ID="caddy-1234-abcd")
    assert kept["X-Request-ID"] == "caddy-1234-abcd"
    forged = client.get("/accounts/login/", HTTP_X_REQUEST_ID="x\n{\"level\": \"forged\"}")
    assert re.fullmatch(r"[0-9a-f]{32}", forged["X-Request-ID"])


@pytest.fixture
def json_log():  # type: ignore[no-untyped-def]
    """The production log handler (JSON formatter + context filter) on the access logger."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EmorateJsonFormatter())
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("emorate")
    # Levels as production sets them, whatever earlier tests (or an in-process worker) left behind.
    old_levels = (logger.level, logging.getLogger("emorate.request").level)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logging.getLogger("emorate.request").setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old_levels[0])
    logging.getLogger("emorate.request").setLevel(old_levels[1])


@pytest.mark.django_db
def test_access_line_is_json_with_route_status_duration_and_user_id_never_the_email(client, json_log):
    user = make_user(email="private.person@example.org", display_name="Private Person")
    project = make_project(slug="j")
    add_member(project, user)
    client.force_login(user)
    response = client.get("/projects/j/")
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == response["X-Request-ID"]]
    assert len(mine) == 1
    line = mine[0]
    assert line["logger"] == "emorate.request" and line["level"] == "INFO"
    assert line["route"] == "/projects/<slug:slug>/" and line["status"] == response.status_code
    assert line["method"] == "GET" and line["duration_ms"] >= 0 and line["user_id"] == user.pk
    assert re.match(r"\d{4}-\d\d-\d\dT", line["time"])
    assert "private.person" not in json_log.getvalue() and "Private Person" not in json_log.getvalue()


def test_task_lines_carry_the_task_id_and_name(json_log):
    bind_celery_task("0b1c-task", "annotation.tasks.agreement_snapshot_task")
    try:
        logging.getLogger("emorate.jobs").warning("snapshot started")
    finally:
        bind_celery_task(None, None)
    logging.getLogger("emorate.jobs").warning("outside a task")
    first, second = (json.loads(line) for line in json_log.getvalue().splitlines())
    assert first["task_id"] == "0b1c-task" and first["task_name"] == "annotation.tasks.agreement_snapshot_task"
    assert "task_id" not in second


def test_sentry_scrubber_keeps_only_the_user_id():
    event = {"user": {"id": 7, "email": "a@b.org", "username": "a", "ip_address": "10.0.0.1"},
             "request": {"data": {"emo:Fear": "3"}, "cookies": {"sessionid": "x"},
                         "headers": {"Cookie": "sessionid=x", "Authorization": "Token k", "User-Agent": "ua"}}}
    scrubbed = _scrub(event, {})
    assert scrubbed["user"] == {"id": 7}
    assert scrubbed["request"] == {"headers": {"User-Agent": "ua"}}


class _Ingest(BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding") == "gzip":
            raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        _Ingest.bodies.append(raw)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_sentry_sends_errors_without_personal_data():
    """A real sentry-sdk, initialised by the settings from SENTRY_DSN, posting to an HTTP server
    on loopback: the error arrives, and no email, cookie or client address does."""
    server = HTTPServer(("127.0.0.1", 0), _Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = (
        "import django, sentry_sdk; django.setup()\n"
        "sentry_sdk.set_user({'id': 42, 'email': 'expert@clinic.example', 'ip_address': '10.1.2.3'})\n"
        "try:\n    raise ValueError('boom in a view')\n"
        "except ValueError as exc:\n    sentry_sdk.capture_exception(exc)\n"
        "sentry_sdk.flush(5)\n")
    env = {**os.environ, "SENTRY_DSN": f"http://publickey@127.0.0.1:{server.server_port}/1",
           "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    try:
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=60)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    sent = b"".join(_Ingest.bodies).decode(errors="replace")
    assert "boom in a view" in sent
    assert "expert@clinic.example" not in sent and "10.1.2.3" not in sent
    assert '"id":42' in sent.replace(" ", "") or '"id":"42"' in sent.replace(" ", "")
