"""The parallel import (worker processes, batched writes) against the one-at-a-time import: the same
report, rows and stored files; nothing left behind by a batch whose INSERT fails."""

import contextlib
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import DataError, connection

from annotation.imagefiles import strip_metadata
from annotation.models import Image, Project
from annotation.services import image_import
from annotation.services.image_import import images_import
from tests.factories import image_bytes, make_project

ROW_FIELDS = ("name", "sha256", "format", "width", "height", "ethnicity", "age", "gender", "prompt", "source", "extra")


def stored_tree(media: Path, project: Project) -> dict[str, bytes]:
    """Every stored file of the project (originals and served copies), by name."""
    out = {}
    for top in (media / "images" / str(project.pk), media / "served" / "v2" / "images" / str(project.pk)):
        for path in top.rglob("*"):
            if path.is_file():
                out[path.relative_to(media).as_posix()] = path.read_bytes()
    return out


def rows(project: Project) -> dict[str, tuple[object, ...]]:
    return {im.name: tuple(getattr(im, f) for f in ROW_FIELDS)
            for im in Image.objects.filter(project=project).exclude(file="")}


def assert_files_match_rows(media: Path, project: Project) -> None:
    """The project's stored files are exactly its images' originals and served copies."""
    expected = {}
    for im in Image.objects.filter(project=project).exclude(file=""):
        original = (media / im.file.name).read_bytes()
        expected[im.file.name] = original
        expected[f"served/v2/{im.file.name}"] = strip_metadata(original)
    assert stored_tree(media, project) == expected


@contextlib.contextmanager
def insert_refused(name: str) -> Iterator[None]:
    """A PostgreSQL trigger that refuses to store an image row named ``name`` (a database error
    in the middle of a batch's INSERT, as a full disk or a constraint would give), dropped after."""
    with connection.cursor() as cur:
        cur.execute("""CREATE FUNCTION test_refuse_image() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'image row refused by the test trigger' USING ERRCODE = '22023'; END $$""")
        cur.execute(f"""CREATE TRIGGER test_refuse_image BEFORE INSERT OR UPDATE ON annotation_image
            FOR EACH ROW WHEN (NEW.name = '{name}') EXECUTE FUNCTION test_refuse_image()""")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute("DROP TRIGGER test_refuse_image ON annotation_image")
            cur.execute("DROP FUNCTION test_refuse_image()")


def mixed_folder(root: Path, already: bytes) -> None:
    """Good JPEG/PNG/WebP files, corrupt ones, the same content twice, a content the projects
    already hold, a name the projects already hold, a placeholder's name, nested folders."""
    same = image_bytes("JPEG", size=(40, 30))
    truncated = image_bytes("JPEG", size=(200, 160))[:300]
    (root / "sub" / "deeper").mkdir(parents=True)
    files = {
        "a.jpg": image_bytes("JPEG"),
        "b.png": image_bytes("PNG"),
        "c.webp": image_bytes("WEBP"),
        "d_same.jpg": same,
        "sub/e_same_again.jpg": same,  # same content later in the folder
        "sub/deeper/f.jpg": image_bytes("JPEG", size=(80, 60)),
        "g_truncated.jpg": truncated,
        "h_truncated_twice.jpg": truncated,  # a rejected content seen twice: rejected twice
        "i_text.jpg": b"not an image at all",
        "j_empty.png": b"",
        "k_known.jpg": already,  # content the project already holds (as old.jpg)
        "clash.jpg": image_bytes("JPEG"),  # a name the project already holds with a file
        "placeholder.jpg": image_bytes("JPEG", size=(32, 32)),  # fills the placeholder
    }
    for i in range(9):  # more than one batch (BATCH is set to 4 below)
        files[f"m{i}.jpg"] = image_bytes("JPEG", size=(24 + i, 24))
    for name, data in files.items():
        (root / name).write_bytes(data)


def seeded_project(slug: str, already: bytes) -> Project:
    project = make_project(slug=slug)
    image_import.image_import_one(project=project, name="old.jpg", data=already, meta=None)
    image_import.image_import_one(project=project, name="clash.jpg", data=image_bytes("JPEG", size=(50, 50), color=(1, 2, 3)),
                                  meta=None)
    Image.objects.create(project=project, name="placeholder.jpg", extra={"from": "ratings"})  # as import_ratings
    return project


