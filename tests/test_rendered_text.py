"""No template or debug text ever reaches a page (#20): every page and fragment a person can reach
from the home page, as each demo role, is fetched and must not contain template syntax.

The pages are found by following the links and htmx attributes of what each role actually sees
(a crawl from "/"), so a new page is checked without being listed here.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import User
from tests.support.crawl import crawl
from tests.support.seed import demo_world

pytestmark = pytest.mark.django_db

TEMPLATE_SYNTAX = re.compile(r"\{#|#\}|\{%|%\}|\{\{|\}\}")


@pytest.fixture(name="demo_world")
def demo_world_fixture():
    return demo_world()


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
