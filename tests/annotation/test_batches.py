"""Rounds (batches, #22): making them from each source, serving, restrictions, pause/close, progress,
alerts, releases cut from rounds, the command and the API. Real PostgreSQL, Redis and storage."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Role
from annotation.models import (
    Assignment,
    AssignmentStatus,
    AuditEvent,
    Batch,
    BatchImage,
    BatchState,
    FlagResolution,
    Image,
    ImageFlag,
    Rating,
    ReleaseImage,
    Webhook,
    WebhookDelivery,
)
from annotation.rating import assignment_claim, rating_submit
from annotation.rating.stage import project_for_rater, rate_stage
from annotation.selectors_batches import batch_contributions, batch_progress, rater_round, rater_rounds
from annotation.services import batches as service
from annotation.services import stored_files
from annotation.services.releases import release_build, release_create
from tests.factories import add_member, image_bytes, make_image, make_project, make_user

pytestmark = pytest.mark.django_db
ZEROS = [0] * 40


def image(project, priority: float = 0.0, **extra) -> Image:
    im = make_image(project, priority=priority, **extra)
    im.file.save(f"{im.sha256}.jpg", ContentFile(image_bytes()), save=True)
    return im


def rate(im: Image, rater, value: int = 1) -> Rating:
    return Rating.objects.create(project=im.project, image=im, rater=rater, values=[value] * 40, scale_max=7,
                                 taxonomy_version="emonet-face-1")


def raters(project, n: int):
    users = [make_user() for _ in range(n)]
    add_member(project, *users)
    return users


def claim_and_rate(project, rater) -> Assignment | None:
    a = assignment_claim(project=project, rater=rater)
    if a is not None:
        rating_submit(assignment=a, rater=rater, values=ZEROS)
    return a


# --- making rounds -----------------------------------------------------------------------------------


def test_filter_source_picks_strata_unrated_fewer_than_disputed_and_usable_after_flag():
    project = make_project(target_ratings=3)
    experts = raters(project, 3)
    a = image(project, 5, ethnicity="Asian", gender="woman", age=30)
    b = image(project, 4, ethnicity="Asian", gender="man", age=30)
    c = image(project, 3, ethnicity="Black", gender="woman", age=40)
    d = image(project, 2, ethnicity="Black", gender="man", age=40)
    image(project, 9, flagged=True)  # never in a round
    make_image(project, priority=8)  # placeholder without a file: never in a round
    rate(b, experts[0])
    for e in experts[:2]:
        rate(c, e, 1)
        rate(d, e, 6)
    ImageFlag.objects.create(project=project, image=a, rater=experts[0], reason="artifact", resolved_at=timezone.now(),
                             resolution=FlagResolution.DISMISSED)

    def ids(spec):
        return service.images_filtered(project, spec)

    assert ids({}) == [a.pk, b.pk, c.pk, d.pk]  # highest priority first
    assert ids({"ethnicity": "Asian"}) == [a.pk, b.pk]
    assert ids({"gender": "woman", "age": 40}) == [c.pk]
    assert ids({"unrated": True}) == [a.pk]
    assert ids({"fewer_than": 2}) == [a.pk, b.pk]
    assert ids({"disputed": True}) == [c.pk, d.pk]
    assert ids({"usable_after_flag": True}) == [a.pk]
    assert ids({"limit": 3}) == [a.pk, b.pk, c.pk]
    with pytest.raises(service.BatchError, match="unknown key.*colour"):
        ids({"colour": "red"})


def test_sample_source_is_stratified_and_reproducible():
    project = make_project()
    for k in range(60):  # 40 women, 20 men
        image(project, gender="woman" if k % 3 else "man", ethnicity="", age=None)
    spec = {"sample": {"size": 15, "seed": 11, "strata": ["gender"]}}
    first = service.batch_create_from_spec(project=project, name="S1", spec=spec)
    again = service.batch_create_from_spec(project=project, name="S2", spec=spec)
    other = service.batch_create_from_spec(project=project, name="S3", spec={"sample": {**spec["sample"], "seed": 12}})

    def members(b):
        return sorted(BatchImage.objects.filter(batch=b).values_list("image_id", flat=True))

    assert members(first) == members(again) != members(other)
    genders = Counter(Image.objects.filter(pk__in=members(first)).values_list("gender", flat=True))
    assert genders == {"woman": 10, "man": 5}
    assert first.source == "sample" and first.source_spec == spec and first.n_images == 15
    with pytest.raises(service.BatchError, match=r"sample size 61 out of range \(allowed: 1\.\.60"):
        service.batch_create_from_spec(project=project, name="S4", spec={"sample": {"size": 61}})


def test_disputed_source_takes_gallery_images_and_refuses_others():
    project = make_project(target_ratings=2)
    experts = raters(project, 2)
    disputed = [image(project, 5 - k) for k in range(3)]
    calm = image(project, 0)
    for im in disputed:
        rate(im, experts[0], 0)
        rate(im, experts[1], 7)
    chosen = service.batch_create_from_spec(project=project, name="Again", target_ratings=4,
                                            spec={"disputed": {"image_ids": [disputed[2].pk, disputed[0].pk]}})
    assert set(BatchImage.objects.filter(batch=chosen).values_list("image_id", flat=True)) == {disputed[0].pk,
                                                                                              disputed[2].pk}
    first = service.batch_create_from_spec(project=project, name="Top", spec={"disputed": {"limit": 2}})
    assert sorted(BatchImage.objects.filter(batch=first).values_list("image_id", flat=True)) == sorted(
        [disputed[0].pk, disputed[1].pk])
    before = Batch.objects.count()
    with pytest.raises(service.BatchError, match=f"image.*{calm.pk}.*not in the disputed gallery"):
        service.batch_create_from_spec(project=project, name="Bad", spec={"disputed": {"image_ids": [calm.pk]}})
    assert Batch.objects.count() == before


def test_bad_input_is_named_and_stores_nothing():
    project = make_project()
    rater = raters(project, 1)[0]
    im = image(project)
    service.batch_create(project=project, name="R1", image_ids=[im.pk])
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    cases = [
        ({"name": "R1"}, "already has a batch named 'R1'"),
        ({"name": ""}, "name: give a name"),
        ({"target_ratings": 0}, r"target_ratings: 0 out of range \(allowed: 1\.\.50\)"),
        ({"due_on": "14 March"}, "due_on: '14 March' is not a date"),
        ({"raters": [lead.email]}, f"{lead.email} is not an active rater"),
        ({"image_ids": ["nope.jpg"]}, "images: 1 not in project"),
    ]
    for change, message in cases:
        kwargs = {"project": project, "name": "R2", "image_ids": [im.pk], **change}
        with pytest.raises(service.BatchError, match=message):
            service.batch_create(**kwargs)
    assert list(Batch.objects.values_list("name", flat=True)) == ["R1"]
    assert BatchImage.objects.count() == 1
    assert rater  # a rater exists: the refusal above is about the lead's role


def test_import_images_adds_its_images_to_a_round(tmp_path: Path):
    project = make_project(slug="imp")
    folder = tmp_path / "monday"
    folder.mkdir()
    for k in range(3):
        (folder / f"face{k}.jpg").write_bytes(image_bytes(color=(k * 40, 10, 10)))
    out = StringIO()
    call_command("import_images", str(folder), "--project", "imp", "--batch", "Monday", "--workers", "1", stdout=out)
    batch = Batch.objects.get(project=project, name="Monday")
    assert batch.source == "import" and batch.state == BatchState.DRAFT and batch.n_images == 3
    assert "added 3 image(s) to batch 'Monday'" in out.getvalue()
    # a closed round is refused before anything is imported
    service.batch_set_state(batch=batch, state=BatchState.CLOSED)
    (folder / "face9.jpg").write_bytes(image_bytes(color=(200, 200, 0)))
    with pytest.raises(CommandError, match="batch 'Monday' is closed"):
        call_command("import_images", str(folder), "--project", "imp", "--batch", "Monday", "--workers", "1")
    assert Image.objects.filter(project=project).count() == 3


# --- serving ---------------------------------------------------------------------------------------


def test_serving_order_across_rounds_and_within_and_nothing_outside_open_rounds():
    project = make_project(target_ratings=1)
    low = [image(project, p) for p in (9, 1)]
    high = [image(project, p) for p in (2, 5)]
    outside = image(project, 100)  # the project's best image, in no round
    draft_only = image(project, 50)
    r_low = service.batch_create(project=project, name="Low", image_ids=[im.pk for im in low], priority=1)
    r_high = service.batch_create(project=project, name="High", image_ids=[im.pk for im in high], priority=5)
    service.batch_create(project=project, name="Draft", image_ids=[draft_only.pk], priority=99)
    # no round opened yet: one queue, as before
    assert assignment_claim(project=project, rater=raters(project, 1)[0]).image_id == outside.pk
    service.batch_set_state(batch=r_low, state=BatchState.OPEN)
    service.batch_set_state(batch=r_high, state=BatchState.OPEN)
    served = []
    for rater in raters(project, 5):
        a = claim_and_rate(project, rater)
        served.append((a.batch_id, a.image_id) if a else None)
    assert served == [(r_high.pk, high[1].pk), (r_high.pk, high[0].pk), (r_low.pk, low[0].pk),
                      (r_low.pk, low[1].pk), None]


def test_round_target_is_its_own_and_never_exceeded():
    project = make_project(target_ratings=1)
    a, b = image(project, 2), image(project, 1)
    shared = image(project, 0)
    r3 = service.batch_create(project=project, name="Three", image_ids=[a.pk, shared.pk], target_ratings=3, priority=2)
    r2 = service.batch_create(project=project, name="Two", image_ids=[b.pk, shared.pk], target_ratings=2, priority=1)
    for r in (r3, r2):
        service.batch_set_state(batch=r, state=BatchState.OPEN)
    for rater in raters(project, 8):
        while claim_and_rate(project, rater):
            pass
    counts = Counter(Rating.objects.values_list("image_id", flat=True))
    assert counts == {a.pk: 3, shared.pk: 3, b.pk: 2}  # the shared image: its ratings count once, up to 3
    assert batch_progress(r3).complete and batch_progress(r2).complete


def test_chosen_raters_only():
    project = make_project(target_ratings=2)
    chosen, other = raters(project, 2)
    im = image(project)
    batch = service.batch_create(project=project, name="Experts", image_ids=[im.pk], raters=[chosen.email])
    service.batch_set_state(batch=batch, state=BatchState.OPEN)
    assert assignment_claim(project=project, rater=other) is None
    assert assignment_claim(project=project, rater=chosen).image_id == im.pk
    assert [r.name for r in rater_rounds(project=project, rater=other)] == []
    service.batch_update(batch=batch, raters=None)  # every rater
    assert assignment_claim(project=project, rater=other).image_id == im.pk


def test_pausing_and_closing_return_leases_and_stop_serving():
    project = make_project(target_ratings=3)
    a, b = raters(project, 2)
    images = [image(project, p) for p in range(3)]
    batch = service.batch_create(project=project, name="R", image_ids=[im.pk for im in images])
    service.batch_set_state(batch=batch, state=BatchState.OPEN)
    lease = assignment_claim(project=project, rater=a)
    assert lease.batch_id == batch.pk
    service.batch_set_state(batch=batch, state=BatchState.PAUSED)
    assert Assignment.objects.get(pk=lease.pk).status == AssignmentStatus.EXPIRED
    assert assignment_claim(project=project, rater=b) is None
    event = AuditEvent.objects.filter(action="batch.paused").get()
    assert event.data["leases_returned"] == 1
    service.batch_set_state(batch=batch, state=BatchState.OPEN)
    lease = assignment_claim(project=project, rater=b)
    service.batch_set_state(batch=batch, state=BatchState.CLOSED)
    assert Assignment.objects.get(pk=lease.pk).status == AssignmentStatus.EXPIRED
    assert assignment_claim(project=project, rater=a) is None
    with pytest.raises(service.BatchError, match="closed and cannot become open"):
        service.batch_set_state(batch=batch, state=BatchState.OPEN)


# --- what raters and leads see --------------------------------------------------------------------------


def test_rater_sees_their_round_and_own_count_never_others():
    project = make_project(target_ratings=2)
    a, b = raters(project, 2)
    images = [image(project, p) for p in range(4)]
    batch = service.batch_create(project=project, name="Round 2", image_ids=[im.pk for im in images],
                                 due_on=date(2026, 3, 14))
    service.batch_set_state(batch=batch, state=BatchState.OPEN)
    for _ in range(3):
        claim_and_rate(project, b)
    claim_and_rate(project, a)
    stage = rate_stage(project=project_for_rater(user=a, slug=project.slug), rater=a)
    assert stage.round is not None
    assert (stage.round.name, stage.round.done, stage.round.n_images, stage.round.due_on) == (
        "Round 2", 1, 4, date(2026, 3, 14))
    assert rater_round(batch_id=batch.pk, rater=b).done == 3
    assert [(r.name, r.done) for r in rater_rounds(project=project, rater=a)] == [("Round 2", 1)]


def test_progress_pace_projection_and_contributions():
    project = make_project(target_ratings=2)
    experts = raters(project, 3)
    images = [image(project, p) for p in range(10)]
    batch = service.batch_create(project=project, name="R", image_ids=[im.pk for im in images], target_ratings=2,
                                 due_on=timezone.localdate() + timedelta(days=2))
    early = rate(images[0], experts[0])  # before the round opened: counts for coverage, not for pace
    Rating.objects.filter(pk=early.pk).update(created_at=timezone.now() - timedelta(days=5))
    service.batch_set_state(batch=batch, state=BatchState.OPEN)
    Batch.objects.filter(pk=batch.pk).update(opened_at=timezone.now() - timedelta(days=3))
    batch.refresh_from_db()
    today = timezone.localdate()
    # 3 ratings two days ago, 3 yesterday, 1 today (all after opening)
    made = []
    for k, im in enumerate(images[:7]):
        made.append(rate(im, experts[1 + k % 2]))
    for k, r in enumerate(made):
        days_ago = 2 if k < 3 else 1 if k < 6 else 0
        Rating.objects.filter(pk=r.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    p = batch_progress(batch, today=today)
    assert (p.n_images, p.needed, p.taken, p.n_complete) == (10, 20, 8, 1)
    assert p.coverage_percent == 40
    assert dict(p.per_day)[today - timedelta(days=2)] == 3 and dict(p.per_day)[today] == 1
    # pace over the 4 days since opening (7 / 4 = 1.75 a day); 12 ratings left -> 7 days
    assert p.projection.pace_per_day == pytest.approx(7 / 4)
    assert p.projection.projected_on == today + timedelta(days=7)
    assert p.projection.behind
    assert sorted(n for _, n in batch_contributions(batch)) == [3, 4]


def test_alerts_raise_a_webhook_and_an_email_once_each(django_capture_on_commit_callbacks):
    from accounts.emails import email_render

    project = make_project(target_ratings=1)
    lead = make_user(Role.LEAD)
    expert = raters(project, 1)[0]
    add_member(project, lead)
    Webhook.objects.create(project=project, url="https://hooks.example.org/e", secret="s" * 20,
                           events=["batch.completed", "batch.behind"])
    ims = [image(project), image(project)]
    behind = service.batch_create(project=project, name="Late", image_ids=[ims[0].pk], due_on=timezone.localdate())
    done = service.batch_create(project=project, name="Done", image_ids=[ims[1].pk])
    for b in (behind, done):
        service.batch_set_state(batch=b, state=BatchState.OPEN)
    rate(ims[1], expert)
    with django_capture_on_commit_callbacks(execute=True):
        raised = service.batch_alerts_raise(project)
    assert sorted(raised) == [("Done", "batch.completed"), ("Late", "batch.behind")]
    assert service.batch_alerts_raise(project) == []  # once each
    assert service.batch_alerts_sweep() == []  # the periodic job: nothing new either
    events = sorted(WebhookDelivery.objects.values_list("event", flat=True))
    assert events == ["batch.behind", "batch.completed"]
    assert sorted(AuditEvent.objects.filter(action__startswith="batch.").exclude(
        action__in=["batch.created", "batch.open"]).values_list("action", flat=True)) == [
        "batch.behind_alert", "batch.completed_alert"]
    # the leads' email (sent by the worker; the SMTP round trip is tested in tests/accounts)
    behind.refresh_from_db()
    subject, body = email_render("batch_alert", {"project": project, "batch": behind, "event": "batch.behind",
                                                 "p": batch_progress(behind), "url": "https://x/r"})
    assert subject == f"emorate: Late in {project.name} is behind its due date"
    assert "has no pace yet, after its due date" in body and "Coverage so far: 0% (0 of 1 ratings)" in body


def test_round_agreement_is_computed_with_the_snapshot():
    from annotation.services.agreement_snapshot import agreement_snapshot_create

    project = make_project(target_ratings=3)
    experts = raters(project, 3)
    inside = [image(project) for _ in range(6)]
    outside = [image(project) for _ in range(4)]
    for k, im in enumerate(inside + outside):
        for j, e in enumerate(experts):
            Rating.objects.create(project=project, image=im, rater=e, values=[(k + j) % 8] * 40, scale_max=7,
                                  taxonomy_version="emonet-face-1")
    batch = service.batch_create(project=project, name="R", image_ids=[im.pk for im in inside])
    service.batch_set_state(batch=batch, state=BatchState.OPEN)
    snapshot = agreement_snapshot_create(project, n_boot=20)
    batch.refresh_from_db()
    assert batch.agreement["snapshot"] == snapshot.pk
    assert (batch.agreement["n_images"], batch.agreement["n_ratings"], batch.agreement["n_boot"]) == (6, 18, 20)
    assert len(batch.agreement["emotions"]) == 40 and batch.agreement["emotions"][0]["ci"] is not None


# --- releases ---------------------------------------------------------------------------------------------


def test_a_release_from_two_rounds_contains_exactly_their_images():
    project = make_project(target_ratings=2)
    experts = raters(project, 2)
    ims = [image(project) for _ in range(9)]
    for im in ims:
        for e in experts:
            rate(im, e, 2)
    one = service.batch_create(project=project, name="One", image_ids=[im.pk for im in ims[:3]])
    two = service.batch_create(project=project, name="Two", image_ids=[im.pk for im in ims[2:5]])
    release = release_create(project=project, version="1.0.0", n_boot=0, batches=["Two", "One"])
    # an image added to a round later never reaches the release
    assert service.batch_add_images(batch=two, image_ids=[ims[8].pk, ims[2].pk]) == 1  # ims[2] was in it
    release = release_build(release)
    assert release.config["batches"] == ["One", "Two"]
    assert set(ReleaseImage.objects.filter(release=release).values_list("image_id", flat=True)) == {
        im.pk for im in ims[:5]}
    assert release.summary["images"] == 5
    with stored_files.file_open(f"{release.files_dir}/README.md") as fh:
        assert "Cut from the rounds One, Two: only their 5 images" in fh.read().decode()
    assert one.n_images == 3
    with pytest.raises(Exception, match="no batch named 'Nope'"):
        release_create(project=project, version="1.1.0", batches=["Nope"])


# --- the command and the API ----------------------------------------------------------------------------


def test_batch_command_create_open_list_close():
    project = make_project(slug="cmd", target_ratings=2)
    for k in range(6):
        image(project, k, gender="woman" if k < 4 else "man")
    out = StringIO()
    call_command("batch", "create", "Women", "--project", "cmd", "--filter", "gender=woman", "--target", "3",
                 "--due", "2026-03-14", "--open", stdout=out)
    assert "batch 'Women': 4 images, target 3, open" in out.getvalue()
    out = StringIO()
    call_command("batch", "list", "--project", "cmd", stdout=out)
    assert out.getvalue().startswith("Women\topen\tpriority 0\t4 images\ttarget 3\tcoverage 0% (0/12)")
    call_command("batch", "close", "Women", "--project", "cmd", stdout=StringIO())
    assert Batch.objects.get(name="Women").state == BatchState.CLOSED
    with pytest.raises(CommandError, match="no batch named 'Men'.*known: Women"):
        call_command("batch", "open", "Men", "--project", "cmd")
    with pytest.raises(CommandError, match="sample size 9 out of range"):
        call_command("batch", "create", "S", "--project", "cmd", "--sample", "9")


def test_api_make_list_show_and_change_state(client):
    from accounts.api_tokens import api_token_create

    project = make_project(slug="api", target_ratings=2)
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    expert = raters(project, 1)[0]
    ims = [image(project, k) for k in range(3)]
    key = api_token_create(user=lead, scope="read_write")[1]
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    url = "/api/v1/projects/api/batches/"
    response = client.post(url, json.dumps({"name": "R", "spec": {"images": [ims[0].name, ims[2].name]},
                                            "raters": [expert.email], "open": True}),
                           content_type="application/json", **auth)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["name"], body["state"], body["images"], body["raters"]) == ("R", "open", 2, [expert.email])
    assert client.get(url, **auth).json()[0]["name"] == "R"
    refused = client.post(url, json.dumps({"name": "R", "spec": {"filter": {}}}), content_type="application/json",
                          **auth)
    assert refused.status_code == 400 and "already has a batch named 'R'" in refused.json()["name"][0]
    for bad in ({"name": "X", "spec": {"sample": {"size": 1, "strata": 5}}},
                {"name": "X", "spec": {"sample": {"size": 1, "filter": "women"}}},
                {"name": "X", "spec": {"disputed": {"image_ids": 7}}},
                {"name": "X", "spec": {"filter": {"age": [30]}}},
                {"name": "X", "spec": {"images": [ims[0].name]}, "raters": 5},
                {"name": "X", "spec": {"images": [ims[0].name]}, "target_ratings": "many"},
                {"name": "X", "spec": ["not", "an", "object"]}, ["not", "an", "object"]):
        answer = client.post(url, json.dumps(bad), content_type="application/json", **auth)
        assert answer.status_code == 400 and answer.json(), (bad, answer.content)
    assert Batch.objects.filter(project=project).count() == 1
    detail = client.get(f"{url}{body['id']}/", **auth).json()
    assert detail["coverage_percent"] == 0 and detail["contributions"] == []
    state = client.post(f"{url}{body['id']}/state/", json.dumps({"state": "paused"}),
                        content_type="application/json", **auth)
    assert state.status_code == 200 and state.json()["state"] == "paused"


def test_lead_pages_make_a_sample_round_show_it_and_refuse_bad_input(client):
    project = make_project(slug="pages", target_ratings=2)
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    rater = raters(project, 1)[0]
    for k in range(12):
        image(project, k, gender="woman" if k % 2 else "man")
    client.force_login(lead)
    url = f"/projects/{project.slug}/batches/"
    assert client.get(url).status_code == 200
    made = client.post(url, {"name": "Pilot", "source": "sample", "size": "4", "seed": "3", "target_ratings": "3",
                             "raters": [str(rater.pk)], "open": "1"})
    batch = Batch.objects.get(name="Pilot")
    assert made.status_code == 302 and made["Location"] == f"{url}{batch.pk}/"
    assert (batch.state, batch.n_images, batch.target_ratings, batch.all_raters) == ("open", 4, 3, False)
    page = client.get(f"{url}{batch.pk}/").content.decode()
    assert '<span id="batch-taken">0</span> of 12' in page and "Raters' contributions" in page
    refused = client.post(url, {"name": "Pilot", "source": "filter"})
    assert refused.status_code == 400 and "already has a batch named" in refused.content.decode()
    assert client.post(f"{url}{batch.pk}/pause/").status_code == 302
    assert Batch.objects.get(pk=batch.pk).state == BatchState.PAUSED
    client.force_login(rater)
    assert client.get(url).status_code == 403


def test_rater_home_shows_their_rounds(client):
    project = make_project(slug="home-r", target_ratings=2)
    rater = raters(project, 1)[0]
    ims = [image(project, k) for k in range(3)]
    batch = service.batch_create(project=project, name="Round 2", image_ids=[im.pk for im in ims],
                                 due_on=date(2026, 3, 14))
    service.batch_set_state(batch=batch, state=BatchState.OPEN)
    claim_and_rate(project, rater)
    client.force_login(rater)
    assert "Round 2: 1 of 3 images, due 14 March" in client.get("/").content.decode()


def test_upload_api_adds_the_image_to_a_round(client):
    from accounts.api_tokens import api_token_create

    project = make_project(slug="up")
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    key = api_token_create(user=lead, scope="read_write")[1]
    upload = ContentFile(image_bytes(color=(1, 2, 3)), name="new.jpg")
    response = client.post("/api/v1/projects/up/images/", {"file": upload, "batch": "Tuesday"},
                           HTTP_AUTHORIZATION=f"Token {key}")
    assert response.status_code == 201, response.content
    batch = Batch.objects.get(project=project, name="Tuesday")
    assert (batch.source, batch.n_images) == ("import", 1)
    bad = ContentFile(b"not an image", name="bad.jpg")
    refused = client.post("/api/v1/projects/up/images/", {"file": bad, "batch": "Wednesday"},
                          HTTP_AUTHORIZATION=f"Token {key}")
    assert refused.status_code == 400 and not Batch.objects.filter(name="Wednesday").exists()