@pytest.mark.django_db(transaction=True)
def test_processes_give_the_one_at_a_time_report_rows_and_files(tmp_path, settings, monkeypatch):
    monkeypatch.setattr(image_import, "BATCH", 4)
    monkeypatch.setattr(image_import, "HASH_CHUNK", 5)  # the known contents hashed by several threads
    settings.MEDIA_ROOT = str(tmp_path / "media")
    media = Path(settings.MEDIA_ROOT)
    already = image_bytes("JPEG", size=(36, 36))
    folder = tmp_path / "faces"
    folder.mkdir()
    mixed_folder(folder, already)
    meta = tmp_path / "meta.csv"
    with meta.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["file", "ethnicity", "age", "gender", "prompt", "seed"])
        w.writerow(["a.jpg", "Japanese", "30", "woman", "a smiling woman", "42"])
        w.writerow(["sub/deeper/f.jpg", "Nigerian", "61", "man", "", "7"])
        w.writerow(["placeholder.jpg", "", "", "", "", "9"])

    one, parallel = seeded_project("one", already), seeded_project("parallel", already)
    seen: list[tuple[int, int]] = []
    ref = images_import(project=one, path=folder, metadata=meta, workers=1)
    ours = images_import(project=parallel, path=folder, metadata=meta, workers=2,
                         progress=lambda done, total: seen.append((done, total)))

    assert ours.imported == ref.imported
    assert ours.duplicates == ref.duplicates
    assert ours.rejected == ref.rejected
    assert ref.counts == "imported 15, duplicate 3, rejected 4"
    assert ref.duplicates == [("clash.jpg", "an image named clash.jpg already exists"),
                              ("k_known.jpg", "same content as old.jpg"),
                              ("sub/e_same_again.jpg", "same content as d_same.jpg")]
    assert [name for name, _ in ref.rejected] == ["g_truncated.jpg", "h_truncated_twice.jpg", "i_text.jpg",
                                                  "j_empty.png"]
    assert ref.rejected[1][1].startswith("corrupt or truncated image") and ref.rejected[3][1] == "empty file"
    # The ids are of the images named, in source order.
    assert [Image.objects.get(pk=pk).name for pk in ours.image_ids] == ours.imported

    assert rows(parallel) == rows(one)
    placeholder = Image.objects.get(project=parallel, name="placeholder.jpg")
    assert placeholder.extra == {"from": "ratings", "seed": "9"} and placeholder.file
    assert Image.objects.get(project=parallel, name="a.jpg").ethnicity == "Japanese"
    for project in (one, parallel):
        assert_files_match_rows(media, project)
    # Stored names differ only by the project's id; the bytes are the same.
    strip_id = {p.pk: f"/{p.pk}/" for p in (one, parallel)}
    assert ({k.replace(strip_id[one.pk], "/P/"): v for k, v in stored_tree(media, one).items()}
            == {k.replace(strip_id[parallel.pk], "/P/"): v for k, v in stored_tree(media, parallel).items()})
    assert not (media / ".staging").exists()  # the workers' staging folder is gone
    assert seen[-1] == (22, 22) and [d for d, _ in seen] == sorted(d for d, _ in seen)

    again = images_import(project=parallel, path=folder, metadata=meta, workers=2)  # a re-run
    assert again.imported == [] and len(again.duplicates) == 18 and again.rejected == ref.rejected


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_insert_fails_leaves_no_file_and_ends_as_one_at_a_time(tmp_path, settings):
    """A row PostgreSQL refuses makes the batch's INSERT fail. The files stored for the batch are
    removed, its images are imported one at a time, and the import stops where the one-at-a-time
    import stops, with the same rows and no other file."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    media = Path(settings.MEDIA_ROOT)
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "m_refused.jpg", "z.jpg"):  # the refused one between b.jpg and z.jpg
        (folder / name).write_bytes(image_bytes())

    outcomes = {}
    for workers in (1, 2):
        project = make_project(slug=f"w{workers}")
        with insert_refused("m_refused.jpg"), pytest.raises(DataError, match="refused by the test trigger"):
            images_import(project=project, path=folder, workers=workers)
        outcomes[workers] = sorted(Image.objects.filter(project=project).values_list("name", flat=True))
        assert_files_match_rows(media, project)  # nothing stored for the refused name nor for z.jpg
    assert outcomes[2] == outcomes[1] == ["a.jpg", "b.jpg"]


@pytest.mark.django_db(transaction=True)
def test_a_name_longer_than_the_database_holds_is_rejected_by_name(tmp_path, settings):
    """A name over 500 characters (reachable through nested folders) is rejected with a reason
    that says so, one at a time and with processes alike; the other files are imported."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    folder = tmp_path / "faces"
    long_dir = folder / ("x" * 200) / ("y" * 200)
    long_dir.mkdir(parents=True)
    for name in ("a.jpg", "z.jpg"):
        (folder / name).write_bytes(image_bytes())
    (long_dir / ("n" * 120 + ".jpg")).write_bytes(image_bytes("PNG"))
    long_name = f"{'x' * 200}/{'y' * 200}/{'n' * 120}.jpg"
    for workers in (1, 2):
        project = make_project(slug=f"long{workers}")
        summary = images_import(project=project, path=folder, workers=workers)
        assert summary.imported == ["a.jpg", "z.jpg"]
        assert summary.rejected == [(long_name, "the name is 526 characters long; the limit is 500")]
        assert_files_match_rows(Path(settings.MEDIA_ROOT), project)


