"""Finding 8: API tokens hashed, shown once, expiring, scoped; existing tokens migrated."""

import hashlib
import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.api_tokens import TokenError, api_token_create
from accounts.models import ApiToken, Role
from tests.factories import add_member, make_project, make_user

pytestmark = pytest.mark.django_db


def test_only_a_digest_is_stored_and_the_key_works():
    lead = make_user(Role.LEAD)
    token, key = api_token_create(user=lead)
    assert key.startswith("emr_") and len(key) > 40
    row = ApiToken.objects.get()
    assert key not in {row.digest, row.prefix} and row.digest == hashlib.sha256(key.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        assert key not in repr(cursor.fetchall())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/projects/").status_code == 200
    assert ApiToken.objects.get().last_used_at is not None


def test_expired_and_revoked_tokens_are_refused():
    lead = make_user(Role.LEAD)
    token, key = api_token_create(user=lead, days=1)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    resp = client.get("/api/v1/projects/")
    assert resp.status_code == 401 and "expired" in resp.json()["detail"]


def test_token_rules_are_refused_by_name():
    lead = make_user(Role.LEAD)
    with pytest.raises(TokenError, match="unknown scope 'admin'"):
        api_token_create(user=lead, scope="admin")
    with pytest.raises(TokenError, match="days must be between 1 and 365"):
        api_token_create(user=lead, days=1000)
    with pytest.raises(TokenError, match="for active leads and admins"):
        api_token_create(user=make_user(Role.RATER))


def test_read_scope_reads_and_cannot_write():
    project = make_project(slug="hq")
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=lead, scope='read')[1]}")
    assert client.get("/api/v1/projects/hq/releases/").status_code == 200
    resp = client.post("/api/v1/projects/hq/releases/", {"version": "1.0.0"}, format="json")
    assert resp.status_code == 403 and "scope is read only" in resp.json()["detail"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=lead, scope='read_write')[1]}")
    assert client.post("/api/v1/projects/hq/releases/", {"version": "1.0.0"}, format="json").status_code == 202


def test_token_page_shows_the_key_once(client):
    lead = make_user(Role.LEAD)
    client.force_login(lead)
    page = client.post("/accounts/tokens/", {"name": "export script", "scope": "read", "days": 30})
    assert page.status_code == 200
    body = page.content.decode()
    row = ApiToken.objects.get(user=lead)
    key = body.split('<code id="new-token">')[1].split("</code>")[0]
    assert hashlib.sha256(key.encode()).hexdigest() == row.digest and row.scope == "read"
    assert (row.expires_at - timezone.now()).days in (29, 30)
    again = client.get("/accounts/tokens/").content.decode()
    assert key not in again and row.prefix in again
    bad = client.post("/accounts/tokens/", {"scope": "read", "days": 9999})
    assert bad.status_code == 400 and "less than or equal to 365" in bad.content.decode()
    client.post(f"/accounts/tokens/{row.pk}/revoke/")
    assert ApiToken.objects.get(pk=row.pk).revoked_at is not None


@override_settings(LOGIN_MAX_FAILURES=2)
def test_token_creation_and_bad_tokens_are_throttled(client):
    lead = make_user(Role.LEAD)
    client.force_login(lead)
    for _ in range(2):
        assert client.post("/accounts/tokens/", {"scope": "read", "days": 3}).status_code == 200
    assert client.post("/accounts/tokens/", {"scope": "read", "days": 3}).status_code == 429
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Token emr_guess")
    with override_settings(EMORATE_THROTTLE_CLIENT_MAX=3):
        codes = [api.get("/api/v1/projects/").status_code for _ in range(5)]
    assert codes == [401, 401, 401, 429, 429]


def test_existing_plain_text_tokens_are_migrated_and_erased():
    lead = make_user(Role.LEAD)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, created timestamptz, "
                       "user_id bigint)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", ["a" * 40, lead.pk])
    from django.apps import apps
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

    module = importlib.import_module("accounts.migrations.0003_access_data")
    module.hash_existing_tokens(apps, BaseDatabaseSchemaEditor(connection))
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM authtoken_token")
        assert cursor.fetchone() == (0,)
    row = ApiToken.objects.get()
    assert row.user == lead and row.scope == "read_write" and row.digest == hashlib.sha256(b"a" * 40).hexdigest()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "a" * 40)
    assert client.get("/api/v1/projects/").status_code == 200
