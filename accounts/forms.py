from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import SetPasswordForm
from django.core.validators import MaxValueValidator
from django.http import HttpRequest

from .models import TokenScope
from .throttle import Throttled


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
        # The backend counts the attempt in the one throttle (accounts/throttle.py) before checking.
        user = authenticate(self.request, username=email, password=password)
        throttled: Throttled | None = getattr(self.request, "emorate_throttled", None)
        if throttled is not None:
            raise forms.ValidationError(
                f"Too many failed sign-in attempts for this account. Try again in {throttled.minutes} minutes.",
                code="throttled",
            )
        if user is None:
            raise forms.ValidationError("Email or password is not correct.", code="invalid_login")
        self.user_cache = user
        return cleaned

    def get_user(self):  # type: ignore[no-untyped-def]
        return self.user_cache


class AcceptInvitationForm(SetPasswordForm):  # type: ignore[type-arg]
    display_name = forms.CharField(label="Your name", max_length=150, required=False)


class ApiTokenForm(forms.Form):
    name = forms.CharField(label="Name (what it is for)", max_length=100, required=False)
    scope = forms.ChoiceField(label="Scope", choices=TokenScope.choices, initial=TokenScope.READ)
    days = forms.IntegerField(label="Expires after (days)", min_value=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["days"].max_value = settings.EMORATE_API_TOKEN_MAX_DAYS
        self.fields["days"].validators.append(MaxValueValidator(settings.EMORATE_API_TOKEN_MAX_DAYS))
        self.fields["days"].initial = settings.EMORATE_API_TOKEN_DAYS