def test_a_manifest_value_longer_than_its_column_is_refused_with_its_line(tmp_path):
    from annotation.manifests import ManifestError, read_metadata

    path = tmp_path / "meta.csv"
    path.write_text("file,ethnicity,gender\na.jpg,Japanese,female\nb.jpg," + "e" * 101 + ",male\n")
    with pytest.raises(ManifestError, match=r"meta.csv line 3: ethnicity is 101 characters long; the limit is 100"):
        read_metadata(path)
    path.write_text("file,gender\n" + "n" * 501 + ",male\n")
    with pytest.raises(ManifestError, match="line 2: the image name is 501 characters long; the limit is 500"):
        read_metadata(path)
    jsonl = tmp_path / "meta.jsonl"
    jsonl.write_text('{"file": "a.jpg", "source": "gen\\u0000v2"}\n')
    with pytest.raises(ManifestError, match="line 1: source contains a NUL character"):
        read_metadata(jsonl)
    jsonl.write_text('{"file": "a.jpg", "seed": {"note": "x\\u0000"}}\n')
    with pytest.raises(ManifestError, match="line 1: column 'seed' contains a NUL character"):
        read_metadata(jsonl)


@pytest.mark.django_db(transaction=True)
def test_a_staging_folder_left_by_a_killed_import_is_removed_by_the_next_one(tmp_path, settings):
    """An import killed outright (SIGKILL) cannot remove its staging folder; the next import removes
    every folder whose lock no living process holds, and leaves a running import's folder alone."""
    import fcntl
    import os

    settings.MEDIA_ROOT = str(tmp_path / "media")
    root = Path(settings.MEDIA_ROOT) / ".staging"
    dead, alive, fresh = root / "import-dead", root / "import-alive", root / "import-fresh"
    for folder in (dead, alive, fresh):
        folder.mkdir(parents=True)
        (folder / "7.original").write_bytes(b"half written")
    for folder in (dead, alive):
        (folder / ".lock").touch()
    held = os.open(alive / ".lock", os.O_RDWR)  # another open file: a lock of its own, as another process's
    fcntl.flock(held, fcntl.LOCK_EX)
    old = os.stat(fresh).st_mtime - 7200
    unlocked_old = root / "import-unlocked-old"  # no lock file and untouched for two hours
    unlocked_old.mkdir()
    os.utime(unlocked_old, (old, old))
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(image_bytes())
    try:
        summary = images_import(project=make_project(slug="stale"), path=folder, workers=2)
    finally:
        os.close(held)
    assert len(summary.imported) == 3
    assert not dead.exists() and not unlocked_old.exists()
    assert alive.exists() and fresh.exists()  # held by a running import; just made by one
    assert sorted(p.name for p in root.iterdir()) == ["import-alive", "import-fresh"]


