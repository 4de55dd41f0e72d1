"""Backup, drop everything, restore: the ratings, revisions, audit events and releases come back
identical; a damaged backup is refused, naming the bad part, and nothing is half-restored."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg2
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from accounts.models import Role
from annotation.models import Rating
from annotation.rating.submit import rating_revise
from annotation.services.image_import import image_import_one
from annotation.services.releases import release_build, release_create, release_dir, release_publish
from tests.factories import add_member, image_bytes, make_project, make_user
from tests.support.seed import populate

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def server_url(db: str) -> str:
    return os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{db}"


@pytest.fixture
def empty_database() -> Iterator[str]:
    name = f"restore_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(server_url("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    yield name
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def tables(db_url: str) -> dict[str, list[str]]:
    """Every row of every table, as text, in a stable order."""
    with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        names = [r[0] for r in cur.fetchall()]
        out = {}
        for name in names:
            cur.execute(f'SELECT t::text FROM "{name}" t ORDER BY 1')
            out[name] = [r[0] for r in cur.fetchall()]
    return out


def folder_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def manage(db: str, media: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": server_url(db), "MEDIA_ROOT": str(media),
           "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture
def populated(tmp_path: Path) -> Iterator[dict]:
    media = tmp_path / "media"
    media.mkdir()
    with override_settings(MEDIA_ROOT=str(media)):
        project = make_project(slug="bk")
        lead, raters = make_user(Role.LEAD), [make_user() for _ in range(4)]
        add_member(project, lead, *raters)
        populate(project, 40, raters, np.random.default_rng(5))
        for i in range(2):  # images with files (populate's have none)
            image_import_one(project=project, name=f"file-{i}.jpg", data=image_bytes(color=(40 * i, 90, 200)),
                             meta=None)
        rating = Rating.objects.filter(project=project).order_by("pk").first()
        Rating.objects.filter(pk=rating.pk).update(source="page")  # raters revise what they gave on the page
        rating.refresh_from_db()
        rating_revise(rating=rating, rater=rating.rater, values=[1] * 40)  # a revision and its audit event
        published = release_publish(release_build(release_create(project=project, version="1.0.0", n_boot=20)),
                                    actor=lead)
        built = release_build(release_create(project=project, version="1.1.0", n_boot=20))
        yield {"media": media, "published": published, "built": built,
               "built_hashes": folder_hashes(release_dir(built)),
               "published_hashes": folder_hashes(release_dir(published))}


def test_backup_then_restore_into_an_empty_database_gives_everything_back(populated, tmp_path, empty_database):
    backup = tmp_path / "backup"
    out = io.StringIO()
    with override_settings(MEDIA_ROOT=str(populated["media"])):
        call_command("backup", "--out", str(backup), "--with-media", stdout=out)
    assert "stored files (with the files)" in out.getvalue()
    index = json.loads((backup / "backup.json").read_text())
    assert index["database"]["size"] == (backup / "database.dump").stat().st_size
    assert {f["name"].split("/")[0] for f in index["files"]} == {"images", "served", "releases"}
    before = tables(server_url(connection.settings_dict["NAME"]))
    assert before["annotation_rating"] and before["annotation_ratingrevision"] and before["annotation_auditevent"]

    # Drop everything: a new, empty database and an empty media folder.
    media = tmp_path / "restored-media"
    media.mkdir()
    done = manage(empty_database, media, "restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert "restored the database" in done.stdout
    assert tables(server_url(empty_database)) == before  # every row of every table, identical

    published = populated["published"]
    assert folder_hashes(media / published.files_dir) == populated["published_hashes"]
    # The unpublished release rebuilt from the restored data gives byte-identical files.
    rebuild = manage(empty_database, media, "shell", "-c",
                     "from annotation.models import Release; from annotation.services.releases import release_build;"
                     "release_build(Release.objects.get(version='1.1.0'))")
    assert rebuild.returncode == 0, rebuild.stderr
    assert folder_hashes(media / populated["built"].files_dir) == populated["built_hashes"]

    # Restoring again into the now non-empty database is refused without --force.
    again = manage(empty_database, media, "restore", str(backup))
    assert again.returncode != 0 and "the database is not empty" in again.stderr
    forced = manage(empty_database, media, "restore", str(backup), "--force")
    assert forced.returncode == 0, forced.stderr
    assert tables(server_url(empty_database)) == before


@pytest.mark.parametrize("damage", ["flip-dump", "truncate-dump", "tamper-media", "no-index", "bad-index"])
def test_a_damaged_backup_is_refused_naming_the_part_and_nothing_is_restored(populated, tmp_path, empty_database,
                                                                               damage):
    backup = tmp_path / "backup"
    with override_settings(MEDIA_ROOT=str(populated["media"])):
        call_command("backup", "--out", str(backup), "--with-media", stdout=io.StringIO())
    dump = backup / "database.dump"
    if damage == "flip-dump":
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
        expected = "database.dump: sha256 differs"
    elif damage == "truncate-dump":
        dump.write_bytes(dump.read_bytes()[:-100])
        expected = "database.dump: "
    elif damage == "tamper-media":
        first = next(p for p in sorted((backup / "media" / "images").rglob("*")) if p.is_file())
        first.write_bytes(first.read_bytes() + b"x")
        expected = f"media/{first.relative_to(backup / 'media').as_posix()}: size or sha256 differs"
    elif damage == "no-index":
        (backup / "backup.json").unlink()
        expected = "backup.json: missing"
    else:
        (backup / "backup.json").write_text('{"format": 1, "database": ')
        expected = "backup.json: unreadable"
    media = tmp_path / "restored-media"
    media.mkdir()
    done = manage(empty_database, media, "restore", str(backup))
    assert done.returncode != 0 and expected in done.stderr, done.stderr
    assert tables(server_url(empty_database)) == {}  # nothing half-restored
    assert not any(media.iterdir())


def test_backup_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "x").write_text("x")
    with pytest.raises(CommandError, match="exists and is not empty"):
        call_command("backup", "--out", str(tmp_path / "old"), stdout=io.StringIO())
    shutil.rmtree(tmp_path / "old")
