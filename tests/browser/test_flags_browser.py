"""A rater flags an image on the rate page; the lead confirms one flag and dismisses another from
the disputed-images page, in real headless Chromium (#16 finding 5)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Role
from annotation.models import Image, ImageFlag
from tests.factories import PASSWORD, add_member, make_project, make_user
from tests.support.seed import image_with_file

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(page: Page, live_server, email: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state()


def test_a_flag_waits_for_the_lead_who_confirms_or_dismisses_it(page: Page, live_server):
    project = make_project(slug="flagb", target_ratings=2)
    images = [image_with_file(project, priority=10.0 - i) for i in range(3)]
    rater, lead = make_user(email="r@lab.org"), make_user(Role.LEAD, email="l@lab.org")
    add_member(project, rater, lead)
    other = make_user(email="r2@lab.org")
    add_member(project, other)
    ImageFlag.objects.create(project=project, image=images[2], rater=other, reason="offensive", note="second flag")

    login(page, live_server, rater.email, f"/projects/{project.slug}/rate/")
    expect(page.locator("#rate-stage img")).to_be_visible()
    page.keyboard.press("Shift+F")  # focuses the flag reason (letters alone find emotions)
    expect(page.locator("#flag-reason")).to_be_focused()
    page.locator("#flag-reason").select_option("artifact")
    page.get_by_role("button", name="Flag image").click()
    expect(page.get_by_text("you won't be shown this image again")).to_be_visible()
    assert not Image.objects.get(pk=images[0].pk).flagged  # one rater's flag removes nothing

    page.context.clear_cookies()  # signed out
    login(page, live_server, lead.email, f"/projects/{project.slug}/dashboard/disputed/")
    waiting = page.locator("#flags-waiting tbody tr")
    expect(waiting).to_have_count(2)
    waiting.filter(has_text="Generation artifact").get_by_role("button", name="Confirm flag").click()
    expect(page.locator("#flags-waiting tbody tr")).to_have_count(1)
    page.locator("#flags-waiting tbody tr").get_by_role("button", name="Dismiss").click()
    expect(page.locator("#flags-waiting")).to_have_count(0)
    assert Image.objects.get(pk=images[0].pk).flagged and not Image.objects.get(pk=images[2].pk).flagged
    decided = dict(ImageFlag.objects.exclude(rater=lead).values_list("rater__email", "resolution"))
    assert decided == {"r@lab.org": "confirmed", "r2@lab.org": "dismissed"}
