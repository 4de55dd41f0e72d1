import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Role, User
from annotation.models import Project
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def call(*args: str, stdin: str | None = None, monkeypatch=None) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_project_intensity_and_binary():
    assert "created project hq (intensity, scale 0..7, target 4" in call("create_project", "hq", "--mode", "intensity")
    call("create_project", "voice", "--mode", "intensity", "--scale-max", "2", "--target", "3", "--name", "Voice")
    call("create_project", "yn", "--mode", "binary")
    hq, voice, yn = (Project.objects.get(slug=s) for s in ("hq", "voice", "yn"))
    assert hq.scale_anchors == {0: "not present", 1: "weakly present", 7: "very strong"}
    assert (voice.name, voice.scale_max, voice.target_ratings) == ("Voice", 2, 3)
    assert voice.scale_anchors == {0: "not present", 1: "weakly present", 2: "very strong"}
    assert yn.scale_max == 1 and yn.scale_anchors == {0: "No", 1: "Yes"}


@pytest.mark.parametrize("args, message", [
    (("hq", "--mode", "intensity"), "a project with slug 'hq' already exists"),
    (("Bad Slug", "--mode", "intensity"), "slug 'Bad Slug' may contain only"),
    (("x", "--mode", "binary", "--scale-max", "7"), "its scale is 0..1"),
    (("x", "--mode", "intensity", "--scale-max", "0"), "scale max 0 is out of range"),
    (("x", "--mode", "intensity", "--target", "0"), "target 0 must be at least 1"),
])
def test_create_project_errors(args, message):
    call("create_project", "hq", "--mode", "intensity")
    with pytest.raises(CommandError, match=message):
        call("create_project", *args)
    assert Project.objects.count() == 1


def test_create_user_with_password_from_stdin(monkeypatch):
    call("create_project", "hq", "--mode", "intensity")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    out = call("create_user", "Rater@Example.org", "--role", "rater", "--project", "hq", "--password-stdin")
    assert out.strip() == "created rater rater@example.org in hq"
    user = User.objects.get(email="rater@example.org")
    assert user.check_password(PASSWORD) and user.role == Role.RATER
    assert list(user.projects.values_list("slug", flat=True)) == ["hq"]


def test_create_user_errors_store_nothing(monkeypatch):
    call("create_project", "hq", "--mode", "intensity")
    call("create_user", "lead@example.org", "--role", "lead")
    with pytest.raises(CommandError, match="a user with email lead@example.org already exists"):
        call("create_user", "LEAD@example.org", "--role", "rater")
    with pytest.raises(CommandError, match="no project with slug 'nope'"):
        call("create_user", "x@example.org", "--role", "rater", "--project", "nope")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    with pytest.raises(CommandError, match="password refused"):
        call("create_user", "y@example.org", "--role", "rater", "--project", "hq", "--password-stdin")
    assert set(User.objects.values_list("email", flat=True)) == {"lead@example.org"}
    admin_out = call("create_user", "root@example.org", "--role", "admin")
    assert "created admin root@example.org" in admin_out
    assert User.objects.get(email="root@example.org").is_superuser


def test_seed_demo_small(settings):
    from annotation import demo_faces, taxonomy
    from annotation.models import Rating

    assert demo_faces.EMOTIONS == taxonomy.EMOTIONS  # simulated ratings use the taxonomy order
    out = call("seed_demo", "--images", "12")
    assert "12 drawn face images" in out and "SIMULATED" in out
    project = Project.objects.get(slug="emonet-demo")
    assert project.images.exclude(file="").count() == 12
    assert len({(im.ethnicity, im.gender) for im in project.images.all()}) > 3
    ratings = Rating.objects.filter(project=project)
    assert ratings.exists() and set(ratings.values_list("source", flat=True)) == {"simulated"}
    assert not ratings.filter(rater__is_active=True).exists()  # simulated raters cannot log in
    logins = [line.split() for line in out.splitlines() if "@demo.emorate.org" in line]
    assert [row[0] for row in logins] == ["lead", "rater", "rater", "rater"]
    for _role, email, password in logins:
        assert User.objects.get(email=email).check_password(password)
    again = call("seed_demo", "--images", "12")
    assert "demo already present (12 images)" in again
    assert Project.objects.get(slug="emonet-demo").images.count() == 12
