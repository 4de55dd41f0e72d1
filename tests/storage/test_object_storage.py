"""Media on a real S3 server (SeaweedFS, started by `make test`): imports, served copies, releases,
scoring and media_migrate, with nothing written to the local media folder."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from PIL import Image as PILImage

from accounts.models import Role
from annotation.models import ModelScore
from annotation.services import stored_files
from annotation.services.image_import import image_import_one
from annotation.services.releases import (
    ReleaseError,
    release_build,
    release_create,
    release_dir,
    release_publish,
)
from tests.factories import add_member, make_project, make_user
from tests.support.s3 import bucket_keys, make_bucket, s3_client, s3_storages
from tests.support.seed import populate

pytestmark = pytest.mark.django_db


def jpeg_with_exif(seed: int) -> bytes:
    img = PILImage.new("RGB", (48, 40), ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    exif = PILImage.Exif()
    exif[0x0110] = "SecretCam"  # camera model
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


@pytest.fixture
def local_media(tmp_path: Path) -> Iterator[Path]:
    media = tmp_path / "media"
    media.mkdir()
    with override_settings(MEDIA_ROOT=str(media)):
        yield media


@pytest.fixture
def bucket(local_media: Path) -> Iterator[str]:
    """The default storage in a fresh bucket; MEDIA_ROOT an empty folder that must stay empty."""
    name = make_bucket()
    with override_settings(STORAGES=s3_storages(name)):
        yield name


def local_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_import_stores_original_and_served_copy_in_the_bucket_and_serves_the_stored_copy(client, bucket,
                                                                                        local_media):
    project = make_project(slug="s3faces")
    image = image_import_one(project=project, name="a.jpg", data=jpeg_with_exif(1), meta=None)
    served = stored_files.served_name(image.file.name)
    assert bucket_keys(bucket) == sorted([image.file.name, served])
    original = s3_client().get_object(Bucket=bucket, Key=image.file.name)["Body"].read()
    copy = s3_client().get_object(Bucket=bucket, Key=served)["Body"].read()
    assert b"SecretCam" in original and b"SecretCam" not in copy and copy.startswith(b"\xff\xd8")

    rater, stranger = make_user(Role.RATER), make_user(Role.RATER)
    add_member(project, rater)
    client.force_login(rater)
    response = client.get(f"/media/{image.file.name}")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == copy
    # What is served is the stored copy, not a copy stripped again on each request.
    s3_client().put_object(Bucket=bucket, Key=served, Body=copy + b"-stored-copy")
    assert b"".join(client.get(f"/media/{image.file.name}").streaming_content) == copy + b"-stored-copy"
    client.force_login(stranger)
    assert client.get(f"/media/{image.file.name}").status_code == 403
    assert local_files(local_media) == []
    # Links to files name the checked view, never the private bucket.
    assert image.file.url == f"/media/{image.file.name}"


def test_a_served_copy_missing_from_older_imports_is_made_once_on_first_request(client, bucket):
    project = make_project(slug="older")
    image = image_import_one(project=project, name="b.jpg", data=jpeg_with_exif(2), meta=None)
    stored_files.served_copy_delete(image.file.name)
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    client.force_login(lead)
    body = b"".join(client.get(f"/projects/older/dashboard/disputed/{image.pk}/image/").streaming_content)
    assert b"SecretCam" not in body
    assert stored_files.served_name(image.file.name) in bucket_keys(bucket)


def stored_hashes(prefix: str) -> dict[str, str]:
    return {rel: stored_files.file_sha256(f"{prefix}/{rel}")[0] for rel in stored_files.folder_files(prefix)}


def test_releases_are_byte_identical_on_local_disk_and_in_the_bucket(client, local_media):
    project = make_project(slug="rel")
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    populate(project, 60, [make_user() for _ in range(4)], np.random.default_rng(3))
    release = release_build(release_create(project=project, version="1.0.0", n_boot=50))
    folder = release_dir(release)
    local = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in folder.rglob("*") if p.is_file()}
    bucket = make_bucket()
    with override_settings(STORAGES=s3_storages(bucket)):
        rebuilt = release_build(release)  # the same release, built again into the bucket
        assert rebuilt.manifest_sha256 == release.manifest_sha256
        assert stored_hashes(release.files_dir) == local
        assert set(bucket_keys(bucket, "releases/")) == {f"{release.files_dir}/{rel}" for rel in local}
        # Publishing checks the bucket's files against the manifest; downloads come from the bucket.
        release_publish(rebuilt)
        client.force_login(lead)
        response = client.get(f"/projects/rel/releases/1.0.0/files/{'manifest.json'}")
        assert response.status_code == 200
        assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == local["manifest.json"]
        # A file changed in the bucket after the build keeps a release from being published.
        second = release_build(release_create(project=project, version="1.1.0", n_boot=0))
        s3_client().put_object(Bucket=bucket, Key=f"{second.files_dir}/csv/test.csv", Body=b"tampered\n")
        with pytest.raises(ReleaseError, match="csv/test.csv: size or sha256 differs"):
            release_publish(second)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny EmpathicInsight-Face model in the real on-disk format (annotation/scoring/tiny.py)."""
    from annotation.scoring.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-s3"), kind="siglip2-vision", neutral_means=True)


