"""The measurement model after each snapshot: its own job on a real worker, stored with the
snapshot, shown on the raters page (in words, per emotion group) and the planner on the agreement
page, read without computing (#18)."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse

from accounts.models import Role
from annotation.models import AgreementSnapshot
from annotation.services.agreement_snapshot import agreement_snapshot_create
from annotation.services.rater_model import rater_model_attach, stored_rater_model
from tests.factories import add_member, make_user
from tests.support.ratermodel_seed import seed_simulated


@pytest.mark.django_db
def test_attach_stores_the_fit_once_and_the_pages_show_it(client, django_capture_on_commit_callbacks):
    project, raters = seed_simulated("rmw", n_images=240)
    snapshot = agreement_snapshot_create(project, n_boot=50)
    assert stored_rater_model(snapshot.payload) is None
    assert rater_model_attach(snapshot.pk) is True
    snapshot.refresh_from_db()
    model = stored_rater_model(snapshot.payload)
    assert model is not None and model["converged"] and model["fingerprint"]
    assert rater_model_attach(snapshot.pk) is False  # idempotent: same ratings, nothing to do
    assert all("rater" not in r for r in model["raters"])  # ids only: no e-mail addresses stored
    odd = next(r for r in model["raters"] if r["rater_id"] == raters[-1].pk)
    assert odd["overall"]["words"].startswith("marks presence more readily than the panel")

    lead = make_user(Role.LEAD)
    add_member(project, lead)
    client.force_login(lead)
    page = client.get(reverse("annotation:dashboard-raters", args=[project.slug])).content.decode()
    assert "Presence threshold and intensity shift by emotion group" in page
    assert "marks presence more readily than the panel" in page
    assert "Positive High-Energy" in page
    csv = client.get(reverse("annotation:dashboard-raters", args=[project.slug]) + "?format=csv&table=rater_model")
    assert csv.status_code == 200 and b"Positive High-Energy" in csv.content
    agreement = client.get(reverse("annotation:dashboard-agreement", args=[project.slug])).content.decode()
    assert 'id="planner"' in agreement and "Label reliability" in agreement
    disputed = client.get(reverse("annotation:dashboard-disputed", args=[project.slug])).content.decode()
    top = model["ambiguity"]["top"][0]
    assert "Most ambiguous labels under the measurement model" in disputed and top["name"] in disputed


@pytest.mark.django_db
def test_pages_say_why_there_are_no_model_figures(client):
    project, _ = seed_simulated("rmn", n_images=60)
    snapshot = agreement_snapshot_create(project, n_boot=0)
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    client.force_login(lead)
    url = reverse("annotation:dashboard-raters", args=[project.slug])
    assert "none is stored with this one yet" in client.get(url).content.decode()
    payload = dict(snapshot.payload)
    payload["rater_model"] = {"converged": False, "raters": [], "warnings": []}
    AgreementSnapshot.objects.filter(pk=snapshot.pk).update(payload=payload)
    assert "did not converge on these ratings: its figures are not shown" in client.get(url).content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_snapshot_job_enqueues_the_model_job_on_a_real_worker(celery_worker_real):
    from annotation.tasks import agreement_snapshot_task

    project, _ = seed_simulated("rmq", n_images=150)
    snapshot_id = agreement_snapshot_task.apply_async((project.pk,), {"n_boot": 50}, queue="agreement").get(timeout=120)
    deadline = time.monotonic() + 90
    model = None
    while time.monotonic() < deadline and model is None:
        model = (AgreementSnapshot.objects.get(pk=snapshot_id).payload or {}).get("rater_model")
        time.sleep(0.5)
    assert model is not None and model["converged"] and len(model["raters"]) == 5
