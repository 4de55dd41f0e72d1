from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpRequest

from . import services


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return "-"
    return str(request.META.get("REMOTE_ADDR", "-"))


class EmailLoginForm(forms.Form):
    """Email + password login that refuses further tries after repeated failures."""

    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))
    password = forms.CharField(label="Password", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def __init__(self, request: HttpRequest | None = None, *args: object, **kwargs: object) -> None:
        self.request = request
        self.user_cache = None
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        email = str(cleaned.get("email") or "")
        password = cleaned.get("password")
        if not email or password is None:
            return cleaned
        client = client_address(self.request)
        if services.login_is_locked(email, client):
            minutes = max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)
            raise forms.ValidationError(
                f"Too many failed sign-in attempts for this account. Try again in {minutes} minutes.",
                code="throttled",
            )
        user = authenticate(self.request, username=email, password=password)
        if user is None:
            services.login_failed(email, client)
            raise forms.ValidationError("Email or password is not correct.", code="invalid_login")
        services.login_succeeded(email, client)
        self.user_cache = user
        return cleaned

    def get_user(self):  # type: ignore[no-untyped-def]
        return self.user_cache


class AcceptInvitationForm(SetPasswordForm):  # type: ignore[type-arg]
    display_name = forms.CharField(label="Your name", max_length=150, required=False)
