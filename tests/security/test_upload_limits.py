"""Uploads cannot exhaust memory or disk (security review L6): a request body over
EMORATE_MAX_REQUEST_BYTES is refused before it is parsed, and an image over EMORATE_IMAGE_MAX_BYTES
is refused by its size, never read whole into memory."""

from __future__ import annotations

import http.client
import json
import tracemalloc
import uuid
from urllib.parse import urlsplit

import pytest

from accounts.api_tokens import api_token_create
from accounts.models import Role
from annotation.models import Image
from tests.factories import add_member, image_bytes, make_project, make_user


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.django_db
def test_a_body_over_the_request_cap_is_refused_before_it_is_read(client, settings):
    settings.EMORATE_MAX_REQUEST_BYTES = 50_000
    project = make_project(slug="capped")
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    token = api_token_create(user=lead, scope="read_write")[1]
    body, content_type = _multipart("big.jpg", b"\xff\xd8" + bytes(60_000))
    response = client.post("/api/v1/projects/capped/images/", data=body, content_type=content_type,
                           HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 413
    assert "EMORATE_MAX_REQUEST_BYTES" in response.json()["detail"] and "50,000" in response.json()["detail"]
    client.force_login(lead)
    page = client.post("/accounts/login/", data=body, content_type=content_type)
    assert page.status_code == 413 and b"EMORATE_MAX_REQUEST_BYTES" in page.content
    # Under the cap, the same route works.
    small, content_type = _multipart("small.jpg", image_bytes())
    ok = client.post("/api/v1/projects/capped/images/", data=small, content_type=content_type,
                     HTTP_AUTHORIZATION=f"Token {token}")
    assert ok.status_code == 201, ok.content
    assert Image.objects.filter(project=project).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_oversized_image_is_refused_by_its_size_without_being_read_into_memory(live_server, settings):
    """20 MB streamed to the real server in 64 KB chunks: refused naming the limit, and the server
    side never holds more than a few MB (before the fix it read all 20 MB with upload.read())."""
    settings.EMORATE_IMAGE_MAX_BYTES = 1_000_000
    make_project(slug="bigfile")
    lead = make_user(Role.LEAD)
    from annotation.models import Project
    add_member(Project.objects.get(slug="bigfile"), lead)
    token = api_token_create(user=lead, scope="read_write")[1]
    size = 20 * 1024 * 1024
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"huge.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    url = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    tracemalloc.start()
    try:
        conn.putrequest("POST", "/api/v1/projects/bigfile/images/")
        conn.putheader("Authorization", f"Token {token}")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(len(head) + size + len(tail)))
        conn.endheaders()
        conn.send(head)
        chunk = b"\xff\xd8" + bytes(64 * 1024 - 2)
        for _ in range(size // len(chunk)):
            conn.send(chunk)
        conn.send(tail)
        response = conn.getresponse()
        payload = json.loads(response.read())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        conn.close()
    assert response.status == 400
    assert "20,971,520 bytes; the limit is 1,000,000 bytes" in payload["file"][0]
    assert peak < 8 * 1024 * 1024, f"the server held {peak:,} bytes at once"
    assert not Image.objects.filter(project__slug="bigfile").exists()
