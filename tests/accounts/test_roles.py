import pytest
from django.db import IntegrityError

from accounts.models import Role, User
from accounts.services import AccountError, user_create
from annotation import selectors
from tests.factories import PASSWORD, add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def test_email_is_the_login_and_unique_case_insensitively():
    user_create(email="Ada@Example.org", role=Role.RATER, password=PASSWORD)
    assert User.objects.get().email == "ada@example.org"
    with pytest.raises(AccountError, match="already exists"):
        user_create(email="ADA@example.org", role=Role.LEAD, password=PASSWORD)


def test_weak_password_and_unknown_role_are_refused_by_name():
    with pytest.raises(AccountError, match="password refused"):
        user_create(email="a@example.org", role=Role.RATER, password="123")
    with pytest.raises(AccountError, match="unknown role 'boss'"):
        user_create(email="b@example.org", role="boss", password=PASSWORD)
    assert not User.objects.exists()


def test_role_is_checked_by_the_database():
    user = make_user()
    with pytest.raises(IntegrityError):
        User.objects.filter(pk=user.pk).update(role="boss")


def test_admin_role_makes_staff():
    admin = user_create(email="root@example.org", role=Role.ADMIN, password=PASSWORD)
    assert admin.is_staff and admin.is_superuser


def test_membership_rules():
    p1, p2 = make_project(), make_project()
    rater, other_rater = make_user(Role.RATER), make_user(Role.RATER)
    lead, other_lead = make_user(Role.LEAD), make_user(Role.LEAD)
    admin = make_user(Role.ADMIN)
    add_member(p1, rater, lead)
    add_member(p2, other_rater, other_lead)

    assert selectors.can_rate(rater, p1) and not selectors.can_rate(rater, p2)
    assert not selectors.can_manage(rater, p1)
    assert selectors.can_manage(lead, p1) and not selectors.can_manage(lead, p2)
    assert not selectors.can_rate(lead, p1)  # leads manage, raters rate
    assert selectors.can_manage(admin, p1) and selectors.can_manage(admin, p2)
    assert list(selectors.project_list_for(rater)) == [p1]
    assert list(selectors.project_list_for(other_lead)) == [p2]
    assert set(selectors.project_list_for(admin)) == {p1, p2}

    rater.is_active = False
    rater.save()
    assert not selectors.can_rate(rater, p1)


def test_project_pages_respect_membership(client):
    p1, p2 = make_project(), make_project()
    rater = make_user(Role.RATER)
    add_member(p1, rater)
    client.force_login(rater)
    assert client.get(f"/projects/{p1.slug}/").status_code == 200
    assert client.get(f"/projects/{p2.slug}/").status_code == 403
    home = client.get("/").content.decode()
    assert p1.name in home and p2.name not in home
    client.logout()
    assert client.get(f"/projects/{p1.slug}/").status_code == 302  # to the login page
