"""The rating page in real headless Chromium: keyboard-only rating, htmx swaps, drafts, binary y/n."""

from __future__ import annotations

import json
import os

import pytest
from playwright.sync_api import Page, expect

from annotation import taxonomy
from annotation.models import Rating
from tests.factories import PASSWORD, add_member, make_project, make_user
from tests.support.seed import face_images

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NAMES = taxonomy.EMOTIONS
SCREENSHOTS = os.environ.get("EMORATE_SCREENSHOTS")  # a folder: save screenshots of the page there


def login(page: Page, live_server, project) -> None:
    rater = make_user(email=f"rater-{project.slug}@example.org")
    add_member(project, rater)
    page.goto(f"{live_server.url}/accounts/login/?next=/projects/{project.slug}/rate/")
    page.get_by_label("Email").fill(rater.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page.locator("#rate-stage")).to_be_visible()
    expect(page.locator("#rate-stage")).to_have_attribute("data-ready", "1")  # the page's script has run


def stage_id(page: Page) -> str:
    return page.locator("#rate-stage").get_attribute("data-assignment") or ""


def test_intensity_rating_with_the_keyboard_only(page: Page, live_server):
    project = make_project(slug="kbd", target_ratings=2)
    images = face_images(project, 3)
    page.set_viewport_size({"width": 1440, "height": 1000})
    login(page, live_server, project)
    first = stage_id(page)
    for name in NAMES:
        expect(page.get_by_role("slider", name=name, exact=True)).to_have_count(1)
    expect(page.get_by_text("not present")).to_be_visible()
    expect(page.get_by_text("very strong")).to_be_visible()
    page.evaluate("window.__noReload = 'still here'")
    expected = [(i * 5) % 8 if i % 3 == 0 else 0 for i in range(40)]
    # focus starts on the first emotion; walk through all 40 in display (group) order
    order = [taxonomy.load().index_of(n) for g in taxonomy.load().groups for n in g.emotions]
    expect(page.get_by_role("slider", name=NAMES[order[0]], exact=True)).to_be_focused()
    for pos, idx in enumerate(order):
        if expected[idx]:
            page.keyboard.press(str(expected[idx]))
        if pos < len(order) - 1:
            page.keyboard.press("ArrowDown")
    expect(page.locator(".emo.nz")).to_have_count(sum(1 for v in expected if v))
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "rate-intensity.png"), full_page=True)
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/submit/")) as sent:
        page.keyboard.press("Control+Enter")
    # htmx sends the form as one JSON object (rate.js, views.rate._fields)
    assert sent.value.headers["content-type"] == "application/json"
    body = json.loads(sent.value.post_data or "")
    assert body["client_token"] and float(body["active_seconds"]) > 0 and sum(k.startswith("emo:") for k in body) == 40
    expect(page.locator("#rate-stage")).not_to_have_attribute("data-assignment", first)
    expect(page.get_by_role("status")).to_have_text("Saved.")
    assert page.evaluate("window.__noReload") == "still here"  # swapped by htmx, no page load
    expect(page.locator(".rate-progress strong")).to_have_text("1")
    ratings = list(Rating.objects.all())
    assert len(ratings) == 1
    assert ratings[0].values == expected and ratings[0].image_id == images[0].pk
    assert ratings[0].active_seconds is not None and ratings[0].active_seconds > 0
    # the help overlay
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()


def test_reload_mid_rating_keeps_the_values(page: Page, live_server):
    project = make_project(slug="draft")
    face_images(project, 2)
    login(page, live_server, project)
    before = stage_id(page)
    first_name = taxonomy.load().groups[0].emotions[0]
    expect(page.get_by_role("slider", name=first_name, exact=True)).to_be_focused()  # the page is ready
    page.keyboard.press("4")
    page.get_by_role("slider", name="Fear", exact=True).focus()
    page.keyboard.press("6")
    page.reload()
    expect(page.locator("#rate-stage")).to_have_attribute("data-assignment", before)  # same open lease
    expect(page.locator("#rate-stage")).to_have_attribute("data-ready", "1")
    expect(page.get_by_role("slider", name="Fear", exact=True)).to_have_value("6")
    expect(page.get_by_role("slider", name=first_name, exact=True)).to_have_value("4")
    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#rate-stage")).not_to_have_attribute("data-assignment", before)
    r = Rating.objects.get()
    assert r.values[NAMES.index("Fear")] == 6 and r.values[NAMES.index(first_name)] == 4 and sum(r.values) == 10


