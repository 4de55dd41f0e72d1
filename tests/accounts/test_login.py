import pytest
from django.test import override_settings

from accounts.models import Invitation, Role, User
from accounts.services import AccountError, invitation_accept, invitation_create
from tests.factories import PASSWORD, make_project, make_user

pytestmark = pytest.mark.django_db


def test_login_page_has_labelled_email_and_password(client):
    html = client.get("/accounts/login/").content.decode()
    assert '<label for="id_email">Email</label>' in html
    assert '<label for="id_password">Password</label>' in html


def test_login_with_email(client):
    make_user(Role.RATER, email="rater@example.org")
    resp = client.post("/accounts/login/", {"email": "rater@example.org", "password": PASSWORD})
    assert resp.status_code == 302 and resp["Location"] == "/"
    assert client.get("/").status_code == 200


@override_settings(LOGIN_MAX_FAILURES=3)
def test_login_is_throttled_after_repeated_failures(client):
    make_user(Role.RATER, email="rater@example.org")
    for _ in range(3):
        resp = client.post("/accounts/login/", {"email": "rater@example.org", "password": "wrong-password"})
        assert "Email or password is not correct" in resp.content.decode()
    # Even the right password is refused while the lockout lasts.
    resp = client.post("/accounts/login/", {"email": "rater@example.org", "password": PASSWORD})
    assert resp.status_code == 200
    assert "Too many failed sign-in attempts" in resp.content.decode()
    assert "_auth_user_id" not in client.session


def test_imported_raters_cannot_log_in(client):
    User.objects.create_user(email="annotator_7@imported.invalid", password=None, is_active=False, imported=True)
    resp = client.post("/accounts/login/", {"email": "annotator_7@imported.invalid", "password": PASSWORD})
    assert resp.status_code == 200 and "_auth_user_id" not in client.session


def test_invitation_creates_account_with_membership(client):
    project = make_project(slug="hq")
    lead = make_user(Role.LEAD)
    inv = invitation_create(email="new@example.org", role=Role.RATER, projects=["hq"], created_by=lead)
    page = client.get(f"/accounts/invitation/{inv.token}/")
    assert page.status_code == 200 and "new@example.org" in page.content.decode()
    resp = client.post(f"/accounts/invitation/{inv.token}/",
                       {"new_password1": PASSWORD, "new_password2": PASSWORD, "display_name": "New Rater"})
    assert resp.status_code == 302
    user = User.objects.get(email="new@example.org")
    assert user.role == Role.RATER and list(user.projects.all()) == [project]
    assert Invitation.objects.get().accepted_at is not None
    with pytest.raises(AccountError, match="expired or was already used"):
        invitation_accept(token=inv.token, password=PASSWORD)
    assert client.get(f"/accounts/invitation/{inv.token}/").status_code == 404
