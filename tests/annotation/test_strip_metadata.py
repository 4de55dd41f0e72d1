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


# --- the allow-list (security review L9): what the old drop-list let through ---------------------

def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def _jpeg(**save) -> bytes:
    buf = io.BytesIO()
    _image().save(buf, format="JPEG", quality=95, **save)
    return buf.getvalue()


def _pixels(data: bytes) -> list:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB").tobytes()


def _with_after_soi(data: bytes, extra: bytes) -> bytes:
    return data[:2] + extra + data[2:]


@pytest.mark.parametrize("name, extra", [
    ("APP3 segment", _segment(0xE3, b"secret app3 prompt")),
    ("APP15 segment", _segment(0xEF, b"secret app15 prompt")),
    ("APP2 that is not an ICC profile (MPF)", _segment(0xE2, b"MPF\x00secret second image")),
    ("APP14 that is not Adobe's", _segment(0xEE, b"Vendor secret")),
    ("EXIF after a fill byte", b"\xff" + _segment(0xE1, b"Exif\x00\x00secret GPS 52.1N")),
    ("comment after two fill bytes", b"\xff\xff" + _segment(0xFE, b"secret comment")),
])
def test_jpeg_keeps_only_allow_listed_segments(name, extra):
    original = _with_after_soi(_jpeg(), extra)
    check_image(original, max_bytes=10**7, max_pixels=10**7)  # a valid file Pillow decodes
    stripped = strip_metadata(original)
    assert b"secret" not in stripped, name
    assert _pixels(stripped) == _pixels(original)
    check_image(stripped, max_bytes=10**7, max_pixels=10**7)


def test_jpeg_data_after_the_end_of_image_is_dropped():
    original = _jpeg() + b"secret trailer: prompt=a sad face" + _jpeg(exif=_exif())  # a second image, too
    stripped = strip_metadata(original)
    assert b"secret" not in stripped and b"SecretCam" not in stripped
    assert stripped.endswith(b"\xff\xd9") and stripped.count(b"\xff\xd8") == 1
    assert _pixels(stripped) == _pixels(original)


def test_jpeg_jfif_thumbnail_dropped_colour_profile_and_orientation_kept():
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = _exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    plain = _jpeg(icc_profile=icc, exif=exif)
    thumb = bytes(3 * 2 * 2)
    jfif = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x02\x02" + thumb  # a 2x2 thumbnail
    # Replace Pillow's own JFIF header by one with a thumbnail.
    assert plain[2:4] == b"\xff\xe0"
    app0_len = int.from_bytes(plain[4:6], "big")
    original = plain[:2] + _segment(0xE0, jfif) + plain[4 + app0_len:]
    stripped = strip_metadata(original)
    with Image.open(io.BytesIO(stripped)) as img:
        assert img.info.get("icc_profile") == icc
        assert dict(img.getexif()) == {0x0112: 6}  # the orientation and nothing else
    assert b"SecretCam" not in stripped and thumb + b"\xff" not in stripped
    assert _pixels(stripped) == _pixels(original)


def test_progressive_jpeg_with_restart_markers_keeps_every_scan():
    original = _with_after_soi(_jpeg(progressive=True), _segment(0xE3, b"secret"))
    stripped = strip_metadata(original)
    assert b"secret" not in stripped and _pixels(stripped) == _pixels(original)
    buf = io.BytesIO()
    _image().save(buf, format="JPEG", quality=90, restart_marker_blocks=1)
    rst = buf.getvalue()
    assert any(bytes([0xFF, m]) in rst for m in range(0xD0, 0xD8))
    assert _pixels(strip_metadata(rst)) == _pixels(rst)


def test_png_keeps_only_allow_listed_chunks_and_nothing_after_iend():
    import zlib

    buf = io.BytesIO()
    _image().save(buf, format="PNG")
    plain = buf.getvalue()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (len(payload).to_bytes(4, "big") + kind + payload
                + zlib.crc32(kind + payload).to_bytes(4, "big"))

    ihdr_end = 8 + 25
    original = (plain[:ihdr_end] + chunk(b"prVt", b"secret private chunk") + chunk(b"pHYs", b"\x00" * 9)
                + plain[ihdr_end:] + b"secret trailer")
    check_image(original, max_bytes=10**7, max_pixels=10**7)
    stripped = strip_metadata(original)
    assert b"secret" not in stripped and b"pHYs" not in stripped and stripped.endswith(plain[-12:])
    assert _pixels(stripped) == _pixels(original)


def test_webp_drops_unknown_chunks_and_trailing_bytes():
    buf = io.BytesIO()
    _image().save(buf, format="WEBP", lossless=True, exif=_exif())
    plain = buf.getvalue()
    extra = b"SCRT" + (14).to_bytes(4, "little") + b"secret chunk!!"
    body = plain[12:] + extra
    original = b"RIFF" + (4 + len(body)).to_bytes(4, "little") + b"WEBP" + body + b"secret trailer"
    stripped = strip_metadata(original)
    assert b"secret" not in stripped and b"SecretCam" not in stripped
    assert _pixels(stripped) == _pixels(original)


def test_a_jpeg_whose_segments_do_not_line_up_is_refused_not_served_raw():
    from annotation.imagefiles import ImageRejected

    broken = _jpeg()[:2] + b"\x00\x00junk" + _jpeg()[2:]
    with pytest.raises(ImageRejected, match="offset 2"):
        strip_metadata(broken)
