"""The production topology, run for real: what docker-compose.yml describes, as local processes.

deploy/topology.py starts PostgreSQL, Redis, the image build step (collectstatic), the migrate
job, gunicorn with config.settings.production, a Celery worker, beat and Caddy terminating TLS with
deploy/Caddyfile and a certificate made for this run. Chromium trusts that certificate by its
public key (and no other: --ignore-certificate-errors-spki-list), and everything below happens
over HTTPS only, as a lab's people would do it.
"""

from __future__ import annotations

import base64
import json
import random
import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserType, expect

from annotation import demo_faces
from deploy.topology import Topology
from tests.support.topology import FETCH_JS, PASSWORD, UPLOAD_JS, Watch, db_rows, launch_trusting, login

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]
RATERS = ("rater1@lab.example", "rater2@lab.example")
YEAR = 365 * 24 * 3600


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    topo = Topology()
    try:
        topo.start()
        # What the README's "Deployment" tells the first admin to do, then a project and its people.
        topo.manage("create_user", "admin@lab.example", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
        topo.manage("create_project", "hq", "--mode", "intensity", "--name", "EmoNet HQ", "--target", "3")
        topo.manage("create_user", "lead@lab.example", "--role", "lead", "--project", "hq", "--password-stdin",
                    stdin=PASSWORD + "\n")
        for email in RATERS:
            topo.manage("create_user", email, "--role", "rater", "--project", "hq", "--password-stdin",
                        stdin=PASSWORD + "\n")
        yield topo
    finally:
        topo.stop()


@pytest.fixture(scope="module")
def https_browser(browser_type: BrowserType, topology: Topology) -> Iterator[Browser]:
    browser = launch_trusting(browser_type, topology)
    yield browser
    browser.close()


def rate_two_images(browser: Browser, topology: Topology, email: str, watch: Watch) -> None:
    context, page = login(browser, topology, email, watch)
    page.goto("/projects/hq/rate/")
    stage = page.locator("#rate-stage")
    expect(stage).to_have_attribute("data-ready", "1")  # rate.js (a hashed static file) has run
    page.evaluate("window.__noReload = 'still here'")
    for values in ("3", "52"):
        before = stage.get_attribute("data-assignment")
        page.keyboard.press(values[0])
        if len(values) > 1:
            page.keyboard.press("ArrowDown")
            page.keyboard.press(values[1])
        page.keyboard.press("Control+Enter")
        expect(stage).not_to_have_attribute("data-assignment", before or "")
        expect(page.get_by_role("status")).to_have_text("Saved.")
    assert page.evaluate("window.__noReload") == "still here"  # htmx swapped the stage: no page load
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httpOnly"]
    assert cookies["csrftoken"]["secure"]
    context.close()


def metric(text: str, name: str, labels: str) -> float:
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, flags=re.M)
    assert match, f"{name}{{{labels}}} not in /metrics"
    return float(match.group(1))


