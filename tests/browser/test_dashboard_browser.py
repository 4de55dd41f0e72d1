"""The lead dashboards in real headless Chromium: login, the agreement chart against the stored
snapshot, adjudication, raters refused. With EMORATE_SCREENSHOTS set to a folder, screenshots of
every page are written there (`EMORATE_SCREENSHOTS=docs/screenshots` refreshes the tracked ones);
without it nothing is written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from annotation.models import Image
from tests.factories import PASSWORD
from tests.support.seed import seed_rated_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("EMORATE_SCREENSHOTS")  # a folder, e.g. docs/screenshots
VIEWPORT = {"width": 1280, "height": 800}


def login(page: Page, live_server, email: str, next_url: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/?next={next_url}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.wait_for_load_state()


def shot(page: Page, name: str) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def test_lead_sees_the_stored_snapshot_and_every_page(page: Page, live_server, monkeypatch):
    from annotation import tasks

    queued: list[int] = []
    monkeypatch.setattr(tasks.agreement_snapshot_task, "apply_async",
                        lambda args=(), kwargs=None, **options: queued.append(args[0]))
    data = seed_rated_project(slug="demo", n_images=36, n_raters=5, per_image=3, files=True)
    project, snapshot = data["project"], data["snapshot"]
    base = f"/projects/{project.slug}/dashboard/"
    page.set_viewport_size(VIEWPORT)
    login(page, live_server, data["lead"].email, base + "agreement/")
    expect(page.get_by_role("heading", name="Agreement")).to_be_visible()

    # the chart's marks carry the snapshot's numbers, and their hover titles say the same
    rows = page.locator("#chart-alpha g.row")
    expect(rows).to_have_count(40)
    shown = rows.evaluate_all("gs => gs.map(g => [g.dataset.label, g.dataset.value, g.dataset.low, g.dataset.high,"
                              " g.querySelector('title').textContent])")
    by_name = {e["emotion"]: e for e in snapshot.payload["emotions"]}
    for label, value, low, high, title in shown:
        e = by_name[label]
        assert (float(value) if value else None) == e["alpha"]
        if e["ci"]:
            assert [float(low), float(high)] == e["ci"]
            assert f"alpha {e['alpha']:.3f}, 95% CI {e['ci'][0]:.3f} to {e['ci'][1]:.3f}" in title
    expect(page.locator("#chart-alpha line.threshold")).to_have_count(3)
    expect(page.get_by_text("interval", exact=True).first).to_be_visible()
    shot(page, "dashboard-agreement")

    # recompute: queued on commit, shown live in the jobs strip
    page.get_by_role("button", name="Recompute agreement").click()
    expect(page.locator("#jobs")).to_contain_text("queued")
    assert queued == [project.pk]

    page.goto(live_server.url + base)
    expect(page.locator("#chart-coverage rect.bar")).to_have_count(project.target_ratings + 1)
    shot(page, "dashboard-overview")
    page.get_by_role("link", name="Raters", exact=True).click()
    expect(page.locator("#chart-kappa")).to_be_visible()
    shot(page, "dashboard-raters")
    page.get_by_role("link", name="Demographics").click()
    expect(page.locator("#chart-strata-ethnicity")).to_be_visible()
    shot(page, "dashboard-demographics")
    page.get_by_role("link", name="Disputed images").click()
    expect(page.locator(".thumb-card")).to_have_count(24)
    expect(page.locator(".thumb-card img").first).to_have_js_property("complete", True)
    assert page.locator(".thumb-card img").first.evaluate("img => img.naturalWidth") > 0
    shot(page, "dashboard-disputed")
    # htmx pagination keeps the page and swaps the gallery
    page.evaluate("window.__still = 1")
    page.get_by_role("link", name="Next →").click()
    expect(page.locator(".thumb-card")).to_have_count(12)
    assert page.evaluate("window.__still") == 1

    # adjudicate the first image of page 1: send it back for more ratings
    page.goto(live_server.url + base + "disputed/")
    first = page.locator(".thumb-card .meta a").first
    name = first.inner_text()
    first.click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    shot(page, "dashboard-disputed-detail")
    page.get_by_label("Note for the history (optional)").fill("two raters far apart")
    page.get_by_role("button", name="Send back for more ratings").click()
    expect(page.locator(".history")).to_contain_text("more_ratings")
    expect(page.locator(".history")).to_contain_text("two raters far apart")
    image = Image.objects.get(project=project, name=name)
    assert image.adjudication == "more_ratings" and image.extra_target == 1 and not image.queue_full

    page.goto(live_server.url + base + "releases/")
    expect(page.get_by_role("heading", name="Releases")).to_be_visible()
    shot(page, "dashboard-releases")


def test_a_rater_is_refused_every_dashboard_page(page: Page, live_server):
    data = seed_rated_project(slug="closed", n_images=6, n_raters=3, per_image=2)
    project, image = data["project"], data["images"][0]
    rater = data["raters"][0]
    base = f"/projects/{project.slug}/dashboard/"
    login(page, live_server, rater.email, f"/projects/{project.slug}/")
    for path in ["", "agreement/", "agreement/?format=csv&table=alpha", "agreement/definitions/", "jobs/", "raters/",
                 "demographics/", "disputed/", f"disputed/{image.pk}/", f"disputed/{image.pk}/image/", "releases/"]:
        response = page.goto(live_server.url + base + path)
        assert response is not None and response.status == 403, path