def test_scoring_reads_images_from_the_bucket(bucket, local_media, tiny_model_dir):
    project = make_project(slug="scored")
    for i in range(3):
        image_import_one(project=project, name=f"{i}.jpg", data=jpeg_with_exif(10 + i), meta=None)
    out = io.StringIO()
    call_command("score_images", "--project", "scored", "--model", str(tiny_model_dir), stdout=out,
                 stderr=io.StringIO())
    assert "scored 3 of 3 images" in out.getvalue()
    assert ModelScore.objects.filter(project=project).count() == 3
    assert local_files(local_media) == []


def test_media_migrate_copies_verifies_and_is_idempotent(local_media):
    project = make_project(slug="mig")
    images = [image_import_one(project=project, name=f"{i}.jpg", data=jpeg_with_exif(20 + i), meta=None)
              for i in range(3)]
    populate(project, 20, [make_user() for _ in range(3)], np.random.default_rng(4))
    release_build(release_create(project=project, version="1.0.0", n_boot=0))
    on_disk = local_files(local_media)
    assert len(on_disk) > 6
    bucket = make_bucket()
    with override_settings(STORAGES=s3_storages(bucket)):
        out = io.StringIO()
        call_command("media_migrate", "--to", "s3", stdout=out, stderr=io.StringIO())
        assert f"copied {len(on_disk)}, skipped 0" in out.getvalue()
        assert bucket_keys(bucket) == on_disk
        for name in on_disk:
            assert stored_files.file_sha256(name)[0] == hashlib.sha256((local_media / name).read_bytes()).hexdigest()
        out = io.StringIO()
        call_command("media_migrate", "--to", "s3", stdout=out, stderr=io.StringIO())
        assert f"copied 0, skipped {len(on_disk)}" in out.getvalue()
        # A differing copy in the bucket is replaced; an unreadable source file is reported, the rest go on.
        s3_client().put_object(Bucket=bucket, Key=images[0].file.name, Body=b"wrong")
        broken = local_media / images[1].file.name
        kept = broken.read_bytes()
        broken.unlink()
        broken.symlink_to(local_media / "nowhere")  # listed, but cannot be read
        err, out = io.StringIO(), io.StringIO()
        with pytest.raises(CommandError, match="1 file"):
            call_command("media_migrate", "--to", "s3", stdout=out, stderr=err)
        broken.unlink()
        broken.write_bytes(kept)
        assert f"copied 1, skipped {len(on_disk) - 2}" in out.getvalue()
        assert images[1].file.name in err.getvalue()
        assert s3_client().get_object(Bucket=bucket, Key=images[0].file.name)["Body"].read() == \
            (local_media / images[0].file.name).read_bytes()
        # And back: an empty local folder filled from the bucket.
        for path in list(local_media.rglob("*")):
            if path.is_file():
                path.unlink()
        out = io.StringIO()
        call_command("media_migrate", "--to", "local", stdout=out, stderr=io.StringIO())
        assert f"copied {len(on_disk)}, skipped 0 (already there), could not copy 0" in out.getvalue()
        assert local_files(local_media) == on_disk


