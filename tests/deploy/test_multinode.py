"""Several machines sharing nothing but PostgreSQL, Redis and the bucket.

Two web nodes (each gunicorn with the production settings behind its own Caddy, each with its own
empty media folder) and a Celery worker with a third, on one real S3 server (SeaweedFS): a lead
uploads on node A, a rater rates on node B and sees the images, the worker computes agreement and
builds a release, the lead downloads it from node A; no node's disk ever holds an image or a
release file.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserType, expect

from annotation import demo_faces
from deploy.topology import Topology
from tests.support.s3 import bucket_keys, s3_endpoint, s3_env
from tests.support.topology import FETCH_JS, PASSWORD, UPLOAD_JS, Watch, db_rows, launch_trusting, login

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def bucket() -> str:
    s3_endpoint()
    return f"emorate-nodes-{uuid.uuid4().hex[:10]}"  # created by the migrate job (manage.py storage_init)


@pytest.fixture(scope="module")
def nodes(bucket: str) -> Iterator[Topology]:
    topo = Topology(web_nodes=2, workers=1, extra_env=s3_env(bucket))
    try:
        topo.start()
        topo.manage("create_project", "multi", "--mode", "intensity", "--target", "2")
        topo.manage("create_user", "lead@lab.example", "--role", "lead", "--project", "multi", "--password-stdin",
                    stdin=PASSWORD + "\n")
        topo.manage("create_user", "rater1@lab.example", "--role", "rater", "--project", "multi", "--password-stdin",
                    stdin=PASSWORD + "\n")
        yield topo
    finally:
        topo.stop()


@pytest.fixture(scope="module")
def browser(browser_type: BrowserType, nodes: Topology) -> Iterator[Browser]:
    launched = launch_trusting(browser_type, nodes)
    yield launched
    launched.close()


class At:
    """A Topology seen through one node's URL (login() and the page helpers take a topology)."""

    def __init__(self, topo: Topology, url: str) -> None:
        self.url = url
        self.topo = topo


def local_files(roots: list[Path]) -> list[str]:
    return sorted(str(p) for root in roots if root.exists() for p in root.rglob("*") if p.is_file())


def test_upload_on_one_node_rate_on_another_release_from_the_bucket(nodes: Topology, browser: Browser,
                                                                      bucket: str) -> None:
    node_a, node_b = nodes.node_urls
    assert node_a != node_b
    # The lead uploads three images on node A.
    lead, page = login(browser, At(nodes, node_a), "lead@lab.example", Watch())  # type: ignore[arg-type]
    csrf = next(c["value"] for c in lead.cookies() if c["name"] == "csrftoken")
    rng = random.Random(11)
    for i in range(3):
        data = base64.b64encode(demo_faces.face_jpeg_bytes(demo_faces.random_spec(rng))).decode()
        status, text = page.evaluate(UPLOAD_JS.replace("/projects/hq/", "/projects/multi/"),
                                     [data, f"face-{i}.jpg", csrf])
        assert status == 201, text

    # The rater rates two of them on node B, and the images display there.
    rater, rpage = login(browser, At(nodes, node_b), "rater1@lab.example", Watch())  # type: ignore[arg-type]
    rpage.goto("/projects/multi/rate/")
    stage = rpage.locator("#rate-stage")
    for value in ("4", "2"):
        expect(stage).to_have_attribute("data-ready", "1")
        image = rpage.get_by_role("img", name="Face to rate")
        expect(image).to_have_js_property("complete", True)
        assert rpage.evaluate("document.querySelector('#rate-stage img').naturalWidth") > 0  # really displayed
        before = stage.get_attribute("data-assignment")
        rpage.keyboard.press(value)
        rpage.keyboard.press("Control+Enter")
        expect(stage).not_to_have_attribute("data-assignment", before or "")
    rater.close()
    assert db_rows(nodes, "SELECT count(*) FROM annotation_rating")[0][0] == 2

    # The worker (its own disk) computes agreement and builds a release; the lead downloads it from node A.
    page.goto("/projects/multi/dashboard/agreement/")
    page.get_by_role("button", name="Recompute agreement").click()
    nodes.wait(lambda: db_rows(nodes, "SELECT count(*) FROM annotation_agreementsnapshot "
                                      "WHERE status = 'done'")[0][0] > 0, 60, "the agreement snapshot")
    page.goto("/projects/multi/releases/")
    page.get_by_label("Version").fill("1.0.0")
    page.get_by_label("Minimum ratings per image").fill("1")
    page.get_by_label("Bootstrap resamples").fill("0")
    page.get_by_role("button", name="Create and build").click()
    expect(page.locator("td.status-built")).to_be_visible(timeout=90_000)
    status, manifest_text, _ = page.evaluate(FETCH_JS, "/projects/multi/releases/1.0.0/files/manifest.json")
    assert status == 200
    for entry in json.loads(manifest_text)["files"]:
        status, _, digest = page.evaluate(FETCH_JS, f"/projects/multi/releases/1.0.0/files/{entry['path']}")
        assert status == 200 and digest == entry["sha256"], entry["path"]
    lead.close()

    # Everything lives in the bucket; no node's disk holds an image, a served copy or a release file.
    keys = bucket_keys(bucket)
    assert sum(k.startswith("images/") for k in keys) == 3 and sum(k.startswith("served/") for k in keys) == 3
    assert any(k.startswith("releases/") and k.endswith("manifest.json") for k in keys)
    assert len(nodes.media_roots()) == 3  # node A (and the commands), node B, the worker
    assert local_files(nodes.media_roots()) == []
