from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from . import services
from .forms import AcceptInvitationForm, EmailLoginForm
from .models import Invitation, User


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
