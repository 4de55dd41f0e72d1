"""Accessibility and tablets in real Chromium (#20).

- Every page each role can reach (the crawl of tests/support/crawl.py) passes axe-core (npm,
  pinned in tests/a11y/) with no serious or critical violation.
- The rate page works on a 1024x768 and a 768x1024 touch screen: no horizontal scrolling, the face
  and the first emotions visible together, slider touch targets at least 44 px, a tap sets a value.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import Browser, Page, expect

from accounts.models import User
from annotation.services.demo import DEMO_BINARY_SLUG, DEMO_SLUG
from tests.factories import PASSWORD, add_member, make_project, make_user
from tests.support.crawl import crawl
from tests.support.seed import demo_world, face_images

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
AXE = Path(__file__).resolve().parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")
SCREENSHOTS = os.environ.get("EMORATE_SCREENSHOTS")  # a folder: save the home pages there


def sign_in(page: Page, base: str, email: str, password: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def audit(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the current page, one line each."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [f"{v['impact']} {v['id']}: {v['help']} at {v['nodes']}" for v in violations if v["impact"] in SERIOUS]


@pytest.mark.parametrize("role", ["anonymous", "rater", "lead", "admin"])
def test_every_page_passes_axe(browser: Browser, live_server, role):
    assert AXE.exists(), "run `make test` (it installs tests/a11y/node_modules)"
    world = demo_world(n_images=12)
    client = Client()
    email = password = ""
    if role == "admin":
        email, password = "root@example.org", "a-root-password-42"
        User.objects.create_superuser(email=email, password=password)
    elif role != "anonymous":
        login = next(x for x in world.logins if x.role == role)
        email, password = login.email, login.password
    if email:
        client.force_login(User.objects.get(email=email))
    pages = sorted(path for path, html in crawl(client, max_pages=60).items() if html)
    if role == "anonymous":
        pages = sorted(set(pages) | {"/accounts/login/", "/accounts/password-reset/"})
    else:
        assert len(pages) >= 4, pages
    context = browser.new_context(bypass_csp=True)  # axe is injected as a script of its own
    page = context.new_page()
    try:
        if email:
            sign_in(page, live_server.url, email, password)
        problems = {}
        for path in pages:
            page.goto(f"{live_server.url}{path}")
            if SCREENSHOTS and path == "/" and role in ("rater", "lead"):
                page.set_viewport_size({"width": 1280, "height": 800})
                page.screenshot(path=os.path.join(SCREENSHOTS, f"home-{role}.png"), full_page=True)
            found = audit(page)
            if found:
                problems[path] = found
    finally:
        context.close()
    assert problems == {}, "\n".join(f"{p}:\n  " + "\n  ".join(v) for p, v in problems.items())


@pytest.mark.parametrize("width, height", [(1024, 768), (768, 1024)])
def test_the_rate_page_on_a_touch_tablet(browser: Browser, live_server, width, height):
    project = make_project(slug=f"tablet-{width}", target_ratings=2)
    face_images(project, 2)
    rater = make_user(email=f"tablet{width}@example.org")
    add_member(project, rater)
    context = browser.new_context(viewport={"width": width, "height": height}, has_touch=True, is_mobile=True,
                                  device_scale_factor=2)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, rater.email, PASSWORD)
        page.goto(f"{live_server.url}/projects/{project.slug}/rate/")
        expect(page.locator("#rate-stage")).to_have_attribute("data-ready", "1")
        wide = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0, f"{wide}px of horizontal scrolling at {width}x{height}"
        image = page.locator("#rate-stage img").first
        expect(image).to_be_in_viewport()
        first = page.get_by_role("slider").first
        expect(first).to_be_in_viewport()  # the face and the first emotion visible together
        small = page.evaluate("""() => Array.from(document.querySelectorAll('input[type=range], .rate-form button, .rate-aside button, .rate-aside select'))
            .filter(el => el.getBoundingClientRect().height < 44).map(el => el.id || el.name || el.textContent.trim())""")
        assert small == [], f"touch targets under 44px at {width}x{height}: {small}"
        box = first.bounding_box()
        assert box is not None
        page.touchscreen.tap(box["x"] + box["width"] - 4, box["y"] + box["height"] / 2)  # the high end
        expect(first).not_to_have_value("0")
        expect(page.locator(".emo.nz")).to_have_count(1)
    finally:
        context.close()


def test_the_binary_page_on_a_touch_tablet_has_big_answer_buttons(browser: Browser, live_server):
    world = demo_world(n_images=6)
    login = next(x for x in world.logins if x.role == "rater")
    context = browser.new_context(viewport={"width": 768, "height": 1024}, has_touch=True, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, login.email, login.password)
        page.goto(f"{live_server.url}/projects/{DEMO_BINARY_SLUG}/rate/")
        for name in ("Yes", "No"):
            box = page.get_by_role("button", name=name, exact=True).bounding_box()
            assert box is not None and box["height"] >= 44 and box["width"] >= 44
        wide = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert wide <= 0
    finally:
        context.close()
    assert DEMO_SLUG
