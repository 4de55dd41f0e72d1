"""Second factor: TOTP codes computed with pyotp from the secret the setup page shows; recovery codes."""

import re
import time

import pyotp
import pytest
from django.test import override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Role
from accounts.twofactor import secret_base32
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def _password_step(client, email: str):  # type: ignore[no-untyped-def]
    return client.post("/accounts/login/?next=/accounts/tokens/", {"email": email, "password": PASSWORD})


def _enrol(client) -> list[str]:  # type: ignore[no-untyped-def]
    page = client.get("/accounts/2fa/setup/").content.decode()
    secret = re.search(r'<code id="totp-secret">([A-Z2-7=]+)</code>', page).group(1)
    assert "<svg" in page  # the QR code
    assert client.post("/accounts/2fa/setup/", {"code": "000000"}).status_code == 400
    time.sleep(1.1)  # django-otp backs off for a second after a wrong code
    done = client.post("/accounts/2fa/setup/", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z2-7]+)</code></li>", done.content.decode())
    assert len(codes) == 10
    return codes


def test_a_lead_enrols_then_signs_in_with_a_code_or_a_recovery_code(client):
    lead = make_user(Role.LEAD, email="lead@lab.org")
    client.force_login(lead)
    codes = _enrol(client)
    client.logout()
    step = _password_step(client, "lead@lab.org")
    assert step.status_code == 302 and step["Location"] == "/accounts/2fa/verify/"
    assert "_auth_user_id" not in client.session  # the password alone signs nobody in
    assert client.get("/accounts/tokens/").status_code == 302
    wrong = client.post("/accounts/2fa/verify/", {"code": "123456"})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    time.sleep(1.1)
    ok = client.post("/accounts/2fa/verify/", {"code": codes[0].upper()})
    assert ok.status_code == 302 and ok["Location"] == "/accounts/tokens/"
    assert client.get("/accounts/tokens/").status_code == 200
    client.logout()
    _password_step(client, "lead@lab.org")
    assert client.post("/accounts/2fa/verify/", {"code": codes[0]}).status_code == 400  # used up


def test_a_totp_code_signs_in_once(client):
    admin = make_user(Role.ADMIN, email="root@lab.org")
    device = TOTPDevice.objects.create(user=admin, name="app", confirmed=True)
    totp = pyotp.TOTP(secret_base32(device))
    _password_step(client, "root@lab.org")
    code = totp.now()
    assert client.post("/accounts/2fa/verify/", {"code": code}).status_code == 302
    assert client.get("/admin/").status_code == 200
    client.logout()
    _password_step(client, "root@lab.org")
    assert client.post("/accounts/2fa/verify/", {"code": code}).status_code == 400  # no replay


@override_settings(EMORATE_REQUIRE_2FA_ADMINS=True)
def test_admins_must_enrol_before_their_first_session(client):
    make_user(Role.ADMIN, email="root@lab.org")
    step = _password_step(client, "root@lab.org")
    assert step["Location"] == "/accounts/2fa/setup/"
    assert client.get("/admin/").status_code == 302 and "_auth_user_id" not in client.session
    _enrol(client)
    assert client.get("/admin/").status_code == 200
    refused = client.post("/accounts/2fa/disable/", {"code": "x"}, follow=True)
    assert "Admins must keep a second factor" in refused.content.decode()
    # A lead is not forced.
    client.logout()
    make_user(Role.LEAD, email="lead@lab.org")
    assert _password_step(client, "lead@lab.org")["Location"] == "/accounts/tokens/"


def test_raters_have_no_second_factor_page(client):
    client.force_login(make_user(Role.RATER))
    assert client.get("/accounts/2fa/setup/").status_code == 403
    assert client.get("/accounts/2fa/").status_code == 403


@override_settings(LOGIN_MAX_FAILURES=3)
def test_codes_are_throttled(client):
    lead = make_user(Role.LEAD, email="lead@lab.org")
    device = TOTPDevice.objects.create(user=lead, name="app", confirmed=True, tolerance=0)
    _password_step(client, "lead@lab.org")
    for _ in range(3):
        client.post("/accounts/2fa/verify/", {"code": "000000"})
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)  # django-otp's own back-off aside
    body = client.post("/accounts/2fa/verify/", {"code": pyotp.TOTP(secret_base32(device)).now()}).content.decode()
    assert "Too many attempts" in body and "_auth_user_id" not in client.session
