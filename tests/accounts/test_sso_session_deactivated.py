"""A session begun with single sign-on ends when the account is deactivated (found by the #19
review: mozilla-django-oidc's backend returned inactive users, so image files stayed open)."""

from __future__ import annotations

import pytest
from django.test import override_settings

from annotation.services.image_import import image_import_one
from tests.factories import add_member, image_bytes, make_project, make_user

pytestmark = pytest.mark.django_db
BACKENDS = ["accounts.backends.EmailBackend", "accounts.oidc.EmorateOIDCBackend"]


@override_settings(AUTHENTICATION_BACKENDS=BACKENDS)
def test_a_deactivated_sso_rater_is_signed_out_everywhere(client):
    project = make_project(slug="sso-off")
    rater = make_user()
    add_member(project, rater)
    image = image_import_one(project=project, name="a.jpg", data=image_bytes(), meta=None)
    client.force_login(rater, backend="accounts.oidc.EmorateOIDCBackend")
    assert client.get(f"/media/{image.file.name}").status_code == 200
    assert client.get("/").status_code == 200
    rater.is_active = False
    rater.save(update_fields=["is_active"])
    media = client.get(f"/media/{image.file.name}")
    assert media.status_code == 302 and media["Location"].startswith("/accounts/login/")
    assert client.get("/")["Location"].startswith("/accounts/login/")
