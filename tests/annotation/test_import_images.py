import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from annotation.models import Image
from tests.factories import image_bytes, make_project

pytestmark = pytest.mark.django_db


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: the decompression-bomb case (never decoded)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def run_import(path: Path, *extra: str) -> tuple[str, str, Exception | None]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_images", str(path), *extra, stdout=out, stderr=err)
        exc = None
    except CommandError as e:
        exc = e
    return out.getvalue(), err.getvalue(), exc


def test_folder_import_reports_every_bad_file_and_keeps_the_good(tmp_path, settings):
    settings.EMORATE_IMAGE_MAX_BYTES = 200_000
    settings.EMORATE_IMAGE_MAX_PIXELS = 1_000_000
    project = make_project(slug="faces")
    good_jpg, good_png, good_webp = image_bytes("JPEG"), image_bytes("PNG"), image_bytes("WEBP")
    (tmp_path / "a.jpg").write_bytes(good_jpg)
    (tmp_path / "b.png").write_bytes(good_png)
    (tmp_path / "c.webp").write_bytes(good_webp)
    (tmp_path / "a_copy.jpg").write_bytes(good_jpg)  # duplicate content
    (tmp_path / "truncated.jpg").write_bytes(image_bytes("JPEG", size=(300, 300))[:400])
    (tmp_path / "notes.jpg").write_bytes(b"this is a text file with an image extension")
    (tmp_path / "big.jpg").write_bytes(b"\xff\xd8" + b"\x00" * 250_000)  # over the byte limit
    (tmp_path / "bomb.png").write_bytes(png_header_only(20_000, 20_000))  # over Pillow's own hard limit
    (tmp_path / "wide.png").write_bytes(png_header_only(2_000, 1_000))  # over ours only
    (tmp_path / "vector.svg").write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buf, format="GIF")
    (tmp_path / "anim.gif").write_bytes(buf.getvalue())

    out, err, exc = run_import(tmp_path, "--project", "faces")
    assert exc is None
    assert "imported 3, duplicate 1, rejected 7" in out
    assert "duplicate a_copy.jpg: same content as a.jpg" in out
    assert "rejected truncated.jpg: corrupt or truncated image" in err
    assert "rejected notes.jpg: not an image" in err
    assert "rejected big.jpg: file is 250,002 bytes; the limit is 200,000 bytes" in err
    assert "rejected bomb.png: decompression bomb refused: Image size (400000000 pixels) exceeds limit" in err
    assert "rejected wide.png: 2000x1000 = 2,000,000 pixels exceeds the limit of 1,000,000" in err
    assert "rejected vector.svg: SVG/HTML/XML documents are not accepted" in err
    assert "rejected anim.gif: format GIF is not accepted" in err

    images = {im.name: im for im in Image.objects.filter(project=project)}
    assert set(images) == {"a.jpg", "b.png", "c.webp"}
    a = images["a.jpg"]
    assert (a.width, a.height, a.format) == (64, 48, "JPEG")
    assert Path(a.file.path).read_bytes() == good_jpg
    assert a.file.name == f"images/{project.pk}/{a.sha256[:2]}/{a.sha256}.jpg"  # never the uploaded name
    # Nothing of the rejected files was stored anywhere.
    stored = sorted(p.name for p in (Path(settings.MEDIA_ROOT) / "images" / str(project.pk)).rglob("*") if p.is_file())
    assert stored == sorted(Path(im.file.name).name for im in images.values())


def test_reimport_is_all_duplicates_and_exits_non_zero(tmp_path):
    make_project(slug="faces")
    (tmp_path / "a.jpg").write_bytes(image_bytes())
    assert run_import(tmp_path, "--project", "faces")[2] is None
    out, _, exc = run_import(tmp_path, "--project", "faces")
    assert "imported 0, duplicate 1, rejected 0" in out
    assert exc is not None and "nothing was imported" in str(exc)
    assert Image.objects.count() == 1


def test_same_image_may_live_in_two_projects(tmp_path):
    make_project(slug="p1")
    make_project(slug="p2")
    (tmp_path / "a.jpg").write_bytes(image_bytes())
    assert run_import(tmp_path, "--project", "p1")[2] is None
    assert run_import(tmp_path, "--project", "p2")[2] is None
    assert Image.objects.count() == 2