def test_binary_rating_with_y_and_n(page: Page, live_server):
    project = make_project(slug="yesno", mode="binary", target_ratings=3)
    face_images(project, 2, extra={"emotion": "Elation"})
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, live_server, project)
    expect(page.get_by_role("button", name="Yes", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="No", exact=True)).to_be_visible()
    first_emotion = page.locator(".binary-emotion").inner_text()
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "rate-binary.png"))
    page.evaluate("window.__noReload = 1")
    first = stage_id(page)
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/submit/")) as sent:
        page.keyboard.press("y")
    assert sent.value.headers["content-type"] == "application/json"
    assert json.loads(sent.value.post_data or "")["answer"] == "1"
    expect(page.locator("#rate-stage")).not_to_have_attribute("data-assignment", first)
    second = stage_id(page)
    page.keyboard.press("n")
    expect(page.locator("#rate-stage")).not_to_have_attribute("data-assignment", second)
    assert page.evaluate("window.__noReload") == 1
    ratings = list(Rating.objects.order_by("id"))
    assert [r.values for r in ratings] == [[1], [0]]
    assert NAMES[ratings[0].emotion] == first_emotion
    assert all(r.active_seconds is not None for r in ratings)


def test_refused_submit_shows_why_and_keeps_the_values(page: Page, live_server):
    project = make_project(slug="refuse", target_ratings=1)
    face_images(project, 1)
    login(page, live_server, project)
    page.keyboard.press("3")
    # the lease is taken away behind the rater's back and someone else rates the image
    from datetime import timedelta

    from annotation.models import Assignment
    from annotation.rating import assignment_claim, rating_submit

    a = Assignment.objects.get(status="open")
    Assignment.objects.filter(pk=a.pk).update(expires_at=a.claimed_at - timedelta(seconds=1))
    other = make_user()
    rating_submit(assignment=assignment_claim(project=project, rater=other), rater=other, values=[0] * 40)
    page.keyboard.press("Control+Enter")
    expect(page.get_by_role("alert")).to_contain_text("lease on this image expired")
    first_name = taxonomy.load().groups[0].emotions[0]
    expect(page.get_by_role("slider", name=first_name, exact=True)).to_have_value("3")
    assert Rating.objects.count() == 1


def test_type_to_find_and_descriptors_in_full(page: Page, live_server):
    """Letters find an emotion by the start of its name (or of a descriptor); digits still set the
    value; Shift+S / Shift+F reach skip and flag; every descriptor is shown whole (#20)."""
    project = make_project(slug="find", target_ratings=2)
    face_images(project, 2)
    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, live_server, project)
    page.keyboard.type("sh")  # Shame, not Sadness or Sexual Lust
    expect(page.get_by_role("slider", name="Shame", exact=True)).to_be_focused()
    page.keyboard.press("4")
    expect(page.get_by_role("slider", name="Shame", exact=True)).to_have_value("4")
    page.wait_for_timeout(1100)  # a pause starts a new search
    page.keyboard.type("sur")  # the second name of "Astonishment/Surprise"
    expect(page.get_by_role("slider", name="Astonishment/Surprise", exact=True)).to_be_focused()
    page.wait_for_timeout(1100)
    page.keyboard.type("j")  # Jealousy & Envy: the last emotion, one key away
    expect(page.get_by_role("slider", name="Jealousy & Envy", exact=True)).to_be_focused()
    page.wait_for_timeout(1100)
    page.keyboard.type("mirth")  # a descriptor of Amusement
    expect(page.get_by_role("slider", name="Amusement", exact=True)).to_be_focused()
    expect(page.locator(".find-status")).to_contain_text("Amusement")
    page.keyboard.press("Shift+S")
    expect(page.locator("#skip-reason")).to_be_focused()
    page.locator("#skip-reason").blur()
    page.keyboard.press("Shift+F")
    expect(page.locator("#flag-reason")).to_be_focused()
    # Descriptors whole: none is cut off (its box is as wide as its text needs), all text present.
    cut = page.evaluate("""() => Array.from(document.querySelectorAll('.emo-desc'))
        .filter(d => d.scrollWidth > d.clientWidth + 1 || getComputedStyle(d).textOverflow === 'ellipsis').length""")
    assert cut == 0
    amusement = page.locator("#emo-d-0")
    expect(amusement).to_have_text(", ".join(taxonomy.load().emotions[0].descriptors))
    # The help overlay lists type-to-find.
    page.locator("#flag-reason").blur()
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_contain_text("Find an emotion by typing")
