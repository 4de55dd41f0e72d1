"""No template or debug text ever reaches a page (#20): every page and fragment a person can reach
from the home page, as each demo role, is fetched and must not contain template syntax.

The pages are found by following the links and htmx attributes of what each role actually sees
(a crawl from "/"), so a new page is checked without being listed here.
"""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from django.test import Client

from accounts.models import User
from annotation.services.agreement_snapshot import agreement_snapshot_create
from annotation.services.demo import DEMO_SLUG, demo_seed
from annotation.services.releases import release_build, release_create

pytestmark = pytest.mark.django_db

TEMPLATE_SYNTAX = re.compile(r"\{#|#\}|\{%|%\}|\{\{|\}\}")
LINKS = re.compile(r'(?:href|hx-get|src|action)="([^"#][^"]*)"')
SKIP = ("/accounts/logout", "/admin/", "/static/", "/media/", "/api/", "/accounts/sso/")
MAX_PAGES = 250


def crawl(client: Client) -> dict[str, str]:
    """Every same-site page reachable by GET from "/", path -> HTML (text responses only)."""
    seen: dict[str, str] = {}
    todo = deque(["/"])
    while todo and len(seen) < MAX_PAGES:
        path = todo.popleft()
        if path in seen:
            continue
        response = client.get(path)
        if response.status_code in (301, 302):
            seen[path] = ""
            todo.append(urldefrag(urljoin(path, response["Location"]))[0])
            continue
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            seen[path] = ""
            continue
        html = response.content.decode()
        seen[path] = html
        for link in LINKS.findall(html):
            link = urldefrag(urljoin(path, link.replace("&amp;", "&")))[0]
            parts = urlsplit(link)
            if parts.netloc or not parts.path.startswith("/") or parts.path.startswith(SKIP):
                continue
            if link not in seen:
                todo.append(link)
    return seen


@pytest.fixture
def demo_world():
    result = demo_seed(n_images=24, seed=3)
    from annotation.models import Project
    project = Project.objects.get(slug=DEMO_SLUG)
    agreement_snapshot_create(project, n_boot=20)
    release_build(release_create(project=project, version="1.0.0", n_boot=0))
    return result


@pytest.mark.parametrize("role", ["anonymous", "rater", "lead", "admin"])
def test_no_page_shows_template_syntax(demo_world, role):
    client = Client()
    if role == "admin":
        client.force_login(User.objects.create_superuser(email="root@example.org", password="x" * 12))
    elif role != "anonymous":
        login = next(x for x in demo_world.logins if x.role == role)
        client.force_login(User.objects.get(email=login.email))
    pages = crawl(client)
    html_pages = {path: html for path, html in pages.items() if html}
    # The crawl really reached the role's pages (a broken crawl must not pass for a clean site).
    expected = {"anonymous": 1, "rater": 4, "lead": 10, "admin": 10}[role]
    assert len(html_pages) >= expected, sorted(pages)
    if role == "rater":
        assert any("/rate/" in path for path in html_pages), sorted(html_pages)
    bad = {path: TEMPLATE_SYNTAX.findall(html)[:3] for path, html in html_pages.items() if TEMPLATE_SYNTAX.search(html)}
    assert bad == {}, f"template syntax in rendered pages: {bad}"


def test_the_guard_catches_a_multi_line_comment():
    from django.template import engines

    rendered = engines["django"].from_string("{# one line is a comment #}\n{# two\nlines are not #}").render({})
    assert TEMPLATE_SYNTAX.search(rendered)