def test_metadata_csv_and_jsonl(tmp_path):
    project = make_project(slug="faces")
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "x.jpg").write_bytes(image_bytes())
    (tmp_path / "imgs" / "y.jpg").write_bytes(image_bytes())
    meta = tmp_path / "meta.csv"
    meta.write_text("file,ethnicity,age,gender,prompt,seed\n"
                    "x.jpg,Japanese,30,woman,a photo of a smiling woman,42\n")
    assert run_import(tmp_path / "imgs", "--project", "faces", "--metadata", str(meta))[2] is None
    x = Image.objects.get(project=project, name="x.jpg")
    assert (x.ethnicity, x.age, x.gender, x.prompt) == ("Japanese", 30, "woman", "a photo of a smiling woman")
    assert x.extra == {"seed": "42"}
    assert Image.objects.get(project=project, name="y.jpg").ethnicity == ""

    manifest = tmp_path / "manifest.jsonl"
    (tmp_path / "z.png").write_bytes(image_bytes("PNG"))
    manifest.write_text(json.dumps({"path": "z.png", "age": 70, "gender": "non-binary person",
                                    "source": "flux", "style": {"light": "soft"}}) + "\n")
    assert run_import(manifest, "--project", "faces")[2] is None
    z = Image.objects.get(project=project, name="z.png")
    assert z.age == 70 and z.source == "flux" and z.extra == {"style": {"light": "soft"}}


def test_bad_metadata_and_unknown_project_are_clear_errors(tmp_path):
    make_project(slug="faces")
    (tmp_path / "a.jpg").write_bytes(image_bytes())
    meta = tmp_path / "meta.csv"
    meta.write_text("file,age\na.jpg,old\n")
    _, _, exc = run_import(tmp_path, "--project", "faces", "--metadata", str(meta))
    assert exc is not None and "meta.csv line 2: age 'old' is not a number" in str(exc)
    assert not Image.objects.exists()
    _, _, exc = run_import(tmp_path, "--project", "nope")
    assert exc is not None and "no project with slug 'nope'" in str(exc)


def test_placeholder_from_ratings_gets_its_file(tmp_path):
    project = make_project(slug="faces")
    Image.objects.create(project=project, name="a.jpg")  # what import_ratings makes
    (tmp_path / "a.jpg").write_bytes(image_bytes())
    assert run_import(tmp_path, "--project", "faces")[2] is None
    image = Image.objects.get(project=project)
    assert image.name == "a.jpg" and image.file and image.sha256


def test_a_rerun_knows_imported_files_by_their_hash_before_decoding(tmp_path):
    """Known contents are found by one hash lookup per chunk (no decode); new ones still import."""
    from annotation.services.image_import import images_import

    project = make_project(slug="rerun")
    first = tmp_path / "first"
    first.mkdir()
    datas = [image_bytes() for _ in range(3)]
    for i, data in enumerate(datas):
        (first / f"{i}.jpg").write_bytes(data)
    assert len(images_import(project=project, path=first).imported) == 3
    again = tmp_path / "again"
    again.mkdir()
    for i, data in enumerate(datas):
        (again / f"renamed-{i}.jpg").write_bytes(data)
    (again / "new.jpg").write_bytes(image_bytes())
    summary = images_import(project=project, path=again)
    assert summary.imported == ["new.jpg"]
    assert summary.duplicates == [(f"renamed-{i}.jpg", f"same content as {i}.jpg") for i in range(3)]
    assert Image.objects.filter(project=project).count() == 4


def test_one_image_with_a_name_the_database_cannot_hold_is_rejected_before_it_is_stored(tmp_path, settings):
    """The one-image path (uploads through the API and the lead's page) refuses a name over 500
    characters or with a NUL character with a reason, before storing any file."""
    from annotation.imagefiles import ImageRejected
    from annotation.services.image_import import image_import_one

    settings.MEDIA_ROOT = str(tmp_path / "media")
    project = make_project(slug="names")
    with pytest.raises(ImageRejected, match="the name is 501 characters long; the limit is 500"):
        image_import_one(project=project, name="n" * 497 + ".jpg", data=image_bytes(), meta=None)
    with pytest.raises(ImageRejected, match="the name contains a NUL character"):
        image_import_one(project=project, name="a\x00.jpg", data=image_bytes(), meta=None)
    assert not Image.objects.filter(project=project).exists()
    assert not any((tmp_path / "media").rglob("*.jpg"))
    image = image_import_one(project=project, name="n" * 496 + ".jpg", data=image_bytes(), meta=None)
    assert len(image.name) == 500