def test_lead_raters_agreement_and_release_over_https(topology: Topology, https_browser: Browser) -> None:
    watch = Watch()
    # 1. The lead logs in and uploads images through the API, with the browser's session and CSRF token.
    lead, page = login(https_browser, topology, "lead@lab.example", watch)
    csrf = next(c["value"] for c in lead.cookies() if c["name"] == "csrftoken")
    rng = random.Random(7)
    for i in range(4):
        data = base64.b64encode(demo_faces.face_jpeg_bytes(demo_faces.random_spec(rng))).decode()
        status, text = page.evaluate(UPLOAD_JS, [data, f"face-{i}.jpg", csrf])
        assert status == 201, text
    page.goto("/projects/hq/dashboard/")
    expect(page.get_by_role("navigation", name="Dashboard pages")).to_be_visible()

    # 2. Two raters rate two images each from the keyboard (htmx swaps, CSRF over HTTPS, secure cookies).
    for email in RATERS:
        rate_two_images(https_browser, topology, email, watch)
    assert db_rows(topology, "SELECT count(*) FROM annotation_rating")[0][0] == 4

    # 3. The lead asks for an agreement recompute; the worker computes it; the dashboard shows it.
    asked = time.time()
    page.goto("/projects/hq/dashboard/agreement/")
    page.get_by_role("button", name="Recompute agreement").click()
    topology.wait(lambda: db_rows(topology, "SELECT count(*) FROM annotation_agreementsnapshot WHERE status = 'done' "
                                            f"AND created_at >= to_timestamp({asked - 1})")[0][0] > 0,
                  60, "the agreement snapshot")
    page.reload()
    expect(page.get_by_text(re.compile(r"Snapshot of \d{4}-\d\d-\d\d"))).to_be_visible()
    assert '"task_name": "annotation.tasks.agreement' in topology.log("worker")  # JSON lines with the task

    # 4. The lead builds a release and downloads its files; the manifest's hashes match the bytes.
    page.goto("/projects/hq/releases/")
    page.get_by_label("Version").fill("1.0.0")
    page.get_by_label("Minimum ratings per image").fill("2")
    page.get_by_label("Bootstrap resamples").fill("50")
    page.get_by_role("button", name="Create and build").click()
    expect(page.locator("td.status-built")).to_be_visible(timeout=90_000)
    status, manifest_text, _ = page.evaluate(FETCH_JS, page.get_by_role("link", name="manifest").get_attribute("href"))
    assert status == 200
    manifest = json.loads(manifest_text)
    data_file = next(f for f in manifest["files"] if f["path"].startswith("data/"))
    status, _, digest = page.evaluate(FETCH_JS, f"/projects/hq/releases/1.0.0/files/{data_file['path']}")
    assert status == 200 and digest == data_file["sha256"]
    lead.close()

    # Static files: every asset the pages used answered 200 with a far-future cache header.
    assert any("/static/js/rate." in url for url in watch.static)
    assert any("htmx" in url for url in watch.static)
    for url, (status, cache) in watch.static.items():
        assert status == 200, url
        max_age = int(re.search(r"max-age=(\d+)", cache).group(1)) if "max-age" in cache else 0
        assert max_age >= YEAR, (url, cache)
    # No mixed content: every request went to this HTTPS origin (or was inline data).
    assert watch.requests and all(u.startswith(topology.url + "/") or u.startswith("data:") for u in watch.requests), \
        [u for u in watch.requests if not u.startswith(topology.url)]
    assert not [m for m in watch.console if "Mixed Content" in m or "insecure" in m.lower()]
    # HSTS on every page.
    assert watch.documents and all("max-age=31536000" in d.get("strict-transport-security", "")
                                   for d in watch.documents)

    # Metrics count the ratings just submitted (the database's truth, whichever worker answers).
    status, _, text = topology.get("/metrics", {"Authorization": f"Bearer {topology.metrics_token}"})
    assert status == 200
    exposition = text.decode()
    assert metric(exposition, "emorate_ratings_stored_total", 'project="hq"') == 4
    assert metric(exposition, "emorate_http_request_duration_seconds_count",
                  'method="POST",route="/projects/<slug:slug>/rate/<int:assignment_id>/submit/"') == 4
    assert topology.get("/metrics")[0] == 404
    assert topology.get("/metrics", {"Authorization": "Bearer wrong"})[0] == 404

    # Logs: one JSON object per line, with the request id the response carried; user ids, never emails.
    status, headers, _ = topology.get("/accounts/login/")
    request_id = headers["X-Request-Id"]
    web_log = topology.log("web")
    lines = [json.loads(line) for line in web_log.splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == request_id and line["logger"] == "emorate.request"]
    assert len(mine) == 1 and mine[0]["route"] == "/accounts/login/" and mine[0]["status"] == 200
    assert {"time", "level", "duration_ms"} <= set(mine[0])
    submits = [line for line in lines if line.get("route", "").endswith("/submit/")]
    assert len(submits) == 4 and all(isinstance(line.get("user_id"), int) for line in submits)
    for log_name in ("web", "worker", "beat", "caddy"):
        assert "@lab.example" not in topology.log(log_name), log_name


def test_readiness_follows_the_database(topology: Topology) -> None:
    assert topology.get("/readyz")[0] == 200
    topology.stop_postgres()
    try:
        status, _, body = topology.get("/readyz")
        assert status == 503
        answer = json.loads(body)
        assert answer["failing"] == ["database"] and answer["checks"]["redis"] == "ok"
        assert topology.get("/healthz")[0] == 200  # liveness touches no dependency
    finally:
        topology.start_postgres()
    topology.wait(lambda: topology.get("/readyz")[0] == 200, 30, "/readyz after PostgreSQL returned")
