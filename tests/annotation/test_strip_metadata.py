"""Served copies of images carry no EXIF/XMP/text metadata, and the same pixels."""

import io

import pytest
from PIL import Image, PngImagePlugin

from annotation.imagefiles import check_image, strip_metadata


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0131] = "generator v1 seed=42"  # Software
    return exif


def _image() -> Image.Image:
    img = Image.new("RGB", (40, 30))
    for x in range(40):
        for y in range(30):
            img.putpixel((x, y), (x * 6, y * 8, (x + y) * 3))
    return img


def encode(fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("prompt", "a secret prompt")
        _image().save(buf, format="PNG", pnginfo=info, exif=_exif())
    elif fmt == "JPEG":
        _image().save(buf, format="JPEG", exif=_exif(), comment=b"secret comment", quality=95)
    else:
        _image().save(buf, format="WEBP", exif=_exif(), lossless=True)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_metadata_is_removed_and_pixels_kept(fmt):
    original = encode(fmt)
    assert b"SecretCam" in original
    stripped = strip_metadata(original)
    assert b"SecretCam" not in stripped and b"secret" not in stripped
    check_image(stripped, max_bytes=10**7, max_pixels=10**7)  # still a valid, fully decodable file
    with Image.open(io.BytesIO(original)) as a, Image.open(io.BytesIO(stripped)) as b:
        assert not b.getexif() and a.size == b.size and a.format == b.format
        assert list(a.convert("RGB").getdata()) == list(b.convert("RGB").getdata())


def test_files_without_metadata_are_unchanged():
    buf = io.BytesIO()
    _image().save(buf, format="PNG")
    assert strip_metadata(buf.getvalue()) == buf.getvalue()


@pytest.mark.django_db
def test_served_copies_are_stripped_and_for_members_only(client):
    from accounts.models import Role
    from annotation.services.image_import import image_import_one
    from tests.factories import add_member, make_project, make_user

    project = make_project(slug="exif")
    image = image_import_one(project=project, name="a.jpg", data=encode("JPEG"), meta=None)
    rater, stranger = make_user(Role.RATER), make_user(Role.RATER)
    add_member(project, rater)
    client.force_login(rater)
    response = client.get(f"/media/{image.file.name}")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    served = b"".join(response.streaming_content)  # streamed from the media storage
    assert served.startswith(b"\xff\xd8")
    assert b"SecretCam" not in served and b"SecretCam" in image.file.open("rb").read()
    client.force_login(stranger)
    assert client.get(f"/media/{image.file.name}").status_code == 403
    assert client.get("/media/../config/settings/base.py").status_code == 404
