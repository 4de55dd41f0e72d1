import time

import numpy as np
import pytest

from accounts.models import Role
from annotation.models import Release
from annotation.services.releases import release_build, release_create
from tests.factories import add_member, make_project, make_user
from tests.support.seed import populate

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    project = make_project(slug="hq")
    lead, rater, stranger = make_user(Role.LEAD), make_user(Role.RATER), make_user(Role.LEAD)
    add_member(project, lead, rater)
    populate(project, 60, [make_user() for _ in range(4)], np.random.default_rng(0))
    return project, lead, rater, stranger


def test_lead_creates_a_release_and_its_build_is_queued(client, setup, django_capture_on_commit_callbacks):
    project, lead, *_ = setup
    client.force_login(lead)
    with django_capture_on_commit_callbacks() as callbacks:
        resp = client.post("/api/v1/projects/hq/releases/", {"version": "1.0.0", "n_boot": 10},
                           content_type="application/json")
    assert resp.status_code == 202 and resp.json()["status"] == "draft"
    assert len(callbacks) == 1  # the build task is sent on commit
    assert Release.objects.get(project=project).config["agreement"]["n_boot"] == 10
    bad = client.post("/api/v1/projects/hq/releases/", {"version": "1.0"}, content_type="application/json")
    assert bad.status_code == 400 and "not a semantic version" in bad.json()["detail"]
    again = client.post("/api/v1/projects/hq/releases/", {"version": "1.0.0"}, content_type="application/json")
    assert again.status_code == 400 and "already exists" in again.json()["detail"]


def test_detail_lists_files_with_download_links(client, setup):
    project, lead, rater, stranger = setup
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    client.force_login(lead)
    body = client.get("/api/v1/projects/hq/releases/1.0.0/").json()
    assert body["status"] == "built" and body["progress"] == 100
    card = next(f for f in body["files"] if f["path"] == "README.md")
    download = client.get(card["url"])
    assert download.status_code == 200 and b"".join(download.streaming_content).startswith(b"---")
    assert client.get("/api/v1/projects/hq/releases/1.0.0/files/../../../etc/passwd").status_code == 404
    assert client.get("/api/v1/projects/hq/releases/1.0.0/files/settings.py").status_code == 404
    assert client.get("/api/v1/projects/hq/releases/9.9.9/").status_code == 404
    assert [r["version"] for r in client.get("/api/v1/projects/hq/releases/").json()] == [release.version]
    for user in (rater, stranger):
        client.force_login(user)
        assert client.get("/api/v1/projects/hq/releases/").status_code == 403
        assert client.get(card["url"]).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_build_and_publish_through_the_api_on_a_real_worker(client, celery_worker_real):
    project = make_project(slug="hq")
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    populate(project, 40, [make_user() for _ in range(3)], np.random.default_rng(3))
    client.force_login(lead)
    resp = client.post("/api/v1/projects/hq/releases/", {"version": "1.0.0", "publish": True, "n_boot": 20},
                       content_type="application/json")
    assert resp.status_code == 202
    for _ in range(300):
        status = client.get("/api/v1/projects/hq/releases/1.0.0/").json()["status"]
        if status in ("published", "failed"):
            break
        time.sleep(0.1)
    assert status == "published"


def test_lead_release_page_create_poll_and_publish(client, setup, django_capture_on_commit_callbacks):
    project, lead, rater, _ = setup
    client.force_login(lead)
    page = client.get("/projects/hq/releases/")
    assert page.status_code == 200 and "No release yet" in page.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        resp = client.post("/projects/hq/releases/new/", {"version": "1.0.0", "n_boot": "0", "method": "median"})
    assert resp.status_code == 302 and len(callbacks) == 1
    # While the build is pending, the row polls itself.
    row = client.get("/projects/hq/releases/1.0.0/row/", HTTP_HX_REQUEST="true")
    assert row.status_code == 200 and 'hx-trigger="every 1s"' in row.content.decode()
    release_build(Release.objects.get(project=project, version="1.0.0"))
    done = client.get("/projects/hq/releases/1.0.0/row/", HTTP_HX_REQUEST="true")
    assert done.status_code == 286  # htmx: stop polling
    assert "hx-trigger" not in done.content.decode() and "Publish" in done.content.decode()
    assert client.post("/projects/hq/releases/1.0.0/publish/").status_code == 302
    assert Release.objects.get(project=project).status == "published"
    card = client.get("/projects/hq/releases/1.0.0/files/README.md")
    assert card.status_code == 200
    bad = client.post("/projects/hq/releases/new/", {"version": "0.1.0"})
    assert bad.status_code == 400 and "not above the latest release 1.0.0" in bad.content.decode()
    client.force_login(rater)
    assert client.get("/projects/hq/releases/").status_code == 403
    assert client.get("/projects/hq/releases/1.0.0/files/README.md").status_code == 403
