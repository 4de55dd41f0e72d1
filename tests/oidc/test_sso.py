"""Single sign-on in Chromium against a real OpenID Connect provider process (tests/oidc/provider.js)."""

from __future__ import annotations

import pyotp
import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import Browser, Page, expect

from accounts.models import Invitation, Role, User
from accounts.services import invitation_create
from accounts.twofactor import secret_base32
from tests.factories import PASSWORD, add_member, make_project, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def sso_sign_in(browser: Browser, base: str, login: str, next_path: str = "/") -> Page:
    """A fresh browser (no provider session): emorate's login page -> the provider -> back."""
    page = browser.new_context().new_page()
    page.goto(f"{base}/accounts/login/?next={next_path}")
    page.get_by_role("link", name="Sign in with Test University").click()
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("anything")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()
    return page


def test_invited_people_and_mapped_groups_get_in_others_are_told_whom_to_ask(browser: Browser, live_server,
                                                                               oidc_provider):
    hq = make_project(slug="hq")
    make_project(slug="side")
    inv = invitation_create(email="alice@uni.example", role=Role.RATER, projects=["hq"], created_by=None)
    oidc_provider({
        "alice": {"email": "Alice@Uni.example", "email_verified": True, "name": "Alice A"},
        "bob": {"email": "bob@uni.example", "email_verified": True, "groups": ["emorate-leads", "emorate-project:side"]},
        "carol": {"email": "carol@uni.example", "email_verified": True, "groups": ["staff"]},
        "mallory": {"email": "dave@uni.example", "email_verified": False},
    })
    # An invitation: its role and projects; the invitation is used up; no password.
    page = sso_sign_in(browser, live_server.url, "alice", "/projects/hq/")
    expect(page).to_have_url(f"{live_server.url}/projects/hq/")
    expect(page.locator(".who")).to_contain_text("alice@uni.example")
    alice = User.objects.get(email="alice@uni.example")
    assert (alice.role, alice.display_name, alice.has_usable_password()) == (Role.RATER, "Alice A", False)
    assert list(alice.projects.all()) == [hq]
    assert Invitation.objects.get(pk=inv.pk).accepted_at is not None
    # A mapped group claim: lead of the project its group names.
    page = sso_sign_in(browser, live_server.url, "bob")
    expect(page.locator(".who")).to_contain_text("bob@uni.example")
    bob = User.objects.get(email="bob@uni.example")
    assert bob.role == Role.LEAD and [p.slug for p in bob.projects.all()] == ["side"]
    # Neither: a clear page, no account.
    page = sso_sign_in(browser, live_server.url, "carol")
    expect(page.get_by_role("heading", name="You have no access to emorate yet")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Ask your project lead to invite carol@uni.example")
    expect(page.get_by_role("link", name="help@lab.org")).to_be_visible()
    assert not User.objects.filter(email="carol@uni.example").exists()
    # An unverified email never matches an account, even an existing one.
    dave = make_user(Role.LEAD, email="dave@uni.example")
    page = sso_sign_in(browser, live_server.url, "mallory")
    expect(page.get_by_role("heading", name="Your email address is not verified")).to_be_visible()
    assert User.objects.filter(email="dave@uni.example").get().pk == dave.pk and page.locator(".who").count() == 0


def test_an_existing_account_is_matched_by_verified_email(browser: Browser, live_server, oidc_provider):
    lead = make_user(Role.LEAD, email="erin@uni.example")
    add_member(make_project(slug="hq"), lead)
    device = TOTPDevice.objects.create(user=lead, name="app", confirmed=True)
    oidc_provider({"erin": {"email": "ERIN@uni.example", "email_verified": True, "groups": ["emorate-raters"]}})
    page = sso_sign_in(browser, live_server.url, "erin", "/projects/hq/dashboard/")
    # The lead has a second factor: single sign-on is the first step only.
    expect(page).to_have_url(f"{live_server.url}/accounts/2fa/verify/")
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(
        pyotp.TOTP(secret_base32(device)).now())
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/projects/hq/dashboard/")
    assert User.objects.get(email="erin@uni.example").role == Role.LEAD  # the claim does not demote
    assert User.objects.count() == 1


def test_password_login_off_except_break_glass(client, settings, oidc_provider):
    oidc_provider({})
    settings.EMORATE_PASSWORD_LOGIN = False
    settings.EMORATE_BREAK_GLASS_ADMINS = ["root@lab.org"]
    make_user(Role.RATER, email="rater@lab.org")
    make_user(Role.ADMIN, email="root@lab.org")
    make_user(Role.ADMIN, email="other-admin@lab.org")
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with Test University" in page and 'name="password"' not in page
    assert 'name="password"' in client.get("/accounts/login/?break-glass=1").content.decode()
    for email in ("rater@lab.org", "other-admin@lab.org"):
        client.post("/accounts/login/", {"email": email, "password": PASSWORD})
        assert "_auth_user_id" not in client.session
    client.post("/accounts/login/?break-glass=1", {"email": "root@lab.org", "password": PASSWORD})
    assert "_auth_user_id" in client.session
