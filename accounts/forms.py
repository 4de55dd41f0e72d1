from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordResetForm, SetPasswordForm
from django.core.validators import MaxValueValidator
from django.http import HttpRequest
from django.template.loader import render_to_string

from . import emails
from .models import Role, TokenScope, User, canonical_email
from .signals import invitation_projects_check
from .throttle import Throttled


class EmailLoginForm(forms.Form):
    """Email + password login that refuses further tries after repeated failures."""

    email = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))
    password = forms.CharField(label="Password", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))

    def __init__(self, request: HttpRequest | None = None, *args: object, **kwargs: object) -> None:
        self.request = request
        self.user_cache: User | None = None
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

    def get_user(self) -> User | None:
        """The signed-in user once the form is valid."""
        return self.user_cache


class AcceptInvitationForm(SetPasswordForm):  # type: ignore[type-arg]
    display_name = forms.CharField(label="Your name", max_length=150, required=False)


class ApiTokenForm(forms.Form):
    name = forms.CharField(label="Name (what it is for)", max_length=100, required=False)
    scope = forms.ChoiceField(label="Scope", choices=TokenScope.choices, initial=TokenScope.READ)
    days = forms.IntegerField(label="Expires after (days)", min_value=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.IntegerField, self.fields["days"]).max_value = settings.EMORATE_API_TOKEN_MAX_DAYS
        self.fields["days"].validators.append(MaxValueValidator(settings.EMORATE_API_TOKEN_MAX_DAYS))
        self.fields["days"].initial = settings.EMORATE_API_TOKEN_DAYS


class InvitationForm(forms.Form):
    email = forms.EmailField(label="Email")
    role = forms.ChoiceField(label="Role", choices=Role.choices, initial=Role.RATER)
    projects = forms.CharField(label="Projects (slugs, comma-separated)", required=False)

    def __init__(self, *args: Any, inviter: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inviter = inviter
        if inviter.role != Role.ADMIN:  # leads invite raters; only admins make leads and admins
            cast(forms.ChoiceField, self.fields["role"]).choices = [(Role.RATER.value, Role.RATER.label)]

    def clean_projects(self) -> list[str]:
        slugs = sorted({s.strip() for s in str(self.cleaned_data.get("projects") or "").split(",") if s.strip()})
        # Each receiver answers with the slugs it allows (django-stubs types a response as str | None).
        answers: list[Any] = [r for _, r in invitation_projects_check.send(sender=InvitationForm, inviter=self.inviter,
                                                                           slugs=slugs)]
        if answers:
            allowed = set().union(*answers)
        else:
            allowed = set(slugs) if self.inviter.role == Role.ADMIN else set()
        refused = [s for s in slugs if s not in allowed]
        if refused:
            raise forms.ValidationError(f"You do not manage these projects (or they do not exist): {', '.join(refused)}")
        if not slugs and self.inviter.role != Role.ADMIN:
            raise forms.ValidationError("Name at least one project you manage.")
        return slugs


class EmailPasswordResetForm(PasswordResetForm):
    """Django's reset form, matching accounts by the canonical email and sending through the task
    queue (the page answers alike, and as fast, whether the address has an account or not)."""

    def get_users(self, email: str) -> Iterator[User]:
        glass = {canonical_email(e) for e in settings.EMORATE_BREAK_GLASS_ADMINS}
        return (u for u in User.objects.filter(email=canonical_email(email), is_active=True)
                if u.has_usable_password() and (settings.EMORATE_PASSWORD_LOGIN or u.email in glass))

    def send_mail(self, subject_template_name: str, email_template_name: str, context: dict[str, Any],
                  from_email: str | None, to_email: str, html_email_template_name: str | None = None) -> None:
        subject = " ".join(render_to_string(subject_template_name, context).split())
        emails.email_send_later(to=to_email, subject=subject, body=render_to_string(email_template_name, context))


class RaterProfileForm(forms.ModelForm):  # type: ignore[type-arg]
    """The rater's own background form (accounts.models.RaterProfile)."""

    consented = forms.BooleanField(
        required=False,
        label="I agree that my answers are used, in aggregate only, to describe the rater pool in release cards "
              "and to compare agreement between groups of raters (never shown per person).")

    class Meta:
        from .models import RaterProfile

        model = RaterProfile
        fields = ["consented", "discipline", "years_experience", "native_language", "training_country", "notes"]
        labels = {"years_experience": "Years of professional experience with emotion or clinical assessment",
                  "training_country": "Country where you trained", "notes": "Anything else (private)"}
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}

    def clean_years_experience(self) -> int | None:
        years = self.cleaned_data.get("years_experience")
        if years is not None and years > 70:
            raise forms.ValidationError("Please give your years of experience (0 to 70).")
        return years
