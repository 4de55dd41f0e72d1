"""Releases end to end on PostgreSQL: build, determinism, stickiness, immutability, loading."""

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction

from annotation.exporters import verify_manifest
from annotation.imagefiles import strip_metadata
from annotation.models import Image, Rating, Release, ReleaseImage
from annotation.services.releases import (
    ReleaseError,
    release_build,
    release_create,
    release_dir,
    release_publish,
)
from annotation.taxonomy import EMOTIONS, emotion_slug
from tests.factories import image_bytes, make_project, make_user
from tests.support.seed import populate

pytestmark = pytest.mark.django_db
@pytest.fixture
def project_with_ratings():
    project = make_project(slug="hq")
    raters = [make_user() for _ in range(6)]
    populate(project, 240, raters, np.random.default_rng(1))
    return project, raters


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_loads_with_pandas_pyarrow_and_datasets(project_with_ratings, tmp_path, monkeypatch):
    import datasets
    import pandas as pd
    import pyarrow.parquet as pq

    project, _ = project_with_ratings
    release = release_build(release_create(project=project, version="1.0.0", n_boot=200))
    assert release.status == "built" and release.progress == 100
    folder = release_dir(release)
    assert release.summary["images"] == 240 and sum(release.summary["splits"].values()) == 240
    frame = pd.read_parquet(folder / "data" / "test-00000-of-00001.parquet")
    assert {"file_name", "sha256", "ethnicity", "gender", "age", "prompt", "split"} <= set(frame.columns)
    assert f"{emotion_slug('Anger')}__consensus" in frame.columns and (frame["split"] == "test").all()
    table = pq.read_table(folder / "data" / "train-00000-of-00001.parquet")
    assert table.num_rows == release.summary["splits"]["train"]
    raw = pq.read_table(folder / "raw" / "ratings.parquet").to_pandas()
    assert len(raw) == 720 and raw["rater"].str.fullmatch(r"rater_[0-9a-f]{10}").all()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    loaded = datasets.load_dataset("parquet", data_dir=str(folder / "data"), cache_dir=str(tmp_path / "hf-cache"))
    assert {s: loaded[s].num_rows for s in loaded} == release.summary["splits"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "cc-by-4.0" in card and "Anger" in card
    assert "surveillance" in card.lower()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {f["path"] for f in manifest["files"]} == set(file_hashes(folder)) - {"manifest.json"}


def test_two_builds_are_byte_identical(project_with_ratings):
    project, _ = project_with_ratings
    release = release_build(release_create(project=project, version="1.0.0", n_boot=100))
    first = file_hashes(release_dir(release))
    first_manifest = release.manifest_sha256
    rebuilt = release_build(release)
    assert file_hashes(release_dir(rebuilt)) == first and rebuilt.manifest_sha256 == first_manifest


def test_agreement_computed_in_a_child_process_or_here_gives_the_same_files(project_with_ratings, settings):
    """#21: the release's agreement runs in a forked child while the tables are written; with the
    fork turned off it runs in the build's own process: the same bytes."""
    project, _ = project_with_ratings
    release = release_build(release_create(project=project, version="1.0.0", n_boot=100))
    forked = file_hashes(release_dir(release))
    assert json.loads((release_dir(release) / "release.json").read_text())["agreement"]["mean_alpha"] is not None
    settings.EMORATE_RELEASE_FORK = False
    here = release_build(release)
    assert file_hashes(release_dir(here)) == forked and len(forked) >= 10


def _nothing_left(release: Release, settings) -> None:
    """A failed build: marked failed, no ReleaseImage row, no stored file, no scratch folder."""
    release.refresh_from_db()
    assert release.status == "failed" and not release.manifest_sha256
    assert not ReleaseImage.objects.filter(release=release).exists()
    assert not release_dir(release).exists()
    media = Path(settings.MEDIA_ROOT)
    assert [p for p in media.rglob("*") if p.is_file() and (release.project.slug in p.as_posix()
                                                            or "emorate-release-" in p.as_posix())] == []


def _fresh_project(slug: str):
    """A project of its own (the media folder is shared by the session's tests: its release folder
    must not exist before the build)."""
    project = make_project(slug=slug)
    populate(project, 240, [make_user() for _ in range(6)], np.random.default_rng(1))
    return project


def test_a_failure_in_the_agreement_beside_the_writing_leaves_nothing(settings, monkeypatch):
    """#21: the agreement fails in its child process while the tables are written and the images'
    rows are being copied in: the build fails with its message, and leaves nothing behind."""
    from annotation.services import releases

    def broken(*args, **kwargs):
        raise ValueError("agreement broke on purpose")

    monkeypatch.setattr(releases, "_agreement_summary", broken)
    project = _fresh_project("agreement-fails")
    release = release_create(project=project, version="1.0.0", n_boot=100)
    with pytest.raises(ValueError, match="agreement broke on purpose"):
        release_build(release)
    _nothing_left(release, settings)
    assert "agreement broke on purpose" in Release.objects.get(pk=release.pk).error


def test_a_failure_while_writing_rolls_back_the_copied_image_rows(settings, monkeypatch):
    """#21: the ReleaseImage rows go in on a background COPY while the files are written; a
    failure in the writing (after the copy had every row) rolls them back with the rest."""
    from annotation.services import releases

    original = releases.write_release_columns

    def fails_after_writing(*args, **kwargs):
        original(*args, **kwargs)
        raise OSError("the disk filled up on purpose")

    monkeypatch.setattr(releases, "write_release_columns", fails_after_writing)
    project = _fresh_project("writing-fails")
    release = release_create(project=project, version="1.0.0", n_boot=100)
    with pytest.raises(OSError, match="on purpose"):
        release_build(release)
    _nothing_left(release, settings)
    monkeypatch.setattr(releases, "write_release_columns", original)
    done = release_build(release)  # and the next build completes it
    assert done.status == "built" and ReleaseImage.objects.filter(release=done).count() == 240


def test_inputs_are_frozen_at_creation(project_with_ratings):
    project, raters = project_with_ratings
    release = release_create(project=project, version="1.0.0", n_boot=0)
    before = file_hashes(release_dir(release_build(release)))
    # A new rating and a revision after creation do not reach the release.
    rating = Rating.objects.filter(project=project).first()
    from annotation.models import RatingRevision
    RatingRevision.objects.create(rating=rating, values=rating.values)
    from django.utils import timezone
    Rating.objects.filter(pk=rating.pk).update(values=[7] * 40, updated_at=timezone.now())
    populate(project, 5, raters, np.random.default_rng(9), start=1000)
    assert file_hashes(release_dir(release_build(release))) == before


def test_test_images_stay_in_test_across_versions(project_with_ratings):
    project, raters = project_with_ratings
    v1 = release_publish(release_build(release_create(project=project, version="1.0.0", n_boot=0)))
    test_before = set(ReleaseImage.objects.filter(release=v1, split="test").values_list("sha256", flat=True))
    assert test_before
    populate(project, 200, raters, np.random.default_rng(2), start=5000)
    v2 = release_build(release_create(project=project, version="1.1.0", n_boot=0, split={"seed": 99}))
    splits_v2 = dict(ReleaseImage.objects.filter(release=v2).values_list("sha256", "split"))
    assert all(splits_v2[s] == "test" for s in test_before)
    assert v2.summary["images"] == 440
    diff = v2.summary["diff"]
    assert diff["previous_version"] == "1.0.0" and diff["summary"]["added"] == 200 and diff["summary"]["removed"] == 0
    assert (release_dir(v2) / "diff.json").exists()


def test_split_balance_holds(project_with_ratings):
    project, _ = project_with_ratings
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    assert release.summary["balance_violations"] == []
    counts = release.summary["splits"]
    assert abs(counts["train"] / 240 - 0.8) <= 0.02 and abs(counts["test"] / 240 - 0.1) <= 0.02


def test_published_release_refuses_every_change(project_with_ratings):
    project, _ = project_with_ratings
    release = release_publish(release_build(release_create(project=project, version="1.0.0", n_boot=0)))
    assert release.status == "published" and release.published_at is not None
    for change in (
        lambda: Release.objects.filter(pk=release.pk).update(summary={"tampered": True}),
        lambda: Release.objects.filter(pk=release.pk).update(status="built"),
        lambda: Release.objects.filter(pk=release.pk).delete(),
        lambda: ReleaseImage.objects.filter(release=release).update(split="train"),
        lambda: ReleaseImage.objects.filter(release=release).delete(),
        lambda: ReleaseImage.objects.create(release=release, image=Image.objects.create(project=project, name="new"),
                                            sha256="x", split="test"),
    ):
        with pytest.raises(IntegrityError, match="published"), transaction.atomic():
            change()
    with pytest.raises(ReleaseError, match="published and can never be rebuilt"):
        release_build(release)
    with pytest.raises(ReleaseError, match="already exists"):
        release_create(project=project, version="1.0.0")
    with pytest.raises(ReleaseError, match="not above the latest release 1.0.0"):
        release_create(project=project, version="0.9.0")
    with pytest.raises(ReleaseError, match="not a semantic version"):
        release_create(project=project, version="v2")


def test_publish_refuses_tampered_files(project_with_ratings):
    project, _ = project_with_ratings
    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    (release_dir(release) / "csv" / "test.csv").write_text("tampered\n")
    with pytest.raises(ReleaseError, match="do not match the manifest"):
        release_publish(release)
    assert Release.objects.get(pk=release.pk).status == "built"


def test_release_command_with_out_folder(project_with_ratings, tmp_path):
    project, _ = project_with_ratings
    out = io.StringIO()
    call_command("release", "--project", "hq", "--version", "2.0.0", "--publish", "--out", str(tmp_path / "o"),
                 "--bootstrap", "50", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "release 2.0.0: published; 240 images" in text
    assert (tmp_path / "o" / "manifest.json").exists() and (tmp_path / "o" / "README.md").exists()
    with pytest.raises(CommandError, match="not a semantic version"):
        call_command("release", "--project", "hq", "--version", "latest", stdout=io.StringIO())


def test_release_command_refuses_other_options_for_an_existing_version(project_with_ratings):
    """A version's configuration is frozen: asking for it again with other options names each
    difference instead of silently handing back the old release (#20)."""
    call_command("release", "--project", "hq", "--version", "1.0.0", "--method", "mean", "--bootstrap", "0",
                 stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError) as refused:
        call_command("release", "--project", "hq", "--version", "1.0.0", "--method", "median", "--seed", "3",
                     "--min-ratings", "2", "--include-images", stdout=io.StringIO(), stderr=io.StringIO())
    message = str(refused.value)
    assert "--method median (1.0.0 has mean)" in message and "--seed 3 (1.0.0 has 0)" in message
    assert "--include-images True (1.0.0 has False)" in message and "min-ratings" not in message  # 2 = frozen 2
    assert Release.objects.get(version="1.0.0").status == "built"
    # The same options, or none, build/publish the existing version.
    out = io.StringIO()
    call_command("release", "--project", "hq", "--version", "1.0.0", "--method", "mean", "--publish",
                 stdout=out, stderr=io.StringIO())
    assert "release 1.0.0: published" in out.getvalue()
    assert Release.objects.get(version="1.0.0").config["consolidation"]["method"] == "mean"


def test_images_can_be_included(settings, tmp_path):
    """Releases ship the stripped copies raters saw (security review L9), with both hashes."""
    project = make_project(slug="small")
    raters = [make_user() for _ in range(3)]
    from annotation.services.image_import import image_import_one
    originals = {}
    for i in range(6):
        data = image_bytes()
        data = data[:2] + b"\xff\xe3\x00\x0fsecret prompt" + data[2:]  # an APP3 segment with generator text
        originals[hashlib.sha256(data).hexdigest()] = data
        image = image_import_one(project=project, name=f"{i}.jpg", data=data, meta=None)
        for r in raters:
            Rating.objects.create(project=project, image=image, rater=r, values=[i % 8] * 40, scale_max=7,
                                  taxonomy_version="emonet-face-1")
    release = release_build(release_create(project=project, version="1.0.0", include_images=True, n_boot=0))
    manifest = json.loads((release_dir(release) / "manifest.json").read_text())
    images = [f for f in manifest["files"] if f["path"].startswith("images/")]
    assert len(images) == 6
    for f in images:
        shipped = (release_dir(release) / f["path"]).read_bytes()
        assert hashlib.sha256(shipped).hexdigest() == f["sha256"]
        assert f["original_sha256"] == f["path"].split("/")[1].split(".")[0] and f["original_sha256"] in originals
        assert b"secret" not in shipped and b"secret" in originals[f["original_sha256"]]
        assert f["sha256"] != f["original_sha256"]
        assert shipped == strip_metadata(originals[f["original_sha256"]])
    assert verify_manifest(release_dir(release)) == []


@pytest.mark.django_db(transaction=True)
def test_a_build_killed_midway_publishes_nothing(settings, tmp_path):
    """Kill the building process with SIGKILL while it writes; no published or built release, no files."""
    project = make_project(slug="killme")
    raters = [make_user() for _ in range(4)]
    populate(project, 400, raters, np.random.default_rng(4))
    release = release_create(project=project, version="1.0.0", n_boot=2000)
    from django.db import connection
    env = {**os.environ, "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" +
           connection.settings_dict["NAME"], "MEDIA_ROOT": str(settings.MEDIA_ROOT)}
    child = subprocess.Popen([sys.executable, "manage.py", "shell", "-c",
                              f"from annotation.models import Release; from annotation.services.releases import "
                              f"release_build; release_build(Release.objects.get(pk={release.pk}))"],
                             cwd=Path(__file__).resolve().parents[2], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    for _ in range(200):
        if Release.objects.get(pk=release.pk).progress >= 50:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    stuck = Release.objects.get(pk=release.pk)
    assert stuck.status == "building" and not stuck.manifest_sha256
    assert not ReleaseImage.objects.filter(release=stuck).exists()
    # Whatever the killed build left on disk is never served: downloads go through the stored
    # manifest, which only a committed build writes.
    from django.http import Http404

    from annotation.services.releases import release_file_response
    with pytest.raises(Http404):
        release_file_response(stuck, "README.md")
    with pytest.raises(ReleaseError, match="only a built release can be published"):
        release_publish(stuck)
    # Building again (what a redelivered task does) completes it.
    done = release_build(stuck)
    assert done.status == "built" and not (release_dir(done).parent / ".1.0.0.build").exists()
    assert sorted(EMOTIONS)  # taxonomy still intact


def test_audit_history_records_releases_and_role_changes(project_with_ratings):
    from accounts.models import Role
    from annotation.models import AuditEvent

    project, _ = project_with_ratings
    lead = make_user(Role.LEAD)
    release = release_create(project=project, version="1.0.0", n_boot=0, created_by=lead)
    release_publish(release_build(release), actor=lead)
    actions = list(AuditEvent.objects.filter(project=project).values_list("action", "actor_id"))
    assert ("release.created", lead.pk) in actions and ("release.published", lead.pk) in actions
    lead.role = Role.ADMIN
    lead.save()
    change = AuditEvent.objects.get(action="user.role_changed", object_id=str(lead.pk))
    assert change.data["old_role"] == "lead" and change.data["new_role"] == "admin"
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=change.pk).update(action="nothing")
