"""Every file the platform keeps goes through Django's storage API: the local disk in the demo,
S3-compatible object storage in a deployment (EMORATE_STORAGE, docs/decisions/0007-object-storage.md).
Nothing outside the filesystem backend builds a path from MEDIA_ROOT.

- Originals: `images/<project>/<aa>/<sha256>.<ext>` (Image.file), as uploaded.
- Served copies: `served/v2/<original name>`, the original with everything but the allow-listed
  parts removed (annotation.imagefiles.strip_metadata), made once (at import, or on first request
  for images imported before) and served to raters and leads, and shipped in releases, from then
  on; never re-stripped per request. The `v2` is the stripping rules' version: copies made by the
  older drop-list (`served/images/...`) are never served again, and `media_served --prune` deletes
  them.
- Release folders: `releases/<project>/<version>/...`, written from a local staging folder once the
  build is complete (the database row, not the files, is the commit point of a build).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, default_storage

from annotation.imagefiles import strip_metadata

CONTENT_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}
_CHUNK = 1 << 20


def media_storage() -> Storage:
    return default_storage


def store_exact(name: str, data: bytes) -> None:
    """Store bytes under exactly `name`, in one request on S3, replacing what was there.

    Only for names the caller owns: content-addressed names written under the content lock of
    image_import (an object already there is an identical leftover of an interrupted import).
    """
    storage = media_storage()
    put_exact = getattr(storage, "put_exact", None)
    if put_exact is not None:
        put_exact(name, data)
    elif isinstance(storage, FileSystemStorage):
        _write_local(storage, name, data)
    else:
        _put(name, ContentFile(data), storage)


def _write_local(storage: FileSystemStorage, name: str, data: bytes) -> None:
    """store_exact on the local folder: written beside the target and renamed over it, so a reader
    never sees a half-written file; a few system calls instead of the storage API's existence
    checks, delete and chunked save."""
    tmp = f"{storage.path(name)}.{os.getpid()}-{threading.get_ident()}.part"
    try:
        _make_parent(storage, name)
        local_write(tmp, data, storage.file_permissions_mode)
        os.replace(tmp, storage.path(name))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _make_parent(storage: FileSystemStorage, name: str) -> None:
    """The folder of a stored name, made as the storage makes folders."""
    folder = os.path.dirname(storage.path(name))  # refuses names outside the media folder
    if not os.path.isdir(folder):
        if storage.directory_permissions_mode is not None:
            old_umask = os.umask(0o777 & ~storage.directory_permissions_mode)
            try:
                os.makedirs(folder, storage.directory_permissions_mode, exist_ok=True)
            finally:
                os.umask(old_umask)
        else:
            os.makedirs(folder, exist_ok=True)


def local_write(path: str, data: bytes, file_mode: int | None) -> None:
    """Write a new local file (no Django: import_images' worker processes stage files with it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    if file_mode is not None:
        os.chmod(path, file_mode)


# --- staged files (import_images on the local folder) ------------------------------------------------
#
# Worker processes write an import's files into a staging folder inside the media folder (the same
# file system), and the importing process moves each into place by a rename once it has decided to
# keep it: the bytes never travel between processes. The folder is outside the top-level folders
# (TOP_FOLDERS), so nothing else ever sees it, and removed when the import ends.

def local_staging() -> tuple[Path, int | None] | None:
    """A fresh staging folder in the local media folder, and the mode its files get; None when the
    media storage is not local."""
    storage = media_storage()
    if not isinstance(storage, FileSystemStorage):
        return None
    root = Path(storage.path(".staging"))
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="import-", dir=root)), storage.file_permissions_mode


def staged_store(name: str, staged: str) -> None:
    """Move a staged file into place under exactly `name` (replacing what was there), as store_exact."""
    storage = media_storage()
    assert isinstance(storage, FileSystemStorage)
    _make_parent(storage, name)
    os.replace(staged, storage.path(name))


def _put(name: str, content: File[bytes], storage: Storage | None = None) -> None:
    """Store `content` under exactly `name`, replacing what was there (the filesystem backend would
    otherwise pick another name)."""
    storage = storage or media_storage()
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, content)
    if saved != name:  # a concurrent writer of the same name: content-addressed, so the same bytes
        storage.delete(saved)


