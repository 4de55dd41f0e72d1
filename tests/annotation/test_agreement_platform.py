"""Agreement inside the platform: import -> agreement --json, snapshots, the task, the API."""

import io
import json

import krippendorff
import numpy as np
import pytest
from django.core.management import CommandError, call_command

from accounts.models import Role
from annotation.models import AgreementSnapshot, Image, Rating
from annotation.services.agreement_snapshot import agreement_schedule, agreement_snapshot_create
from annotation.taxonomy import EMOTIONS
from tests.factories import add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def ratings_csv(rng: np.random.Generator, n_images: int = 40, raters: int = 5, per_image: int = 3) -> tuple[str, dict]:
    """A long CSV where each image is rated by `per_image` raters on a few emotions (others 0)."""
    lines = ["image,rater,emotion,value"]
    matrix = {}  # (rater, image) -> 40 values
    for i in range(n_images):
        truth = rng.integers(0, 8, size=40) * (rng.random(40) < 0.3)
        for r in rng.choice(raters, size=per_image, replace=False):
            vals = np.clip(truth + rng.integers(-1, 2, size=40) * (truth > 0), 0, 7)
            matrix[(f"r{r}", f"img{i}.jpg")] = vals
            for e in np.nonzero(vals)[0]:
                lines.append(f"img{i}.jpg,r{r},{EMOTIONS[e]},{vals[e]}")
    return "\n".join(lines) + "\n", matrix


def oracle(matrix: dict, emotion: int, level: str = "interval") -> float:
    raters = sorted({r for r, _ in matrix})
    images = sorted({i for _, i in matrix})
    data = np.full((len(raters), len(images)), np.nan)
    for (r, i), vals in matrix.items():
        data[raters.index(r), images.index(i)] = vals[emotion]
    return krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=list(range(8)))


