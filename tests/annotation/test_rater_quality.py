"""Rater quality: pausing a rater, excluding their ratings from releases (annotation.services.raters)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from accounts.models import Role
from annotation import exporters, selectors
from annotation import rater_quality as rq
from annotation.models import Assignment, AssignmentStatus, AuditEvent, Image, Membership, Rating
from annotation.rating import assignment_claim
from annotation.services.raters import (
    RaterActionError,
    rater_exclude,
    rater_include,
    rater_pause,
    rater_resume,
)
from annotation.services.releases import release_build, release_create, release_dir
from tests.factories import PASSWORD, add_member, image_bytes, make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def image_with_file(project, priority: float = 0.0) -> Image:
    image = make_image(project, priority=priority)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes()), save=True)
    return image


def test_pausing_returns_the_leases_and_the_paused_rater_is_served_nothing():
    project = make_project(target_ratings=1)
    lead, rater, other = make_user(Role.LEAD), make_user(), make_user()
    add_member(project, lead, rater, other)
    only = image_with_file(project)
    lease = assignment_claim(project=project, rater=rater)
    assert lease is not None and lease.image_id == only.pk
    assert assignment_claim(project=project, rater=other) is None  # the one slot is leased

    rater_pause(project=project, rater=rater, actor=lead, reason="rushing")
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.EXPIRED and lease.finished_at is not None
    taken = assignment_claim(project=project, rater=other)
    assert taken is not None and taken.image_id == only.pk  # the image went back to the queue
    image_with_file(project)
    assert assignment_claim(project=project, rater=rater) is None  # paused: nothing, although one is free
    assert not Assignment.objects.filter(rater=rater, status=AssignmentStatus.OPEN).exists()
    event = AuditEvent.objects.get(action="rater.paused")
    assert event.actor == lead and event.data["leases_returned"] == 1 and event.data["reason"] == "rushing"

    rater_pause(project=project, rater=rater, actor=lead)  # idempotent: no second event
    assert AuditEvent.objects.filter(action="rater.paused").count() == 1
    rater_resume(project=project, rater=rater, actor=lead)
    assert AuditEvent.objects.filter(action="rater.resumed").count() == 1
    assert assignment_claim(project=project, rater=rater) is not None


def test_pausing_in_one_project_leaves_the_other_alone():
    p, q = make_project(), make_project()
    lead, rater = make_user(Role.LEAD), make_user()
    add_member(p, lead, rater)
    add_member(q, rater)
    image_with_file(p)
    image_with_file(q)
    rater_pause(project=p, rater=rater, actor=lead)
    assert assignment_claim(project=p, rater=rater) is None
    assert assignment_claim(project=q, rater=rater) is not None


def test_a_paused_rater_is_told_so_and_claims_nothing(client):
    project = make_project()
    lead, rater = make_user(Role.LEAD), make_user()
    add_member(project, lead, rater)
    image_with_file(project)
    rater_pause(project=project, rater=rater, actor=lead)
    client.login(email=rater.email, password=PASSWORD)
    page = client.get(reverse("annotation:rate", args=[project.slug]))
    assert page.status_code == 200
    assert "Your rating in this project is paused" in page.content.decode()
    assert 'data-assignment="' not in page.content.decode()
    assert not Assignment.objects.filter(rater=rater).exists()


def test_actions_need_a_membership_and_exclusion_a_reason():
    project = make_project()
    lead, rater, stranger = make_user(Role.LEAD), make_user(), make_user()
    add_member(project, lead, rater)
    with pytest.raises(RaterActionError, match="not a member"):
        rater_pause(project=project, rater=stranger, actor=lead)
    with pytest.raises(RaterActionError, match="reason is required"):
        rater_exclude(project=project, rater=rater, actor=lead, reason="  ")
    assert not Membership.objects.get(project=project, user=rater).excluded_from_releases
    rater_exclude(project=project, rater=rater, actor=lead, reason="failed the attention checks")
    m = Membership.objects.get(project=project, user=rater)
    assert m.excluded_from_releases and m.exclusion_reason == "failed the attention checks"
    rater_include(project=project, rater=rater, actor=lead)
    m.refresh_from_db()
    assert not m.excluded_from_releases and m.exclusion_reason == ""
    assert [e.action for e in AuditEvent.objects.filter(action__startswith="rater.").order_by("id")] == [
        "rater.excluded", "rater.included"]


def _rated_project(n_images: int = 30):
    project = make_project(slug="rq")
    raters = [make_user() for _ in range(4)]
    add_member(project, *raters)
    rng = np.random.default_rng(5)
    ratings = []
    for i in range(n_images):
        image = Image.objects.create(project=project, name=f"face_{i:03d}.jpg",
                                     sha256=hashlib.sha256(f"rq{i}".encode()).hexdigest())
        for r in raters:
            ratings.append(Rating(project=project, image=image, rater=r,
                                  values=[int(v) for v in rng.integers(0, 8, 40)], scale_max=7,
                                  taxonomy_version="emonet-face-1", source="import"))
    Rating.objects.bulk_create(ratings)
    return project, raters


def test_rating_rows_leaves_excluded_raters_out_in_sql_and_orm(monkeypatch):
    project, raters = _rated_project(6)
    everyone = selectors.rating_rows(project)
    some = selectors.rating_rows(project, exclude_raters=[raters[1].pk])
    assert raters[1].pk in everyone.rater_ids and raters[1].pk not in some.rater_ids
    assert len(some.rater_ids) == len(everyone.rater_ids) - 6
    orm = selectors.rating_rows(project, exclude_raters=[raters[1].pk], as_of=project.created_at.replace(year=2100))
    assert orm.rater_ids.tolist() == some.rater_ids.tolist() and (orm.values == some.values).all()


def test_an_excluded_raters_ratings_are_absent_from_a_new_release_and_listed_in_its_card():
    project, raters = _rated_project()
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    before = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    assert before.summary["n_raters"] == 4 and before.summary["excluded_raters"] == []
    bad = raters[2]
    rater_exclude(project=project, rater=bad, actor=lead, reason="rated every image identically")
    release = release_build(release_create(project=project, version="1.1.0", n_boot=0))
    key = bytes.fromhex(release.pseudonym_key)
    name = exporters.pseudonym(bad.pk, key)
    assert release.summary["n_raters"] == 3 and release.summary["raw_ratings"] == 30 * 3
    assert release.summary["excluded_raters"] == [{"rater": name, "reason": "rated every image identically"}]
    folder = release_dir(release)
    raw = pq.read_table(folder / "raw" / "ratings.parquet").to_pydict()
    assert name not in set(raw["rater"]) and len(set(raw["rater"])) == 3
    card = (folder / "README.md").read_text()
    assert name in card and "rated every image identically" in card
    meta = json.loads((folder / "release.json").read_text())
    assert json.dumps(meta).count("rated every image identically") >= 1
    # Pseudonyms, never ids (compare whole values: a random pseudonym may contain the id's digits).
    values = [v for entry in release.config["excluded_raters"] for v in entry.values()]
    assert bad.pk not in values and str(bad.pk) not in values and name in values
    # The earlier release keeps the rater; the exclusion only applies from its creation on.
    old_raw = pq.read_table(release_dir(before) / "raw" / "ratings.parquet").to_pydict()
    assert exporters.pseudonym(bad.pk, bytes.fromhex(before.pseudonym_key)) in set(old_raw["rater"])


def test_lead_buttons_on_the_raters_page(client):
    project = make_project()
    lead, rater = make_user(Role.LEAD), make_user(display_name="Rita Rater")
    add_member(project, lead, rater)
    client.force_login(lead)
    page = client.get(reverse("annotation:dashboard-raters", args=[project.slug])).content.decode()
    assert "Rita Rater" in page and reverse("annotation:dashboard-rater-pause", args=[project.slug, rater.pk]) in page
    response = client.post(reverse("annotation:dashboard-rater-pause", args=[project.slug, rater.pk]))
    assert response.status_code == 302
    assert Membership.objects.get(project=project, user=rater).paused_at is not None
    page = client.get(reverse("annotation:dashboard-raters", args=[project.slug])).content.decode()
    assert "paused since" in page
    assert reverse("annotation:dashboard-rater-resume", args=[project.slug, rater.pk]) in page
    refused = client.post(reverse("annotation:dashboard-rater-exclude", args=[project.slug, rater.pk]), {"reason": ""})
    assert refused.status_code == 400 and "reason is required" in refused.content.decode()
    ok = client.post(reverse("annotation:dashboard-rater-exclude", args=[project.slug, rater.pk]),
                     {"reason": "too fast"})
    assert ok.status_code == 302
    assert Membership.objects.get(project=project, user=rater).exclusion_reason == "too fast"
    assert client.post(reverse("annotation:dashboard-rater-pause", args=[project.slug, lead.pk + 1000])
                       ).status_code == 400
    client.force_login(rater)
    assert client.post(reverse("annotation:dashboard-rater-resume", args=[project.slug, rater.pk])).status_code == 403
    assert Membership.objects.get(project=project, user=rater).paused_at is not None


# --- severity / leniency and scale use (annotation.rater_quality) ------------------------------


def simulated(n_images: int = 200, n_emotions: int = 40, seed: int = 0, shift: int = 1):
    """Four raters; the last one rates everything `shift` steps higher. Truth stays in 1..5 and noise
    in -1..1, so no value is clipped at either end of the 0..7 scale."""
    rng = np.random.default_rng(seed)
    units, raters, values = [], [], []
    for image in range(n_images):
        truth = rng.integers(1, 6, n_emotions)
        for rater in range(4):
            noise = rng.choice([-1, 0, 1], size=n_emotions, p=[0.2, 0.6, 0.2])
            units.append(image)
            raters.append(100 + rater)
            values.append(truth + noise + (shift if rater == 3 else 0))
    return np.array(units), np.array(raters), np.array(values)


def test_severity_recovers_a_rater_who_rates_one_step_high():
    units, raters, values = simulated()
    result = {s.rater: s for s in rq.severity(units, raters, values)}
    assert result[103].severity == pytest.approx(1.0, abs=0.1)
    assert result[103].n_images == 200
    for rid in (100, 101, 102):  # each of the others sees the lenient one among "the others": -1/3
        assert result[rid].severity == pytest.approx(-1 / 3, abs=0.1)
    assert all(v == pytest.approx(1.0, abs=0.3) for v in result[103].per_emotion)


def test_severity_by_hand_and_single_rated_images_do_not_count():
    units = [1, 1, 2, 3, 3, 3]
    raters = [10, 11, 10, 10, 11, 12]
    values = [[2.0], [3.0], [7.0], [4.0], [np.nan], [6.0]]
    result = {s.rater: s for s in rq.severity(units, raters, values)}
    # image 1: 10 -> 2-3 = -1, 11 -> +1; image 2: only rater 10, ignored; image 3: 10 -> 4-6 = -2,
    # 12 -> 6-4 = +2, 11 missing.
    assert result[10].severity == pytest.approx(-1.5) and result[10].n_images == 2
    assert result[11].severity == pytest.approx(1.0) and result[11].n_images == 1
    assert result[12].severity == pytest.approx(2.0)
    assert rq.severity([5], [1], [[3.0]])[0].severity is None


def test_scale_use_counts_each_point_per_emotion():
    use = rq.scale_use([1, 1, 1, 2], [[0, 7], [0, 3], [2, 3], [1, 1]], scale_max=7)
    assert use[1] == [[2, 0, 1, 0, 0, 0, 0, 0], [0, 0, 0, 2, 0, 0, 0, 1]]
    assert use[2][0] == [0, 1, 0, 0, 0, 0, 0, 0]


@pytest.mark.parametrize("kind", ["int16", "off-scale int", "float with NaN"])
def test_scale_use_matches_a_count_of_each_cell(kind):
    """Counted by bincount (#21: an integer table on the scale without masks), off-scale and missing
    values left out: the same counts as looking at each cell."""
    rng = np.random.default_rng(5)
    raters = rng.integers(0, 6, 400) * 10
    values = rng.integers(0, 6, (400, 7)).astype(np.int16)
    if kind == "off-scale int":
        values[rng.random(values.shape) < 0.1] = 9
        values[3, 2] = -1
    if kind == "float with NaN":
        values = values.astype(np.float64)
        values[rng.random(values.shape) < 0.1] = np.nan
    use = rq.scale_use(raters, values, scale_max=5)
    for rid in np.unique(raters).tolist():
        mine = values[raters == rid]
        assert use[rid] == [[int((mine[:, e] == point).sum()) for point in range(6)] for e in range(7)]


def test_the_snapshot_and_the_raters_page_show_a_lenient_rater(client):
    from annotation.services.agreement_snapshot import agreement_snapshot_create

    project = make_project()
    lead = make_user(Role.LEAD)
    raters = [make_user(display_name=f"Rater {c}") for c in "ABCD"]
    add_member(project, lead, *raters)
    units, rater_idx, values = simulated(n_images=60, seed=1)
    images = [make_image(project) for _ in range(60)]
    Rating.objects.bulk_create([
        Rating(project=project, image=images[u], rater=raters[r - 100], values=[int(v) for v in vals], scale_max=7,
               taxonomy_version="emonet-face-1") for u, r, vals in zip(units, rater_idx, values, strict=True)])
    snapshot = agreement_snapshot_create(project, n_boot=0)
    rows = {r["rater"]: r for r in snapshot.payload["raters"]}
    lenient = rows[raters[3].pk]
    assert lenient["severity"]["mean"] == pytest.approx(1.0, abs=0.1)
    assert lenient["severity"]["n_images"] == 60 and len(lenient["severity"]["per_emotion"]) == 40
    assert sum(lenient["scale_use_overall"]) == 60 * 40 and len(lenient["scale_use_overall"]) == 8
    assert rows[raters[0].pk]["retest"] is None
    # #17: the intensity shift on present emotions, adjusted for who rated which images
    assert lenient["intensity_shift"]["estimate"] == pytest.approx(1.0, abs=0.2)
    assert "annotator_test" not in lenient and lenient["consistency"]["n_images"] == 60
    client.force_login(lead)
    url = reverse("annotation:dashboard-raters", args=[project.slug])
    html = client.get(url).content.decode()
    shift = lenient["intensity_shift"]["estimate"]
    assert f"{shift:+.2f}: rates about {shift:.1f} step higher than the others when both see an emotion" in html
    for table in ("raters", "severity", "scale_use", "retest"):
        response = client.get(url + f"?format=csv&table={table}")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/csv"), table


# --- drift and fatigue -------------------------------------------------------------------------


def test_sittings_split_on_gaps_over_30_minutes():
    minute = 60.0
    times = [0, 5 * minute, 34 * minute, 36 * minute, 120 * minute]
    assert rq.sittings(times) == [0, 0, 0, 0, 1]  # 29 minutes is no gap; 84 minutes is
    assert rq.sittings([0, 31 * minute]) == [0, 1] and rq.sittings([]) == []


def test_fatigue_compares_early_and_late_within_sittings_and_recent_with_usual():
    minute = 60.0
    # Two sittings of 6 ratings; within each the rater gets faster and strays further from the others.
    times = [i * minute for i in range(6)] + [600 * minute + i * minute for i in range(6)]
    seconds = [30, 30, 30, 10, 10, 10] * 2
    deviation = [0.2, 0.2, 0.2, 0.8, 0.8, 0.8] * 2
    f = rq.fatigue(times, seconds, deviation, recent=4)
    assert f.n_sittings == 2
    assert (f.early_seconds, f.late_seconds) == (30.0, 10.0)
    assert f.early_deviation == pytest.approx(0.2) and f.late_deviation == pytest.approx(0.8)
    assert f.recent_seconds == 10.0 and f.usual_seconds == 30.0
    short = rq.fatigue([0.0, 1.0], [5.0, 5.0], [0.1, 0.1])
    assert short.early_seconds is None and short.usual_seconds is None and short.recent_seconds is None


def test_rater_alerts_against_thresholds():
    t = rq.AlertThresholds(min_kappa=0.4, min_retest_alpha=0.6, speed_ratio=0.5)
    assert rq.rater_alerts(mean_kappa=0.5, retest_alpha=0.7, usual_seconds=20, recent_seconds=15, thresholds=t) == []
    alerts = rq.rater_alerts(mean_kappa=0.1, retest_alpha=0.3, usual_seconds=20, recent_seconds=5, thresholds=t)
    assert len(alerts) == 3 and "mean kappa 0.10" in alerts[0] and "alpha 0.30" in alerts[1] and "5 s" in alerts[2]
    assert rq.rater_alerts(mean_kappa=0.1, retest_alpha=None, usual_seconds=None, recent_seconds=None,
                           thresholds=rq.AlertThresholds()) == []


def test_the_raters_page_alerts_on_a_rater_who_speeds_up_and_on_low_agreement(client):
    from datetime import timedelta

    from django.utils import timezone

    from annotation.services.agreement_snapshot import agreement_snapshot_create

    project = make_project(alert_min_kappa=0.99)
    lead = make_user(Role.LEAD)
    raters = [make_user(display_name=f"Rater {c}") for c in "ABC"]
    add_member(project, lead, *raters)
    units, rater_idx, values = simulated(n_images=80, seed=2, shift=0)
    images = [make_image(project) for _ in range(80)]
    start = timezone.now() - timedelta(days=3)
    made = Rating.objects.bulk_create([
        Rating(project=project, image=images[u], rater=raters[r - 100], values=[int(v) for v in vals], scale_max=7,
               taxonomy_version="emonet-face-1", seconds_spent=20.0)
        for u, r, vals in zip(units, rater_idx, values, strict=True) if r != 103])
    for i, rating in enumerate(made):  # one long sitting per rater, a rating a minute
        Rating.objects.filter(pk=rating.pk).update(created_at=start + timedelta(minutes=i // 3))
    fast = [r.pk for r in made if r.rater_id == raters[0].pk][-50:]
    Rating.objects.filter(pk__in=fast).update(seconds_spent=4.0)
    snapshot = agreement_snapshot_create(project, n_boot=0)
    row = next(r for r in snapshot.payload["raters"] if r["rater"] == raters[0].pk)
    assert row["drift"]["usual_seconds"] == 20.0 and row["drift"]["recent_seconds"] == 4.0
    assert row["drift"]["n_sittings"] == 1 and sum(w["n"] for w in row["drift"]["weeks"]) == 80
    client.force_login(lead)
    url = reverse("annotation:dashboard-raters", args=[project.slug])
    html = client.get(url).content.decode()
    assert 'id="rater-alerts"' in html
    assert "recent time per image (4 s) is far below their usual (20 s)" in html
    assert html.count("is below 0.99") == 3  # everyone's agreement is below the (strict) threshold
    for table in ("drift", "fatigue"):
        assert client.get(url + f"?format=csv&table={table}").status_code == 200


def test_drift_weeks_start_on_monday_and_carry_each_ratings_own_deviation():
    """The snapshot's drift (numpy over one raw query) against a plain per-rating reference: weeks
    keyed by their Monday (UTC), counts, median seconds and the mean of the ratings' own relative
    deviations, matched to (image, rater)."""
    from datetime import UTC, datetime, timedelta

    from annotation.selectors import rating_rows
    from annotation.services.agreement_snapshot import agreement_snapshot_create

    project = make_project()
    raters = [make_user() for _ in range(3)]
    add_member(project, *raters)
    units, rater_idx, values = simulated(n_images=30, seed=5, shift=0)
    images = [make_image(project) for _ in range(30)]
    sunday = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)  # a Sunday, one hour before Monday
    made = Rating.objects.bulk_create([
        Rating(project=project, image=images[u], rater=raters[r - 100], values=[int(v) for v in vals], scale_max=7,
               taxonomy_version="emonet-face-1", seconds_spent=None if i % 7 == 0 else float(10 + i % 5))
        for i, (u, r, vals) in enumerate(zip(units, rater_idx, values, strict=True)) if r != 103])
    for i, rating in enumerate(made):  # 3 minutes apart: crosses from Sunday into Monday
        Rating.objects.filter(pk=rating.pk).update(created_at=sunday + timedelta(minutes=3 * i - 30))
    rows = rating_rows(project)
    dev = rq.relative_deviation(rows.image_ids, rows.values.astype(float))
    own = {(int(u), int(r)): float(d) for u, r, d in zip(rows.image_ids, rows.rater_ids, dev, strict=True)}
    snapshot = agreement_snapshot_create(project, n_boot=0)
    for rater in raters:
        mine = sorted((r for r in Rating.objects.filter(rater=rater)), key=lambda r: (r.created_at, r.pk))
        expected: dict[str, list[Rating]] = {}
        for r in mine:
            day = r.created_at.astimezone(UTC).date()
            expected.setdefault((day - timedelta(days=day.weekday())).isoformat(), []).append(r)
        row = next(x for x in snapshot.payload["raters"] if x["rater"] == rater.pk)
        got = {w["week"]: w for w in row["drift"]["weeks"]}
        assert set(got) == set(expected) and len(got) == 2  # the Sunday's week and the Monday's
        for week, items in expected.items():
            assert got[week]["n"] == len(items)
            secs = [r.seconds_spent for r in items if r.seconds_spent is not None]
            assert got[week]["median_seconds"] == pytest.approx(float(np.median(secs)), abs=0.05)
            devs = [own[(r.image_id, rater.pk)] for r in items if np.isfinite(own[(r.image_id, rater.pk)])]
            assert got[week]["mean_deviation"] == pytest.approx(float(np.mean(devs)), abs=1e-4)