# --- served copies ------------------------------------------------------------------------------

SERVED_PREFIX = "served/v2"


def served_name(original: str) -> str:
    return f"{SERVED_PREFIX}/{original}"


def served_copy_store(original: str, stripped: bytes | None = None) -> str:
    """Store the stripped copy of a stored original: `stripped` when the caller made it (import,
    under the content lock), else made here from the stored original. Idempotent: originals are
    named by their content hash, so an existing copy is the right one."""
    name = served_name(original)
    if stripped is not None:
        store_exact(name, stripped)
        return name
    storage = media_storage()
    if not storage.exists(name):
        with storage.open(original, "rb") as fh:
            _put(name, ContentFile(strip_metadata(bytes(fh.read()))))
    return name


def served_copies_outdated(storage: Storage | None = None) -> list[str]:
    """Served copies made by older stripping rules (anything under served/ but outside SERVED_PREFIX)."""
    return [f"served/{rel}" for rel in folder_files("served", storage)
            if not f"served/{rel}".startswith(SERVED_PREFIX + "/")]


def served_copy_open(original: str) -> IO[bytes]:
    """The served copy of a stored original, opened for reading (made first if missing);
    FileNotFoundError when the original itself is missing."""
    storage = media_storage()
    name = served_name(original)
    if not storage.exists(name):
        if not storage.exists(original):
            raise FileNotFoundError(original)
        served_copy_store(original)
    return storage.open(name, "rb")


def served_copy_delete(original: str) -> None:
    media_storage().delete(served_name(original))


# --- folders (release files) ---------------------------------------------------------------------

def folder_files(prefix: str, storage: Storage | None = None) -> list[str]:
    """Every file under `prefix`, as paths relative to it, sorted; [] when there is none."""
    storage = storage or media_storage()
    out: list[str] = []

    def walk(rel: str) -> None:
        try:
            dirs, files = storage.listdir(f"{prefix}/{rel}" if rel else prefix)
        except (FileNotFoundError, NotADirectoryError):
            return
        for f in files:
            out.append(f"{rel}/{f}" if rel else f)
        for d in dirs:
            walk(f"{rel}/{d}" if rel else d)

    walk("")
    return sorted(out)


def folder_delete(prefix: str) -> None:
    storage = media_storage()
    for rel in folder_files(prefix):
        storage.delete(f"{prefix}/{rel}")


def scratch_folder(prefix: str) -> Path:
    """A fresh local folder for files to be stored with folder_store (the caller removes it): in
    the local media folder's staging area when the media storage is local (the same file system,
    so folder_store links every file instead of copying it; outside TOP_FOLDERS, so nothing else
    sees it), else in the system's temporary folder."""
    storage = media_storage()
    if isinstance(storage, FileSystemStorage):
        root = Path(storage.path(".staging"))
        root.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    return Path(tempfile.mkdtemp(prefix=prefix))


def folder_store(local: Path, prefix: str) -> None:
    """Replace whatever is under `prefix` by the files of the local folder `local`, each read at
    most once (#21: a release folder of a million images is several GiB).

    On the local media folder each file is hard-linked into place (the same file system: no byte
    is copied; the stored file shares the local one's data, so the caller must not write into
    `local`'s files afterwards, only delete them) or else copied by the kernel, in both cases
    under a temporary name renamed over the target. On S3 the files are uploaded in parallel
    threads, large ones in parts in parallel (boto3's transfer manager, FOLDER_TRANSFER)."""
    folder_delete(prefix)
    files = [(f"{prefix}/{path.relative_to(local).as_posix()}", path)
             for path in sorted(p for p in local.rglob("*") if p.is_file())]
    storage = media_storage()
    if isinstance(storage, FileSystemStorage):
        for name, path in files:
            _link_local(storage, name, path)
    elif _s3_uploads(storage) is not None:
        _s3_upload_all(storage, files)
    else:
        for name, path in files:
            with path.open("rb") as fh:
                _put(name, File(fh), storage)


