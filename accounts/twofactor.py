"""Second factor: TOTP (django-otp) for leads and admins, with single-use recovery codes.

Signing in is two steps when a second factor applies: after the password (or single sign-on) the
session holds only a *pending* user id; the account is logged in once a code is verified. A session
is never half signed in. Admins must enrol when EMORATE_REQUIRE_2FA_ADMINS=1 (enrolment happens in
that pending state, so the admin never has a session without the second factor). Codes count in
the one throttle (per account and client), on top of django-otp's own per-device back-off.
"""

from __future__ import annotations

import base64
from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import throttle
from .models import Role, User

PENDING = "emorate_2fa_pending"
RECOVERY_CODES = 10


def may_enrol(user: User) -> bool:
    return user.role in (Role.LEAD, Role.ADMIN)


def enrolled(user: User) -> bool:
    return bool(TOTPDevice.objects.filter(user=user, confirmed=True).exists())


def must_enrol(user: User) -> bool:
    return settings.EMORATE_REQUIRE_2FA_ADMINS and user.role == Role.ADMIN and not enrolled(user)


def sign_in(request: HttpRequest, user: User, *, backend: str, next_url: str = "") -> HttpResponse:
    """Log `user` in, or start the second step when a second factor applies."""
    if not (enrolled(user) or must_enrol(user)):
        login(request, user, backend=backend)
        return redirect(_safe_next(request, next_url))
    request.session.cycle_key()
    request.session[PENDING] = {"user": user.pk, "backend": backend, "next": _safe_next(request, next_url)}
    return redirect("accounts:2fa-verify" if enrolled(user) else "accounts:2fa-setup")


def pending_user(request: HttpRequest) -> User | None:
    data = request.session.get(PENDING)
    if not data:
        return None
    return User.objects.filter(pk=data["user"], is_active=True).first()


def finish(request: HttpRequest, user: User) -> HttpResponse:
    data = request.session.pop(PENDING)
    login(request, user, backend=data["backend"])
    return redirect(data["next"])


def _safe_next(request: HttpRequest, next_url: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                                    require_https=request.is_secure()):
        return next_url
    return str(settings.LOGIN_REDIRECT_URL)


def code_check(request: HttpRequest, user: User, code: str) -> str | None:
    """Verify a TOTP code or a recovery code; returns an error message, or None when it is right."""
    code = "".join(str(code).split()).lower()
    try:
        attempt = throttle.attempt(way="2fa", account=f"user:{user.pk}", client=throttle.client_address(request))
    except throttle.Throttled as exc:
        return str(exc)
    devices = list(TOTPDevice.objects.filter(user=user, confirmed=True)) + list(StaticDevice.objects.filter(user=user))
    for device in devices:
        if device.verify_token(code):
            attempt.succeeded()
            return None
    return "That code is not right (or was already used). Try the current code from your app, or a recovery code."


def totp_device_start(user: User) -> TOTPDevice:
    """The unconfirmed device being set up (one at a time), created on first use."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)


def secret_base32(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode()


def qr_svg(device: TOTPDevice) -> str:
    import segno

    return str(segno.make(device.config_url, error="m").svg_inline(scale=4, dark="#111", light="#fff"))


@transaction.atomic
def totp_confirm(user: User, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the device with a code from the app; returns fresh recovery codes, or None if wrong."""
    if not device.verify_token("".join(str(code).split())):
        return None
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return recovery_codes_new(user)


@transaction.atomic
def recovery_codes_new(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes")
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


@transaction.atomic
def twofactor_disable(user: User) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()


def context(device: TOTPDevice) -> dict[str, Any]:
    # The SVG is path data segno draws from the otpauth URL: no text of ours reaches it unescaped.
    return {"secret": secret_base32(device), "qr": mark_safe(qr_svg(device))}  # noqa: S308
