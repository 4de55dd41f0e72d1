"""Backups with a tested restore (`manage.py backup --out DIR`, `manage.py restore DIR`).

A backup folder holds:
  database.dump   pg_dump's custom format of the whole database: one consistent snapshot
  media/...       the stored files themselves (with --with-media)
  backup.json     what the backup is: format, time, code version, applied migrations, the dump's
                  sha256 and size, and every stored file (images, served copies, releases) with its
                  sha256 and size, written last, so a backup without it is incomplete

The restore checks everything before it changes anything: backup.json readable, the dump's size and
sha256, every included media file's size and sha256; a tampered or truncated part is named and
nothing is restored. The database is restored in one transaction (pg_restore --single-transaction)
into an empty database (a non-empty one only with force, which replaces its contents); media files
are put back first (content-addressed, so an extra copy is harmless). With media on S3 and no
--with-media, the bucket's own versioning or replication is the media backup: the restore then
checks that every listed file is present.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import connection

from annotation.services import stored_files

FORMAT = 1
DUMP = "database.dump"
INDEX = "backup.json"
_CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup or restore refused or failed; the message names the part."""


@dataclass
class BackupSummary:
    folder: Path
    files: int
    media_included: bool
    dump_bytes: int

    @property
    def text(self) -> str:
        media = "with the files" if self.media_included else "files listed, not copied"
        return f"backup in {self.folder}: database {self.dump_bytes:,} bytes, {self.files} stored files ({media})"


def _pg_env() -> tuple[list[str], dict[str, str]]:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise BackupError("backup and restore need PostgreSQL (DATABASE_URL); the SQLite demo is not backed up")
    args = ["-h", str(db.get("HOST") or "127.0.0.1"), "-p", str(db.get("PORT") or 5432), "-U", str(db["USER"])]
    env = {**os.environ, "PGPASSWORD": str(db.get("PASSWORD") or ""), "PGCONNECT_TIMEOUT": "10"}
    return args, env


def _pg_tool(name: str) -> str:
    """pg_dump/pg_restore, the newest installed (it must not be older than the server)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: float(p.parts[-3]))
    if candidates:
        return str(candidates[-1])
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client)")
    return found


def _sha256_file(path: Path) -> tuple[str, int]:
    import hashlib

    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def backup_create(out: Path, *, with_media: bool = False, progress: Callable[[int, int], None] | None = None,
                  ) -> BackupSummary:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"--out {out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    args, env = _pg_env()
    db_name = str(settings.DATABASES["default"]["NAME"])
    done = subprocess.run([_pg_tool("pg_dump"), *args, "-Fc", "-f", str(out / DUMP), db_name], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, name")
        migrations: dict[str, str] = {}
        for app, name in cursor.fetchall():
            migrations[app] = name
    # Files after the dump: stored files are written before the rows that name them, so every
    # file the dump refers to is already there.
    names = list(stored_files.iter_stored())
    files = []
    storage = stored_files.media_storage()
    for i, name in enumerate(names, start=1):
        if with_media:
            target = out / "media" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with storage.open(name, "rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            sha, size = _sha256_file(target)
        else:
            sha, size = stored_files.file_sha256(name)
        files.append({"name": name, "sha256": sha, "size": size})
        if progress is not None:
            progress(i, len(names))
    dump_sha, dump_size = _sha256_file(out / DUMP)
    try:
        version = metadata.version("emorate")
    except metadata.PackageNotFoundError:
        version = "unpackaged"
    index = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
             "emorate_version": version, "storage": settings.EMORATE_STORAGE, "migrations": migrations,
             "database": {"file": DUMP, "sha256": dump_sha, "size": dump_size},
             "media_included": with_media, "files": files}
    (out / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    return BackupSummary(folder=out, files=len(files), media_included=with_media, dump_bytes=dump_size)


def backup_check(folder: Path) -> dict[str, Any]:
    """backup.json, after checking the dump and every included file against it; BackupError names
    the first bad part. Changes nothing."""
    folder = Path(folder)
    index_path = folder / INDEX
    if not index_path.is_file():
        raise BackupError(f"{index_path}: missing (an incomplete backup, or not a backup folder)")
    try:
        index = json.loads(index_path.read_text())
        database, files = index["database"], index["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"{index_path}: unreadable ({exc})") from None
    if index.get("format") != FORMAT:
        raise BackupError(f"{index_path}: format {index.get('format')!r}, this version reads {FORMAT}")
    dump = folder / database["file"]
    if not dump.is_file():
        raise BackupError(f"{dump}: missing")
    sha, size = _sha256_file(dump)
    if size != database["size"]:
        raise BackupError(f"{dump}: {size:,} bytes where the backup recorded {database['size']:,} (truncated?)")
    if sha != database["sha256"]:
        raise BackupError(f"{dump}: sha256 differs from the one recorded (damaged or tampered with)")
    if index.get("media_included"):
        for entry in files:
            path = folder / "media" / entry["name"]
            if not path.is_file():
                raise BackupError(f"media/{entry['name']}: missing")
            if _sha256_file(path) != (entry["sha256"], entry["size"]):
                raise BackupError(f"media/{entry['name']}: size or sha256 differs from the one recorded")
    return dict(index)


def database_is_empty() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        return int(cursor.fetchone()[0]) == 0


def backup_restore(folder: Path, *, force: bool = False) -> str:
    folder = Path(folder)
    index = backup_check(folder)
    if not database_is_empty() and not force:
        raise BackupError("the database is not empty: restore into an empty database, or pass --force to replace "
                          "its contents")
    storage = stored_files.media_storage()
    restored_files = 0
    if index["media_included"]:
        for entry in index["files"]:
            name = entry["name"]
            if storage.exists(name) and stored_files.file_sha256(name) == (entry["sha256"], entry["size"]):
                continue
            if storage.exists(name):
                storage.delete(name)
            with (folder / "media" / name).open("rb") as fh:
                storage.save(name, File(fh))
            restored_files += 1
    args, env = _pg_env()
    connection.close()  # pg_restore needs the database to itself when it drops objects
    command = [_pg_tool("pg_restore"), *args, "-d", str(settings.DATABASES["default"]["NAME"]), "--single-transaction",
               "--no-owner", "--no-privileges", "--exit-on-error"]
    if force:
        command += ["--clean", "--if-exists"]
    done = subprocess.run([*command, str(folder / index["database"]["file"])], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed, nothing was restored to the database: {done.stderr.strip()[:2000]}")
    missing = [e["name"] for e in index["files"] if not storage.exists(e["name"])]
    note = f"; {len(missing)} listed file(s) missing from the media storage, e.g. {missing[0]}" if missing else ""
    return (f"restored the database of {index['created_at']} and {restored_files} file(s) "
            f"({len(index['files'])} listed){note}")