def _link_local(storage: FileSystemStorage, name: str, path: Path, *, link: bool = True) -> None:
    """The local file `path` stored under exactly `name` on the local media folder: a hard link
    (``link`` and the same file system) or a kernel copy, made beside the target and renamed over
    it, with the storage's file mode."""
    tmp = f"{storage.path(name)}.{os.getpid()}-{threading.get_ident()}.part"
    try:
        _make_parent(storage, name)
        linked = False
        if link:
            try:
                os.link(path, tmp)
                linked = True
            except OSError:  # another file system (EXDEV), or links not allowed there
                pass
        if not linked:
            shutil.copyfile(path, tmp)
        if storage.file_permissions_mode is not None:
            os.chmod(tmp, storage.file_permissions_mode)
        os.replace(tmp, storage.path(name))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# Uploads of a folder to S3: up to 8 requests at once (files, and 16 MiB parts of files over 64 MiB;
# at most about 8 parts in memory).
FOLDER_TRANSFER = {"max_concurrency": 8, "multipart_threshold": 64 << 20, "multipart_chunksize": 16 << 20}


def _s3_uploads(storage: Storage) -> Any:
    """The boto3 client of a django-storages S3 storage that uploads files as they are (no gzip),
    else None."""
    client = getattr(getattr(getattr(storage, "connection", None), "meta", None), "client", None)
    if client is None or getattr(storage, "gzip", False) or not hasattr(storage, "_get_write_parameters"):
        return None
    return client


def _s3_upload_all(storage: Any, files: list[tuple[str, Path]]) -> None:
    """Upload the local files under exactly their names (replacing objects of those names), with
    the parameters (content type, ACL, object parameters) django-storages' save gives them."""
    from boto3.s3.transfer import TransferConfig, create_transfer_manager
    from storages.utils import clean_name

    client = _s3_uploads(storage)
    config = TransferConfig(use_threads=True, **FOLDER_TRANSFER)
    with create_transfer_manager(client, config) as manager:
        futures = []
        for name, path in files:
            key = storage._normalize_name(clean_name(name))
            futures.append(manager.upload(str(path), storage.bucket_name, key,
                                          extra_args=storage._get_write_parameters(key)))
        for future in futures:
            future.result()  # the first failure is raised (the manager cancels the rest on exit)


def folder_fetch(prefix: str, local: Path) -> list[str]:
    """Copy every file under `prefix` into the local folder `local`; returns their relative paths."""
    storage = media_storage()
    names = folder_files(prefix)
    for rel in names:
        target = local / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with storage.open(f"{prefix}/{rel}", "rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
    return names


def file_open(name: str) -> IO[bytes]:
    return media_storage().open(name, "rb")


def file_exists(name: str) -> bool:
    return bool(media_storage().exists(name))


def file_sha256(name: str, storage: Storage | None = None) -> tuple[str, int]:
    """sha256 and size of a stored file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with (storage or media_storage()).open(name, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def folder_verify(prefix: str) -> list[str]:
    """Check a stored release folder against its manifest.json (the same rules as
    exporters.verify_manifest for a local folder): every listed file present with its size and
    sha256, nothing unlisted."""
    storage = media_storage()
    if not storage.exists(f"{prefix}/manifest.json"):
        return ["manifest.json is missing"]
    with storage.open(f"{prefix}/manifest.json", "rb") as fh:
        listed = json.loads(fh.read())["files"]
    problems = []
    present = set(folder_files(prefix))
    for entry in listed:
        if entry["path"] not in present:
            problems.append(f"{entry['path']}: missing")
            continue
        sha, size = file_sha256(f"{prefix}/{entry['path']}")
        if sha != entry["sha256"] or size != entry["size"]:
            problems.append(f"{entry['path']}: size or sha256 differs from the manifest")
    extra = sorted(present - {e["path"] for e in listed} - {"manifest.json"})
    problems.extend(f"{path}: not in the manifest" for path in extra)
    return problems


TOP_FOLDERS = ("images", "served", "releases")


def iter_stored(prefixes: tuple[str, ...] = TOP_FOLDERS, storage: Storage | None = None) -> Iterator[str]:
    """Every stored name under the platform's top-level folders (backups, media_migrate)."""
    for prefix in prefixes:
        for rel in folder_files(prefix, storage):
            yield f"{prefix}/{rel}"