def test_the_gpu_queue_task_scores_images_from_the_bucket(celery_worker_real, bucket, local_media, tiny_model_dir,
                                                          settings):
    from annotation.scoring.tasks import score_images_task

    project = make_project(slug="gpu-s3")
    for i in range(3):
        image_import_one(project=project, name=f"{i}.jpg", data=jpeg_with_exif(30 + i), meta=None)
    settings.EMORATE_SCORING_MODEL_DIR = str(tiny_model_dir)
    result = score_images_task.apply_async((project.pk,), queue="gpu").get(timeout=120)
    assert result["stored"] == 3 and result["failed"] == 0
    assert ModelScore.objects.filter(project=project).count() == 3
    assert local_files(local_media) == []


@pytest.mark.django_db(transaction=True)
def test_import_images_in_parallel_into_the_bucket(bucket, local_media, tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    for i in range(12):
        (folder / f"face-{i:02d}.jpg").write_bytes(jpeg_with_exif(40 + i))
    (folder / "same-as-00.jpg").write_bytes(jpeg_with_exif(40))  # a duplicate racing its twin
    (folder / "broken.jpg").write_bytes(b"not an image")
    make_project(slug="par")
    out, err = io.StringIO(), io.StringIO()
    call_command("import_images", str(folder), "--project", "par", "--workers", "6", stdout=out, stderr=err)
    assert "imported 12, duplicate 1, rejected 1" in out.getvalue()
    assert "rejected broken.jpg" in err.getvalue()
    from annotation.models import Image

    images = list(Image.objects.filter(project__slug="par"))
    keys = set(bucket_keys(bucket))
    assert len(images) == 12 and all(im.file.name in keys and stored_files.served_name(im.file.name) in keys
                                     for im in images)
    assert len([k for k in keys if k.startswith("images/")]) == 12  # the loser of the race left nothing behind
    assert local_files(local_media) == []


def test_an_import_is_two_uploads_and_nothing_else(bucket):
    """One PutObject for the original and one for the served copy: no existence checks, no reads
    (the import holds the content lock, so the names are its own)."""
    storage = stored_files.media_storage()
    calls: list[str] = []
    storage.connection.meta.client.meta.events.register(
        "before-call.s3", lambda model, **kw: calls.append(model.name))
    project = make_project(slug="twoputs")
    image = image_import_one(project=project, name="c.jpg", data=jpeg_with_exif(5), meta=None)
    assert calls == ["PutObject", "PutObject"]
    assert (image.width, image.height) == (48, 40)
    assert bucket_keys(bucket) == sorted([image.file.name, stored_files.served_name(image.file.name)])


def test_media_served_makes_missing_copies_and_prunes_outdated_ones(bucket):
    project = make_project(slug="refresh")
    images = [image_import_one(project=project, name=f"{i}.jpg", data=jpeg_with_exif(60 + i), meta=None)
              for i in range(3)]
    stored_files.served_copy_delete(images[0].file.name)
    outdated = f"served/{images[1].file.name}"  # where the older drop-list rules kept their copies
    s3_client().put_object(Bucket=bucket, Key=outdated, Body=b"an old copy with SecretCam in it")
    out = io.StringIO()
    call_command("media_served", "--prune", stdout=out, stderr=io.StringIO())
    assert "made 1, already there 2, could not make 0, outdated copies deleted 1" in out.getvalue()
    keys = bucket_keys(bucket)
    assert outdated not in keys and all(stored_files.served_name(im.file.name) in keys for im in images)
    copy = s3_client().get_object(Bucket=bucket, Key=stored_files.served_name(images[0].file.name))["Body"].read()
    assert b"SecretCam" not in copy
    out = io.StringIO()
    call_command("media_served", stdout=out, stderr=io.StringIO())  # idempotent
    assert "made 0, already there 3" in out.getvalue()
