from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from . import oidc, services, throttle
from .api_tokens import TokenError, api_token_create, api_token_revoke
from .forms import AcceptInvitationForm, ApiTokenForm, EmailLoginForm, EmailPasswordResetForm, InvitationForm
from .models import ApiToken, Invitation, Role, User


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
            login(request, user, backend="accounts.backends.EmailBackend")
            return redirect("/")
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
