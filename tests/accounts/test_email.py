"""Email on a real SMTP server (aiosmtpd on loopback), sent by a real Celery worker on Redis:
password reset, invitations and their reminder, the lead digest; links followed in Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import EmailSent, Invitation, Role, User
from accounts.services import invitation_create, invitation_reminders_send
from annotation.models import AgreementSnapshot, Rating
from annotation.models.agreement import SnapshotStatus
from annotation.services.digest import lead_digests_send
from tests.factories import PASSWORD, add_member, make_image, make_project, make_user

pytestmark = pytest.mark.django_db(transaction=True)
NEW_PASSWORD = "a-brand-new-password-42"


def _sign_in(page: Page, base: str, email: str, password: str, next_path: str = "/") -> None:
    page.goto(f"{base}/accounts/login/?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.browser
def test_password_reset_by_email_in_the_browser(page: Page, live_server, smtp, celery_worker_real, settings):
    settings.EMORATE_SITE_URL = live_server.url
    user = make_user(Role.RATER, email="forgetful@lab.org")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("Forgetful@Lab.org")
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    (msg,) = smtp.wait(1)
    assert msg["To"] == "forgetful@lab.org" and msg["Subject"] == "Reset your emorate password"
    link = smtp.link(msg)
    assert link.startswith(f"{live_server.url}/accounts/reset/")
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_role("heading", name="Your password is set")).to_be_visible()
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    page.goto(link)  # a link works once
    expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    _sign_in(page, live_server.url, "forgetful@lab.org", NEW_PASSWORD)
    expect(page.locator(".who")).to_contain_text("forgetful@lab.org")


def test_reset_never_reveals_whether_an_address_has_an_account(client, smtp, celery_worker_real):
    make_user(Role.RATER, email="known@lab.org")
    known = client.post("/accounts/password-reset/", {"email": "known@lab.org"})
    unknown = client.post("/accounts/password-reset/", {"email": "unknown@lab.org"})
    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"] == "/accounts/password-reset/done/"
    assert [m["To"] for m in smtp.wait(1)] == ["known@lab.org"]
    # Unusable passwords (single sign-on only) get no reset mail either.
    make_user(Role.RATER, email="sso@lab.org", password=None)
    assert client.post("/accounts/password-reset/", {"email": "sso@lab.org"}).status_code == 302


def test_reset_requests_are_throttled_alike_for_every_address(client, settings):
    settings.LOGIN_MAX_FAILURES = 2
    make_user(Role.RATER, email="known@lab.org")
    for email in ("known@lab.org", "unknown@lab.org"):
        codes = [client.post("/accounts/password-reset/", {"email": email}).status_code for _ in range(3)]
        assert codes == [302, 302, 429]
    body = client.post("/accounts/password-reset/", {"email": "known@lab.org"}).content.decode()
    assert "Too many reset requests" in body


@pytest.mark.browser
def test_invitation_is_emailed_shown_and_accepted_in_the_browser(page: Page, live_server, smtp, celery_worker_real,
                                                                   settings):
    settings.EMORATE_SITE_URL = live_server.url
    project = make_project(slug="hq")
    lead = make_user(Role.LEAD, email="lead@lab.org", display_name="Dr Lead")
    add_member(project, lead)
    make_project(slug="other")
    _sign_in(page, live_server.url, lead.email, PASSWORD, "/accounts/invitations/")
    page.get_by_label("Email").fill("other-lab@lab.org")
    page.get_by_label("Projects (slugs, comma-separated)").fill("other")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".errorlist")).to_contain_text("You do not manage these projects")
    page.get_by_label("Email").fill("newbie@lab.org")
    page.get_by_label("Projects (slugs, comma-separated)").fill("hq")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".messages")).to_contain_text("Invitation emailed to newbie@lab.org")
    shown = page.locator("code.invitation-link").first.inner_text()
    (msg,) = smtp.wait(1)
    assert msg["To"] == "newbie@lab.org" and "Dr Lead invites you" in msg["Subject"]
    assert smtp.link(msg) == shown
    page.locator("form.inline button").click()  # sign out
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(shown)
    page.get_by_label("Your name").fill("New Rater")
    page.get_by_label("New password:", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation:").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.locator(".who")).to_contain_text("newbie@lab.org")
    user = User.objects.get(email="newbie@lab.org")
    assert list(user.projects.all()) == [project]
    assert Invitation.objects.get().emailed_at is not None


def test_one_reminder_for_an_invitation_not_accepted(smtp, celery_worker_real, settings):
    settings.EMORATE_INVITATION_REMINDER_DAYS = 3
    lead = make_user(Role.LEAD, display_name="Dr Lead")
    old = invitation_create(email="slow@lab.org", role=Role.RATER, projects=[], created_by=lead)
    fresh = invitation_create(email="fresh@lab.org", role=Role.RATER, projects=[], created_by=lead)
    done = invitation_create(email="done@lab.org", role=Role.RATER, projects=[], created_by=lead)
    Invitation.objects.filter(pk__in=[old.pk, done.pk]).update(created_at=timezone.now() - timedelta(days=4))
    Invitation.objects.filter(pk=done.pk).update(accepted_at=timezone.now())
    assert invitation_reminders_send() == 1
    assert invitation_reminders_send() == 0  # never twice
    (msg,) = smtp.wait(1)
    assert msg["To"] == "slow@lab.org" and msg["Subject"] == "Reminder: your emorate invitation"
    assert f"/accounts/invitation/{old.token}/" in smtp.body(msg)
    assert Invitation.objects.get(pk=fresh.pk).reminded_at is None


def test_lead_digest_once_per_period_with_opt_out(smtp, celery_worker_real):
    project = make_project(slug="hq", target_ratings=1)
    lead, quiet = make_user(Role.LEAD, email="lead@lab.org"), make_user(Role.LEAD, email="quiet@lab.org")
    quiet.email_digest = False
    quiet.save()
    rater = make_user(Role.RATER)
    add_member(project, lead, quiet, rater)
    images = [make_image(project) for _ in range(4)]
    Rating.objects.create(project=project, image=images[0], rater=rater, values=[1] * 40, scale_max=7,
                          taxonomy_version="emonet-face-1")
    week_ago = timezone.now() - timedelta(days=8)
    old = AgreementSnapshot.objects.create(project=project, fingerprint="a", status=SnapshotStatus.DONE,
                                           payload={"mean_alpha": 0.12})
    AgreementSnapshot.objects.filter(pk=old.pk).update(created_at=week_ago)
    AgreementSnapshot.objects.create(project=project, fingerprint="b", status=SnapshotStatus.DONE,
                                     payload={"mean_alpha": 0.25, "raters": []})
    assert lead_digests_send() == 1
    (msg,) = smtp.wait(1)
    assert lead_digests_send() == 0  # the same period: nothing more
    # Even queued twice (two beat runs racing), the key lets one email through.
    from accounts.tasks import email_send_task

    assert email_send_task(to="lead@lab.org", subject="again", body="x", key=EmailSent.objects.get().key) is False
    time.sleep(0.5)
    assert len(smtp.messages) == 1
    body = smtp.body(msg)
    assert msg["To"] == "lead@lab.org" and msg["Subject"].startswith("emorate weekly: Hq")
    assert "1 of 4 images have their 1 ratings (25%)" in body
    assert "Ratings this week: 1" in body
    assert "0.250 (a week ago 0.120)" in body
    assert EmailSent.objects.count() == 1


def test_email_settings_come_from_the_environment(tmp_path):
    code = ("import django; from django.conf import settings; django.setup(); "
            "print(settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS, "
            "settings.DEFAULT_FROM_EMAIL, sep='|')")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", DJANGO_DEBUG="1", DATABASE_URL="", REDIS_URL="")
    demo = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert demo.stdout.strip().split("|")[0] == "django.core.mail.backends.console.EmailBackend"
    env.update(EMAIL_HOST="smtp.lab.org", EMAIL_PORT="2525", EMAIL_USE_TLS="0", DEFAULT_FROM_EMAIL="x <x@lab.org>")
    real = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert real.stdout.strip().split("|") == ["django.core.mail.backends.smtp.EmailBackend", "smtp.lab.org", "2525",
                                               "False", "x <x@lab.org>"]
