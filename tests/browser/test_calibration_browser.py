"""Onboarding in real headless Chromium: calibration first, the comparison, then (once admitted) the rate page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Role
from annotation import taxonomy
from annotation.models import CalibrationRating
from annotation.services import calibration as cal
from tests.factories import PASSWORD, add_member, make_project, make_user
from tests.support.seed import face_images

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
N = taxonomy.N_EMOTIONS


def test_a_new_rater_calibrates_waits_and_rates_once_admitted(page: Page, live_server):
    project = make_project(slug="calib", require_calibration=True, target_ratings=2)
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    images = face_images(project, 3)
    items = [cal.calibration_item_set(project=project, image=im, values=[2] * N, actor=lead) for im in images[:2]]
    rater = make_user(email="new-rater@example.org")
    add_member(project, rater)
    page.goto(f"{live_server.url}/accounts/login/?next=/projects/{project.slug}/rate/")
    page.get_by_label("Email").fill(rater.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(f"{live_server.url}/projects/{project.slug}/calibration/")
    for item in items:
        stage = page.locator("#calibration-stage")
        expect(stage).to_have_attribute("data-item", str(item.pk))
        expect(stage).to_have_attribute("data-ready", "1")
        expect(page.get_by_role("slider", name=taxonomy.EMOTIONS[0], exact=True)).to_have_count(1)
        page.get_by_role("slider", name=taxonomy.EMOTIONS[0], exact=True).focus()
        page.keyboard.press("5")
        page.get_by_role("button", name="Submit calibration rating").click()
    expect(page.locator("#calibration-waiting")).to_contain_text("Waiting for your lead to admit you")
    expect(page.locator("#calibration-comparison")).to_be_visible()
    ratings = list(CalibrationRating.objects.filter(rater=rater).order_by("item_id"))
    assert [r.item_id for r in ratings] == [i.pk for i in items]
    assert all(r.values[0] == 5 and r.values[1:] == [0] * (N - 1) for r in ratings)
    # |5-2| on the first emotion, |0-2| on the other 39: mean (3 + 39 * 2) / 40
    expect(page.locator("#calibration-mad")).to_have_text("2.03")  # 81 / 40 = 2.025; floatformat rounds half up
    page.goto(f"{live_server.url}/projects/{project.slug}/rate/")
    expect(page).to_have_url(f"{live_server.url}/projects/{project.slug}/calibration/")
    cal.rater_admit(project=project, rater=rater, actor=lead)
    page.goto(f"{live_server.url}/projects/{project.slug}/rate/")
    expect(page).to_have_url(f"{live_server.url}/projects/{project.slug}/rate/")
    expect(page.locator("#rate-stage")).to_have_attribute("data-ready", "1")
    expect(page.get_by_role("slider", name=taxonomy.EMOTIONS[0], exact=True)).to_have_count(1)
