import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import Role
from annotation.models import Image, ModelScore, Rating
from annotation.taxonomy import EMOTIONS
from tests.factories import add_member, image_bytes, make_image, make_project, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead_client():
    project = make_project(slug="hq")
    lead = make_user(Role.LEAD, email="lead@example.org")
    add_member(project, lead)
    out = io.StringIO()
    call_command("api_token_create", "lead@example.org", "--scope", "read_write", stdout=out, stderr=io.StringIO())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {out.getvalue().strip()}")
    return project, lead, client


def test_token_auth_and_revocation(lead_client):
    project, lead, client = lead_client
    assert client.get("/api/v1/projects/").json()["results"][0]["slug"] == "hq"
    call_command("api_token_create", "--revoke-others", "lead@example.org", stdout=io.StringIO(),
                 stderr=io.StringIO())  # rotate: old key revoked
    resp = client.get("/api/v1/projects/")
    assert resp.status_code == 401 and "Invalid, expired or revoked token" in resp.json()["detail"]


def test_upload_one_image_and_refusals(lead_client):
    project, _, client = lead_client
    ok = client.post("/api/v1/projects/hq/images/", {"file": io.BytesIO(image_bytes("PNG")), "age": 40,
                                                     "gender": "woman"}, format="multipart")
    assert ok.status_code == 201, ok.json()
    assert ok.json()["format"] == "PNG" and ok.json()["age"] == 40
    bad = io.BytesIO(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    bad.name = "evil.svg"
    resp = client.post("/api/v1/projects/hq/images/", {"file": bad}, format="multipart")
    assert resp.status_code == 400 and "SVG/HTML/XML documents are not accepted" in resp.json()["file"][0]
    traversal = io.BytesIO(image_bytes())
    traversal.name = "../../etc/passwd.jpg"
    resp = client.post("/api/v1/projects/hq/images/", {"file": traversal}, format="multipart")
    assert resp.status_code == 201 and resp.json()["name"] == "passwd.jpg"
    assert ".." not in Image.objects.get(name="passwd.jpg").file.name
    assert client.post("/api/v1/projects/hq/images/", {}, format="multipart").status_code == 400
    assert Image.objects.filter(project=project).count() == 2


def test_bulk_upload_reports_each_file(lead_client):
    _, _, client = lead_client
    good = image_bytes()
    files = [io.BytesIO(good), io.BytesIO(good), io.BytesIO(b"not an image")]
    for f, name in zip(files, ["a.jpg", "b.jpg", "c.jpg"], strict=True):
        f.name = name
    resp = client.post("/api/v1/projects/hq/images/bulk/", {"files": files}, format="multipart")
    body = resp.json()
    assert resp.status_code == 200 and body["imported"] == ["a.jpg"]
    assert body["duplicates"][0]["name"] == "b.jpg" and body["rejected"][0]["name"] == "c.jpg"


def test_image_list_filters_and_pagination(lead_client):
    project, _, client = lead_client
    for i in range(3):
        make_image(project, gender="man" if i else "woman", flagged=(i == 2))
    assert client.get("/api/v1/projects/hq/images/").json()["count"] == 3
    assert client.get("/api/v1/projects/hq/images/?flagged=true").json()["count"] == 1
    assert client.get("/api/v1/projects/hq/images/?gender=woman").json()["count"] == 1
    resp = client.get("/api/v1/projects/hq/images/?flagged=maybe")
    assert resp.status_code == 400 and "'maybe' is not true or false" in resp.json()["flagged"][0]


def test_ratings_export_and_model_scores(lead_client):
    project, _, client = lead_client
    rater = make_user()
    image = make_image(project, name="x.jpg")
    Rating.objects.create(project=project, image=image, rater=rater, values=[2] * 40, scale_max=7,
                          taxonomy_version="emonet-face-1")
    ModelScore.objects.create(project=project, image=image, model_name="m", scores=[0.5] * 40,
                              taxonomy_version="emonet-face-1")
    body = client.get("/api/v1/projects/hq/ratings/").json()
    assert body["count"] == 1 and body["results"][0]["values"] == [2] * 40 and body["emotions"] == list(EMOTIONS)
    assert client.get("/api/v1/projects/hq/ratings/?since=yesterday").status_code == 400
    assert client.get(f"/api/v1/projects/hq/ratings/?rater={rater.pk + 1000}").json()["count"] == 0
    scores = client.get("/api/v1/projects/hq/model-scores/").json()
    assert scores["results"][0]["scores"][0] == pytest.approx(0.5)


def test_raters_get_nothing_through_the_api():
    project = make_project(slug="hq")
    rater = make_user(Role.RATER)
    add_member(project, rater)
    client = APIClient()
    client.force_authenticate(rater)
    assert client.get("/api/v1/projects/").json()["count"] == 1  # their own project, no figures
    for url in ("images/", "ratings/", "model-scores/", "agreement/", "releases/"):
        resp = client.get(f"/api/v1/projects/hq/{url}")
        assert resp.status_code == 403, url
        assert "leads and admins" in resp.json()["detail"]


def test_schema_and_docs_pages(client):
    assert client.get("/api/schema/").status_code == 401  # signed-in users only (#16 finding 10)
    client.force_login(make_user(Role.RATER))
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/projects/{slug}/agreement/" in schema.content
    assert client.get("/api/docs/").status_code == 200


def test_docs_page_needs_no_cdn(client):
    client.force_login(make_user(Role.RATER))
    html = client.get("/api/docs/").content.decode()
    assert "cdn.jsdelivr" not in html and "/static/drf_spectacular_sidecar/" in html


def test_query_parameters_out_of_range_are_refused(lead_client):
    _, _, client = lead_client
    resp = client.get("/api/v1/projects/hq/ratings/?rater=99999999999999999999")
    assert resp.status_code == 400 and "out of range" in resp.json()["rater"][0]
    resp = client.get("/api/v1/projects/hq/ratings/?since=2026-02-30T10:00:00")
    assert resp.status_code == 400 and "not an ISO date-time" in resp.json()["since"][0]


def test_push_model_scores_from_an_external_scorer(lead_client):
    project, _, client = lead_client
    image = make_image(project, name="x.jpg")
    body = {"model_name": "empathic-insight-face", "model_version": "abc123",
            "scores": [{"image": "x.jpg", "scores": [1.5] * 40}]}
    resp = client.post("/api/v1/projects/hq/model-scores/", body, format="json")
    assert resp.status_code == 201 and resp.json() == {"stored": 1, "already_present": 0}
    assert client.post("/api/v1/projects/hq/model-scores/", body, format="json").json()["already_present"] == 1
    bad = {"model_name": "m", "scores": [{"image": "nope.jpg", "scores": [1] * 40},
                                         {"image": image.sha256, "scores": [1] * 39}]}
    resp = client.post("/api/v1/projects/hq/model-scores/", bad, format="json")
    assert resp.status_code == 400
    errors = " ".join(resp.json()["scores"])
    assert "no image 'nope.jpg'" in errors and "item 1" in errors
    assert ModelScore.objects.filter(project=project).count() == 1
    listed = client.get("/api/v1/projects/hq/model-scores/").json()["results"][0]
    assert listed["model_version"] == "abc123"
