"""Finding 1: the role is the one source of privilege; every access change is audited with its actor."""

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from accounts.audit import acting_as
from accounts.models import AccessChange, Role, User
from tests.factories import PASSWORD, add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def test_demoted_admin_loses_every_privilege(client):
    """Review P5: an admin demoted to rater in the Django admin keeps nothing."""
    root = make_user(Role.ADMIN, email="root@example.org")
    bob = make_user(Role.ADMIN, email="bob@example.org")
    other = make_project(slug="q")
    add_member(other, make_user(Role.LEAD))
    client.force_login(root)
    form = client.get(f"/admin/accounts/user/{bob.pk}/change/")
    assert form.status_code == 200
    data = {"email": bob.email, "display_name": "", "role": Role.RATER, "is_active": "on", "email_digest": "on",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"}
    resp = client.post(f"/admin/accounts/user/{bob.pk}/change/", data)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    bob.refresh_from_db()
    assert (bob.role, bob.is_staff, bob.is_superuser, bob.is_admin) == (Role.RATER, False, False, False)
    client.force_login(bob)
    assert client.get("/projects/q/dashboard/raters/").status_code == 403
    assert client.get("/admin/").status_code == 302  # to the login page
    changes = {(c.field, c.old, c.new, c.actor_id) for c in AccessChange.objects.filter(user=bob)}
    assert changes == {("role", "admin", "rater", root.pk), ("is_staff", "True", "False", root.pk),
                       ("is_superuser", "True", "False", root.pk)}
    assert AccessChange.objects.filter(user=bob).first().via == f"/admin/accounts/user/{bob.pk}/change/"


def test_flags_cannot_disagree_with_the_role():
    rater = make_user(Role.RATER)
    rater.is_superuser = True
    rater.save()  # save() puts the flags back where the role says
    rater.refresh_from_db()
    assert not rater.is_superuser and not rater.is_staff
    with pytest.raises(IntegrityError), transaction.atomic():  # and the database refuses a bypass
        User.objects.filter(pk=rater.pk).update(is_superuser=True)
    promoted = make_user(Role.LEAD)
    promoted.role = Role.ADMIN
    promoted.save(update_fields=["role"])
    promoted.refresh_from_db()
    assert promoted.is_staff and promoted.is_superuser


def test_changes_outside_a_request_name_the_actor_given():
    admin = make_user(Role.ADMIN)
    lead = make_user(Role.LEAD)
    with acting_as(admin):
        lead.is_active = False
        lead.save()
        lead.groups.add(Group.objects.create(name="auditors"))
    lead.role = Role.RATER
    lead.save()  # no actor: a command or a shell
    rows = list(AccessChange.objects.filter(user=lead).order_by("id").values_list("field", "new", "actor_id"))
    assert rows == [("is_active", "False", admin.pk), ("groups", "auditors", admin.pk), ("role", "rater", None)]


def test_signing_in_is_not_an_access_change(client):
    user = make_user(Role.RATER, email="r@example.org")
    client.post("/accounts/login/", {"email": "r@example.org", "password": PASSWORD})
    assert "_auth_user_id" in client.session and User.objects.get(pk=user.pk).last_login is not None
    assert not AccessChange.objects.filter(user=user).exists()
