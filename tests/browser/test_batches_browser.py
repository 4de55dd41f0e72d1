"""Rounds in a real browser (#22): a lead sends disputed images back as a round for two raters; one
of them sees the round on the rate page and rates in it; the lead sees the round's progress move."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from accounts.models import Role
from annotation.models import Batch, BatchState, Rating
from tests.factories import PASSWORD, add_member, make_project, make_user
from tests.support.seed import image_with_file

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def login(page: Page, live_server, email: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state()


def test_lead_sends_disputed_images_back_as_a_round_and_watches_it_move(page: Page, live_server):
    project = make_project(slug="rounds", target_ratings=2)
    lead = make_user(Role.LEAD, email="lead@lab.org")
    ann, ben, cy = (make_user(email=f"{n}@lab.org") for n in ("ann", "ben", "cy"))
    experts = [make_user(email=f"x{k}@lab.org") for k in range(2)]
    add_member(project, lead, ann, ben, cy, *experts)
    images = [image_with_file(project, priority=10.0 - k) for k in range(4)]
    for im in images[:3]:  # three disputed images: two experts far apart
        for e, v in zip(experts, (0, 7), strict=True):
            Rating.objects.create(project=project, image=im, rater=e, values=[v] * 40, scale_max=7,
                                  taxonomy_version="emonet-face-1")

    login(page, live_server, lead.email, f"/projects/{project.slug}/dashboard/disputed/")
    for im in images[:2]:
        page.locator(f"input[name=image_ids][value='{im.pk}']").check()
    form = page.locator("#send-back-round")
    form.get_by_label("Name").fill("Round 2")
    form.get_by_label("Target ratings per image").fill("3")
    form.get_by_label("Due").fill("2026-03-14")
    form.get_by_label("ann@lab.org").check()
    form.get_by_label("ben@lab.org").check()
    form.get_by_role("button", name="Make the round").click()
    expect(page.locator("#batch-state")).to_have_text("open")
    expect(page.locator("#batch-taken")).to_have_text("4")  # 2 images x 2 ratings of 3 each
    batch = Batch.objects.get(project=project, name="Round 2")
    assert batch.state == BatchState.OPEN and batch.n_images == 2 and batch.source == "disputed"
    assert sorted(batch.raters.values_list("email", flat=True)) == ["ann@lab.org", "ben@lab.org"]
    round_url = page.url

    rater = page.context.browser.new_context().new_page()  # ann, in a browser of her own
    login(rater, live_server, ann.email, f"/projects/{project.slug}/rate/")
    expect(rater.locator("#rate-round")).to_have_text("Round 2: 0 of 2 images, due 14 March")
    with rater.expect_request(lambda r: r.method == "POST" and r.url.endswith("/submit/")):
        rater.keyboard.press("Control+Enter")
    expect(rater.locator("#rate-round")).to_have_text("Round 2: 1 of 2 images, due 14 March")
    assert set(Rating.objects.filter(rater=ann).values_list("image_id", flat=True)) <= {images[0].pk, images[1].pk}

    page.goto(round_url)
    expect(page.locator("#batch-taken")).to_have_text("5")
    expect(page.locator("#batch-contributions")).to_contain_text("ann@lab.org")

    # cy was not chosen: nothing is served to them while the round is the only open work
    other = page.context.browser.new_context().new_page()
    login(other, live_server, cy.email, f"/projects/{project.slug}/rate/")
    expect(other.locator("#rate-round")).to_have_count(0)
    assert not Rating.objects.filter(rater=cy).exists()
