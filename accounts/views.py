from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from . import oidc, services, throttle, twofactor
from .api_tokens import TokenError, api_token_create, api_token_revoke
from .forms import (
    AcceptInvitationForm,
    ApiTokenForm,
    EmailLoginForm,
    EmailPasswordResetForm,
    InvitationForm,
    RaterProfileForm,
)
from .models import ApiToken, Invitation, RaterProfile, Role, User
from .services import rater_profile_save


class EmailLoginView(LoginView):
    form_class = EmailLoginForm  # type: ignore[assignment]
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        # With password login off, the form is only shown to whoever asks for it (the break-glass admin).
        context["password_login"] = settings.EMORATE_PASSWORD_LOGIN or "break-glass" in self.request.GET
        context["sso"] = oidc.sso_enabled()
        context["sso_name"] = settings.OIDC_PROVIDER_NAME
        return context

    def form_valid(self, form: EmailLoginForm) -> HttpResponse:  # type: ignore[override]
        user = form.get_user()
        assert user is not None  # a valid form has its user (authenticate() set its `backend`)
        return twofactor.sign_in(self.request, user, backend=user.backend, next_url=self.get_redirect_url())


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = Invitation.objects.filter(token=token).first()
    if invitation is None or not invitation.is_usable:
        return render(request, "accounts/invitation_invalid.html", status=404)
    if not settings.EMORATE_PASSWORD_LOGIN and oidc.sso_enabled():  # accepted by signing in with SSO
        return render(request, "accounts/invitation_accept.html",
                      {"invitation": invitation, "sso_only": True, "sso_name": settings.OIDC_PROVIDER_NAME})
    form = AcceptInvitationForm(User(email=invitation.email, role=invitation.role), request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_accept(token=token, password=form.cleaned_data["new_password1"],
                                              display_name=form.cleaned_data.get("display_name", ""))
        except services.AccountError as exc:
            form.add_error(None, str(exc))
        else:
            return twofactor.sign_in(request, user, backend="accounts.backends.EmailBackend", next_url="/")
    return render(request, "accounts/invitation_accept.html", {"form": form, "invitation": invitation})


def _token_user(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User) or user.role not in (Role.LEAD, Role.ADMIN):
        raise PermissionDenied("API tokens are for leads and admins.")
    return user


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    """List the user's tokens; POST creates one and shows its key this once."""
    user = _token_user(request)
    form = ApiTokenForm(request.POST or None)
    created_key = ""
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            throttle.attempt(way="token-create", account=f"user:{user.pk}", client=throttle.client_address(request))
            _, created_key = api_token_create(user=user, **form.cleaned_data)
            form = ApiTokenForm()
        except throttle.Throttled as exc:
            form.add_error(None, str(exc))
            status = 429
        except TokenError as exc:
            form.add_error(None, str(exc))
            status = 400
    elif request.method == "POST":
        status = 400
    tokens = ApiToken.objects.filter(user=user)
    return render(request, "accounts/api_tokens.html",
                  {"form": form, "tokens": tokens, "created_key": created_key}, status=status)


@login_required
@require_POST
def api_token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    user = _token_user(request)
    api_token_revoke(token=get_object_or_404(ApiToken, pk=token_id, user=user))
    return redirect("accounts:api-tokens")


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset view: throttled per address and per client, the same answer for every address."""

    form_class = EmailPasswordResetForm
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password-reset-done")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        self.extra_email_context = {"site_url": settings.EMORATE_SITE_URL}
        return super().get_context_data(**kwargs)

    def form_valid(self, form: EmailPasswordResetForm) -> HttpResponse:  # type: ignore[override]
        try:
            throttle.attempt(way="reset", account=form.cleaned_data["email"],
                             client=throttle.client_address(self.request))
        except throttle.Throttled as exc:
            form.add_error(None, f"Too many reset requests. Try again in {exc.minutes} minutes.")
            return self.render_to_response(self.get_context_data(form=form), status=429)
        self.extra_email_context = {"site_url": settings.EMORATE_SITE_URL}
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    success_url = reverse_lazy("accounts:password-reset-complete")


def _inviter(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User) or user.role not in (Role.LEAD, Role.ADMIN):
        raise PermissionDenied("Invitations are sent by leads and admins.")
    return user


@login_required
def invitations(request: HttpRequest) -> HttpResponse:
    """Invite someone: the link is emailed and shown here, so the lead can pass it on another way."""
    inviter = _inviter(request)
    form = InvitationForm(request.POST or None, inviter=inviter)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                invitation = services.invitation_create(
                    email=form.cleaned_data["email"], role=form.cleaned_data["role"],
                    projects=form.cleaned_data["projects"], created_by=inviter, send=True)
            except services.AccountError as exc:
                form.add_error("email", str(exc))
                status = 400
            else:
                messages.success(request, f"Invitation emailed to {invitation.email}. "
                                          f"Its link: {services.invitation_link(invitation)}")
                return redirect("accounts:invitations")
        else:
            status = 400
    pending = Invitation.objects.filter(accepted_at__isnull=True)
    if inviter.role != Role.ADMIN:
        pending = pending.filter(created_by=inviter)
    rows = [(inv, services.invitation_link(inv)) for inv in pending[:200]]
    return render(request, "accounts/invitations.html", {"form": form, "rows": rows}, status=status)


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """The signed-in user's email preferences (the weekly digest for leads)."""
    user = request.user
    assert isinstance(user, User)
    if request.method == "POST":
        user.email_digest = request.POST.get("email_digest") == "on"
        user.save(update_fields=["email_digest"])
        messages.success(request, "Saved.")
        return redirect("accounts:preferences")
    return render(request, "accounts/preferences.html", {"digest": user.email_digest})


@login_required
def rater_profile(request: HttpRequest) -> HttpResponse:
    """The signed-in person's own background profile (optional; used in aggregate only)."""
    user = request.user
    assert isinstance(user, User)
    instance = RaterProfile.objects.filter(user=user).first() or RaterProfile(user=user)
    form = RaterProfileForm(request.POST or None, instance=instance)
    if request.method == "POST" and form.is_valid():
        profile = rater_profile_save(user=user, data=form.cleaned_data)
        messages.success(request, "Saved. Thank you." if profile.consented
                         else "Saved: without your consent nothing of your background is kept or used.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form}, status=400 if form.errors else 200)


def _enrolling_user(request: HttpRequest) -> tuple[User, bool]:
    """Who is setting up a second factor: the signed-in lead or admin, or an admin whose sign-in
    waits for enrolment (EMORATE_REQUIRE_2FA_ADMINS). Returns (user, pending)."""
    if request.user.is_authenticated:
        user = request.user
        assert isinstance(user, User)
        if not twofactor.may_enrol(user):
            raise PermissionDenied("A second factor is for leads and admins.")
        return user, False
    pending = twofactor.pending_user(request)
    if pending is None or not twofactor.must_enrol(pending):
        raise PermissionDenied("Sign in first.")
    return pending, True


def twofactor_home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    user, _ = _enrolling_user(request)
    return render(request, "accounts/2fa_home.html", {"enrolled": twofactor.enrolled(user),
                                                       "required": twofactor.must_enrol(user) or (
                                                           settings.EMORATE_REQUIRE_2FA_ADMINS and user.role == Role.ADMIN)})


def twofactor_setup(request: HttpRequest) -> HttpResponse:
    """Show the secret (QR code and text); a right code from the app confirms it and shows the
    recovery codes once."""
    if not request.user.is_authenticated and twofactor.pending_user(request) is None:
        return redirect_to_login(request.get_full_path())
    user, pending = _enrolling_user(request)
    device = twofactor.totp_device_start(user)
    error = ""
    if request.method == "POST":
        codes = twofactor.totp_confirm(user, device, request.POST.get("code", ""))
        if codes is not None:
            next_url = "/accounts/2fa/"
            if pending:
                next_url = twofactor.finish(request, user)["Location"]
            return render(request, "accounts/2fa_codes.html", {"codes": codes, "next": next_url})
        error = "That code is not right. Type the 6 digits your app shows now."
    return render(request, "accounts/2fa_setup.html", {**twofactor.context(device), "error": error, "pending": pending},
                  status=400 if error else 200)


def twofactor_verify(request: HttpRequest) -> HttpResponse:
    """The second step of signing in."""
    user = twofactor.pending_user(request)
    if user is None:
        return redirect("accounts:login")
    error = ""
    if request.method == "POST":
        error = twofactor.code_check(request, user, request.POST.get("code", "")) or ""
        if not error:
            return twofactor.finish(request, user)
    return render(request, "accounts/2fa_verify.html", {"error": error}, status=400 if error else 200)


@login_required
@require_POST
def twofactor_disable(request: HttpRequest) -> HttpResponse:
    user, _ = _enrolling_user(request)
    if settings.EMORATE_REQUIRE_2FA_ADMINS and user.role == Role.ADMIN:
        messages.error(request, "Admins must keep a second factor here; set up a new one instead.")
    elif error := twofactor.code_check(request, user, request.POST.get("code", "")):
        messages.error(request, error)
    else:
        twofactor.twofactor_disable(user)
        messages.success(request, "Second factor turned off.")
    return redirect("accounts:2fa")
