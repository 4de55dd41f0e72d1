"""Release folders stored as a whole (stored_files.folder_store, #21): on the local media folder by
hard links (or kernel copies), on S3 (SeaweedFS, started by `make test`) by parallel uploads, large
files in parts; the same names, bytes and object parameters as the storage's own save."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import override_settings

from annotation.services import stored_files
from tests.support.s3 import bucket_keys, make_bucket, s3_client, s3_storages


def _folder(root: Path, big: int = 0) -> dict[str, bytes]:
    """A small release-like folder (nested files, an empty file, optionally one of `big` bytes)."""
    rng = np.random.default_rng(7)
    files = {"manifest.json": b'{"files": []}\n', "README.md": "# card é\n".encode(), "csv/train.csv": b"a,b\n1,2\n",
             "data/train-00000-of-00001.parquet": rng.bytes(300_000), "raw/empty.parquet": b""}
    if big:
        files["jsonl/train.jsonl"] = rng.bytes(big)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _stored(prefix: str) -> dict[str, bytes]:
    out = {}
    for rel in stored_files.folder_files(prefix):
        with stored_files.file_open(f"{prefix}/{rel}") as fh:
            out[rel] = fh.read()
    return out


@pytest.fixture
def media(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "media"
    root.mkdir()
    with override_settings(MEDIA_ROOT=str(root), FILE_UPLOAD_PERMISSIONS=0o640):
        yield root


def test_local_folder_store_links_each_file_and_replaces_what_was_there(media: Path, tmp_path: Path):
    stored_files.store_exact("releases/p/1.0/old/gone.txt", b"from an earlier build")
    stored_files.store_exact("releases/p/1.0/csv/train.csv", b"stale")
    stored_files.store_exact("releases/p/1.1/keep.txt", b"another release")
    local = tmp_path / "staging"
    files = _folder(local)
    stored_files.folder_store(local, "releases/p/1.0")
    assert _stored("releases/p/1.0") == files  # nothing left of the earlier build
    assert _stored("releases/p/1.1") == {"keep.txt": b"another release"}
    for rel, data in files.items():
        target = media / "releases/p/1.0" / rel
        assert os.path.samefile(target, local / rel)  # a hard link: not one byte copied
        assert (local / rel).read_bytes() == data  # the staging folder is left as it was
        assert target.stat().st_mode & 0o777 == 0o640  # the storage's file mode
    assert not [p for p in media.rglob("*.part")]


def test_scratch_folders_are_on_the_media_file_system_and_out_of_sight(media: Path):
    scratch = stored_files.scratch_folder("release-")
    assert scratch.is_dir() and scratch.parent == media / ".staging"
    _folder(scratch)
    stored_files.folder_store(scratch, "releases/p/2.0")
    assert os.path.samefile(media / "releases/p/2.0/README.md", scratch / "README.md")
    assert not [n for n in stored_files.iter_stored() if ".staging" in n]


def test_local_store_copies_when_it_cannot_link(media: Path, tmp_path: Path):
    local = tmp_path / "staging"
    files = _folder(local)
    for rel in files:
        stored_files._link_local(stored_files.media_storage(), f"releases/q/{rel}", local / rel, link=False)
    assert _stored("releases/q") == files
    for rel in files:
        assert not os.path.samefile(media / "releases/q" / rel, local / rel)
        assert (media / "releases/q" / rel).stat().st_mode & 0o777 == 0o640


@pytest.mark.django_db
def test_s3_folder_store_uploads_in_parallel_parts_with_the_storage_parameters(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch):
    # S3's smallest part is 5 MiB: a 12 MiB file goes up in three parts at these settings
    monkeypatch.setattr(stored_files, "FOLDER_TRANSFER",
                        {"max_concurrency": 4, "multipart_threshold": 5 << 20, "multipart_chunksize": 5 << 20})
    bucket = make_bucket()
    local = tmp_path / "staging"
    files = _folder(local, big=12 << 20)
    with override_settings(STORAGES=s3_storages(bucket)):
        stored_files.store_exact("releases/p/1.0/old/gone.txt", b"from an earlier build")
        stored_files._put("saved/manifest.json", ContentFile(files["manifest.json"]))  # the storage's own save
        stored_files.folder_store(local, "releases/p/1.0")
        assert bucket_keys(bucket, "releases/") == sorted(f"releases/p/1.0/{rel}" for rel in files)
        assert {rel: hashlib.sha256(d).hexdigest() for rel, d in _stored("releases/p/1.0").items()} == \
            {rel: hashlib.sha256(d).hexdigest() for rel, d in files.items()}
        assert stored_files.folder_verify("releases/p/1.0") == ["README.md: not in the manifest",
                                                                "csv/train.csv: not in the manifest",
                                                                "data/train-00000-of-00001.parquet: not in the manifest",
                                                                "jsonl/train.jsonl: not in the manifest",
                                                                "raw/empty.parquet: not in the manifest"]
    client = s3_client()
    big = client.head_object(Bucket=bucket, Key="releases/p/1.0/jsonl/train.jsonl")
    assert big["ETag"].strip('"').endswith("-3")  # uploaded in three parts
    saved = client.head_object(Bucket=bucket, Key="saved/manifest.json")
    small = client.head_object(Bucket=bucket, Key="releases/p/1.0/manifest.json")
    assert small["ContentType"] == saved["ContentType"] == "application/json"
    assert "-" not in small["ETag"]  # one request