@pytest.mark.django_db(transaction=True)
def test_the_command_imports_with_processes_by_default(tmp_path, settings):
    from django.core.management import call_command

    settings.MEDIA_ROOT = str(tmp_path / "media")
    project = make_project(slug="cmd")
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.jpg").write_bytes(image_bytes())
    (folder / "bad.jpg").write_bytes(image_bytes("JPEG", size=(120, 90))[:-60])
    out, err = io.StringIO(), io.StringIO()
    call_command("import_images", str(folder), "--project", "cmd", stdout=out, stderr=err)
    assert "imported 5, duplicate 0, rejected 1" in out.getvalue()
    assert "rejected bad.jpg: corrupt or truncated image" in err.getvalue()
    assert Image.objects.filter(project=project).count() == 5
    assert_files_match_rows(Path(settings.MEDIA_ROOT), project)


@pytest.mark.django_db(transaction=True)
def test_into_a_bucket_the_same_outcome_and_no_object_left_by_a_failed_batch(tmp_path, settings, monkeypatch):
    """The same with the media in an S3 bucket (uploads from several threads per batch)."""
    from django.test import override_settings

    from tests.support.s3 import bucket_keys, make_bucket, s3_storages

    monkeypatch.setattr(image_import, "BATCH", 3)
    settings.MEDIA_ROOT = str(tmp_path / "media-unused")
    folder = tmp_path / "faces"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg", "c_same.jpg", "d.png", "z.jpg"):
        (folder / name).write_bytes(image_bytes("PNG" if name.endswith(".png") else "JPEG"))
    (folder / "c_same.jpg").write_bytes((folder / "c.jpg").read_bytes())
    (folder / "e_bad.jpg").write_bytes(b"\xff\xd8 not really")
    (folder / "m_refused.jpg").write_bytes(image_bytes())  # sorted after e_bad.jpg, before z.jpg
    bucket = make_bucket()
    with override_settings(STORAGES=s3_storages(bucket)):
        project = make_project(slug="s3")
        with insert_refused("m_refused.jpg"), pytest.raises(DataError):
            images_import(project=project, path=folder, workers=2)
        names = sorted(Image.objects.filter(project=project).values_list("name", flat=True))
        assert names == ["a.jpg", "b.jpg", "c.jpg", "d.png"]
        files = sorted(Image.objects.filter(project=project).values_list("file", flat=True))
        assert bucket_keys(bucket) == sorted(files + [f"served/v2/{f}" for f in files])
        summary = images_import(project=project, path=folder, workers=2)  # the trigger dropped
    assert summary.imported == ["m_refused.jpg", "z.jpg"]
    assert summary.duplicates == [(n, f"same content as {n}") for n in ("a.jpg", "b.jpg", "c.jpg")] + [
        ("c_same.jpg", "same content as c.jpg"), ("d.png", "same content as d.png")]
    assert [name for name, _ in summary.rejected] == ["e_bad.jpg"]
    assert not any((tmp_path / "media-unused").rglob("*"))


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_dies_fails_the_import_and_leaves_nothing_half_stored(tmp_path, settings, monkeypatch):
    """A worker process killed mid-import (as by a crash in a decoder) fails the import, instead of
    leaving it waiting; the batches committed before keep their files and nothing else is left."""
    import multiprocessing
    import os
    import signal
    from concurrent.futures.process import BrokenProcessPool

    monkeypatch.setattr(image_import, "BATCH", 2)
    settings.MEDIA_ROOT = str(tmp_path / "media")
    media = Path(settings.MEDIA_ROOT)
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(24):
        (folder / f"{i:02d}.jpg").write_bytes(image_bytes())
    project = make_project(slug="killed")
    killed: list[int] = []

    def kill_a_worker(done: int, total: int) -> None:
        if not killed:
            worker = multiprocessing.active_children()[0]
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)

    with pytest.raises(BrokenProcessPool):
        images_import(project=project, path=folder, workers=2, progress=kill_a_worker)
    assert killed
    assert 2 <= Image.objects.filter(project=project).count() < 24
    assert_files_match_rows(media, project)
    assert not (media / ".staging").exists()