def run_json(*args: str) -> dict:
    out = io.StringIO()
    call_command("agreement", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_import_then_agreement_json_matches_the_oracle(tmp_path):
    make_project(slug="hq")
    text, matrix = ratings_csv(np.random.default_rng(11))
    f = tmp_path / "r.csv"
    f.write_text(text)
    call_command("import_ratings", str(f), "--project", "hq", "--format", "long", stdout=io.StringIO())
    report = run_json("--project", "hq", "--bootstrap", "200", "--seed", "3")
    assert report["project"] == "hq" and report["level"] == "interval" and len(report["emotions"]) == 40
    assert report["n_images"] == 40 and report["n_ratings"] == 120 and report["n_raters"] == 5
    for e in report["emotions"]:
        expected = oracle(matrix, e["index"])
        assert set(e) >= {"emotion", "alpha", "ci", "n_images", "n_ratings", "nonzero_share"}
        if np.isnan(expected):
            assert e["alpha"] is None and e["reason"]
        else:
            assert e["alpha"] == pytest.approx(expected, abs=1e-6), e["emotion"]
            lo, hi = e["ci"]
            assert lo <= hi
        assert e["n_ratings"] == 120
    # Other levels too.
    ordinal = run_json("--project", "hq", "--level", "ordinal", "--bootstrap", "0")
    anger = EMOTIONS.index("Anger")
    expected = oracle(matrix, anger, "ordinal")
    got = ordinal["emotions"][anger]["alpha"]
    assert (got is None and np.isnan(expected)) or got == pytest.approx(expected, abs=1e-6)
    # The same seed gives the same intervals.
    assert run_json("--project", "hq", "--bootstrap", "200", "--seed", "3")["emotions"] == report["emotions"]


def test_agreement_json_carries_the_issue_17_figures(tmp_path):
    make_project(slug="hq")
    text, matrix = ratings_csv(np.random.default_rng(5))
    (tmp_path / "r.csv").write_text(text)
    call_command("import_ratings", str(tmp_path / "r.csv"), "--project", "hq", "--format", "long",
                 stdout=io.StringIO())
    report = run_json("--project", "hq", "--bootstrap", "200", "--seed", "1")
    raters = sorted({r for r, _ in matrix})
    images = sorted({i for _, i in matrix})
    for e in report["emotions"]:
        assert {"ci_raters", "n_boot_undefined", "presence_alpha", "intensity_alpha", "ac2"} <= set(e)
        data = np.full((len(raters), len(images)), np.nan)
        for (r, i), vals in matrix.items():
            data[raters.index(r), images.index(i)] = vals[e["index"]]
        pres = np.where(np.isnan(data), np.nan, (data > 0).astype(float))
        if e["presence_alpha"] is not None:
            want = krippendorff.alpha(reliability_data=pres, level_of_measurement="nominal", value_domain=[0, 1])
            assert e["presence_alpha"] == pytest.approx(want, abs=1e-6)
        if e["ci"] is not None and e["ci_raters"] is not None:
            assert e["ci_raters"][0] <= e["ci"][0] <= e["ci"][1] <= e["ci_raters"][1]
    mean = report["mean_alpha_ci"]
    assert mean["estimate"] == pytest.approx(report["mean_alpha"], abs=1e-6)
    assert mean["ci_raters"][0] <= mean["ci"][0] <= report["mean_alpha"] <= mean["ci"][1] <= mean["ci_raters"][1]
    label = report["label_reliability"]
    k, a = label["ratings_per_image"], report["mean_alpha"]
    assert k == pytest.approx(3.0) and label["reliability"] == pytest.approx(k * a / (1 + (k - 1) * a), abs=1e-5)
    assert all("consistency" in r and "annotator_test" not in r for r in report["raters"])
    text_out = io.StringIO()
    call_command("agreement", "--project", "hq", "--bootstrap", "50", stdout=text_out)
    assert "reliability of the consolidated label" in text_out.getvalue()


def test_flagged_images_are_left_out(tmp_path):
    project = make_project(slug="hq")
    text, _ = ratings_csv(np.random.default_rng(2), n_images=10)
    (tmp_path / "r.csv").write_text(text)
    call_command("import_ratings", str(tmp_path / "r.csv"), "--project", "hq", "--format", "long",
                 stdout=io.StringIO())
    Image.objects.filter(project=project, name="img0.jpg").update(flagged=True)
    report = run_json("--project", "hq", "--bootstrap", "0")
    assert report["n_images"] == 9 and report["flagged_images_excluded"] == 1


def test_undefined_cases_give_reasons_not_numbers():
    project = make_project(slug="hq")
    rater = make_user()
    image = Image.objects.create(project=project, name="a.jpg")
    Rating.objects.create(project=project, image=image, rater=rater, values=[0] * 40, scale_max=7,
                          taxonomy_version="emonet-face-1")
    report = run_json("--project", "hq", "--bootstrap", "10")
    assert all(e["alpha"] is None and e["ci"] is None and e["reason"] for e in report["emotions"])
    assert report["mean_alpha"] is None


def test_bad_arguments_are_clear():
    make_project(slug="hq")
    with pytest.raises(CommandError, match="out of range"):
        run_json("--project", "hq", "--bootstrap", "-1")
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        run_json("--project", "nope")


def test_binary_project_reports_vote_patterns_and_the_design_caveat():
    project = make_project(slug="yn", mode="binary")
    raters = [make_user() for _ in range(3)]
    fear = EMOTIONS.index("Fear")
    for i in range(6):
        image = Image.objects.create(project=project, name=f"{i}.jpg")
        votes = [1, 1, 1] if i < 3 else [1, 0]
        for rater, v in zip(raters, votes, strict=False):
            Rating.objects.create(project=project, image=image, rater=rater, emotion=fear, values=[v], scale_max=1,
                                  taxonomy_version="emonet-face-1")
    report = run_json("--project", "yn", "--bootstrap", "50")
    row = report["emotions"][fear]
    assert report["level"] == "nominal"
    assert row["vote_patterns"] == {"3:0": 3, "1:1": 3}
    assert any("biased by the design" in w or "conditional" in w.lower() for w in row["warnings"])


def test_snapshot_is_idempotent_and_recomputed_after_new_ratings(tmp_path):
    project = make_project(slug="hq")
    text, _ = ratings_csv(np.random.default_rng(5), n_images=12)
    (tmp_path / "r.csv").write_text(text)
    call_command("import_ratings", str(tmp_path / "r.csv"), "--project", "hq", "--format", "long",
                 stdout=io.StringIO())
    first = agreement_snapshot_create(project, n_boot=50)
    assert first.status == "done" and first.progress == 100 and len(first.payload["emotions"]) == 40
    assert agreement_snapshot_create(project, n_boot=50).pk == first.pk
    Rating.objects.create(project=project, image=Image.objects.get(project=project, name="img0.jpg"),
                          rater=make_user(), values=[1] * 40, scale_max=7, taxonomy_version="emonet-face-1")
    second = agreement_snapshot_create(project, n_boot=50)
    assert second.pk != first.pk and second.payload["n_ratings"] == first.payload["n_ratings"] + 1
    assert {r["label"] for r in second.payload["raters"]} >= {"r0", "r1"}


@pytest.mark.django_db(transaction=True)
def test_snapshot_task_runs_on_a_real_worker(celery_worker_real, tmp_path):
    from annotation.tasks import agreement_snapshot_task

    project = make_project(slug="hq")
    text, _ = ratings_csv(np.random.default_rng(8), n_images=15)
    (tmp_path / "r.csv").write_text(text)
    call_command("import_ratings", str(tmp_path / "r.csv"), "--project", "hq", "--format", "long",
                 stdout=io.StringIO())
    snapshot_id = agreement_snapshot_task.apply_async((project.pk,), {"n_boot": 100}, queue="agreement").get(timeout=60)
    snapshot = AgreementSnapshot.objects.get(pk=snapshot_id)
    assert snapshot.status == "done" and snapshot.payload["n_ratings"] == 45
    # Idempotent: a second run returns the same snapshot.
    again = agreement_snapshot_task.apply_async((project.pk,), {"n_boot": 100}, queue="agreement").get(timeout=60)
    assert again == snapshot_id


def test_schedule_is_debounced(django_capture_on_commit_callbacks):
    project = make_project()
    with django_capture_on_commit_callbacks() as callbacks:
        assert agreement_schedule(project) is True
        assert agreement_schedule(project) is False
    assert len(callbacks) == 1


def test_api_latest_snapshot_for_leads_only(client):
    project = make_project(slug="hq")
    lead, rater, other_lead = make_user(Role.LEAD), make_user(Role.RATER), make_user(Role.LEAD)
    add_member(project, lead, rater)
    url = "/api/v1/projects/hq/agreement/"
    client.force_login(lead)
    resp = client.get(url)
    assert resp.status_code == 404 and "no agreement snapshot yet" in resp.json()["detail"]
    agreement_snapshot_create(project, n_boot=0)
    resp = client.get(url)
    assert resp.status_code == 200
    body = resp.json()
    assert body["project"] == "hq" and len(body["emotions"]) == 40 and body["status"] == "done"
    for user in (rater, other_lead):
        client.force_login(user)
        assert client.get(url).status_code == 403
    client.logout()
    assert client.get(url).status_code in (401, 403)


def test_median_seconds_per_rater_in_the_snapshot():
    from annotation.selectors import median_seconds_per_rater

    project = make_project(slug="hq")
    fast, slow = make_user(), make_user()
    for i, (s_fast, s_slow) in enumerate([(10, 50), (20, 70), (60, 90)]):
        image = Image.objects.create(project=project, name=f"{i}.jpg")
        for rater, s in ((fast, s_fast), (slow, s_slow)):
            Rating.objects.create(project=project, image=image, rater=rater, values=[i] * 40, scale_max=7,
                                  taxonomy_version="emonet-face-1", seconds_spent=s)
    assert median_seconds_per_rater(project) == {fast.pk: 20.0, slow.pk: 70.0}
    payload = agreement_snapshot_create(project, n_boot=0).payload
    assert {r["rater"]: r["median_seconds"] for r in payload["raters"]} == {fast.pk: 20.0, slow.pk: 70.0}
    assert {r["rater"]: r["n_ratings"] for r in payload["raters"]} == {fast.pk: 3, slow.pk: 3}


def test_a_snapshot_left_running_by_a_dead_worker_is_taken_over_even_after_new_ratings(tmp_path):
    from annotation.models import SnapshotStatus

    project = make_project(slug="hq")
    text, _ = ratings_csv(np.random.default_rng(6), n_images=8)
    (tmp_path / "r.csv").write_text(text)
    call_command("import_ratings", str(tmp_path / "r.csv"), "--project", "hq", "--format", "long",
                 stdout=io.StringIO())
    dead = AgreementSnapshot.objects.create(project=project, n_boot=10, fingerprint="old", status="running")
    older = AgreementSnapshot.objects.create(project=project, n_boot=10, fingerprint="older", status="running")
    done = agreement_snapshot_create(project, n_boot=10)
    assert done.status == SnapshotStatus.DONE and done.pk in (dead.pk, older.pk)
    assert not AgreementSnapshot.objects.filter(project=project, status="running").exists()
