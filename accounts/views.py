from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import services, throttle
from .api_tokens import TokenError, api_token_create, api_token_revoke
from .forms import AcceptInvitationForm, ApiTokenForm, EmailLoginForm
from .models import ApiToken, Invitation, Role, User


class EmailLoginView(LoginView):
    form_class = EmailLoginForm  # type: ignore[assignment]
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = Invitation.objects.filter(token=token).first()
    if invitation is None or not invitation.is_usable:
        return render(request, "accounts/invitation_invalid.html", status=404)
    form = AcceptInvitationForm(User(email=invitation.email, role=invitation.role), request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.invitation_accept(token=token, password=form.cleaned_data["new_password1"],
                                              display_name=form.cleaned_data.get("display_name", ""))
        except services.AccountError as exc:
            form.add_error(None, str(exc))
        else:
            login(request, user)  # the one configured backend (accounts.backends)
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
