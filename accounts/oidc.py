"""Single sign-on with OpenID Connect (mozilla-django-oidc), configured from OIDC_* variables.

Accounts are matched by *verified* email only. A person new to emorate gets an account when
- a usable invitation exists for their email (its role and projects; the invitation is used up), or
- their groups claim maps to a role (OIDC_ROLE_MAP, e.g. "emorate-leads=lead,emorate-raters=rater";
  groups starting with OIDC_PROJECT_GROUP_PREFIX name project slugs to join).
Anyone else is refused with a page that says whom to ask (EMORATE_SSO_CONTACT): no account is made.
SSO accounts have no password. The callback is counted in the one throttle (per client address).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, get_user_model, logout
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from . import throttle, twofactor
from .models import Invitation, Role, User, canonical_email
from .signals import invitation_accepted

log = logging.getLogger(__name__)
REFUSED_KEY = "emorate_sso_refused"


def sso_enabled() -> bool:
    return bool(settings.OIDC_RP_CLIENT_ID)


def role_map() -> dict[str, str]:
    """OIDC_ROLE_MAP "group=role,group=role" as a dict; unknown roles are a configuration error."""
    out: dict[str, str] = {}
    for pair in settings.OIDC_ROLE_MAP:
        group, _, role = pair.partition("=")
        out[group.strip()] = role.strip()
    return out


def claim_grants(claims: dict[str, Any]) -> tuple[str | None, list[str]]:
    """The role (highest of the mapped groups) and project slugs the claims give, if any."""
    groups = claims.get(settings.OIDC_ROLE_CLAIM) or []
    if isinstance(groups, str):
        groups = [groups]
    mapping = role_map()
    order: list[str] = [Role.RATER, Role.LEAD, Role.ADMIN]
    roles = [mapping[g] for g in groups if g in mapping]
    role = max(roles, key=order.index) if roles else None
    prefix = settings.OIDC_PROJECT_GROUP_PREFIX
    slugs = sorted(g[len(prefix):] for g in groups if prefix and g.startswith(prefix))
    return role, slugs


class EmorateOIDCBackend(OIDCAuthenticationBackend):
    def get_user(self, user_id: Any) -> Any:
        """The session's user, if still active: mozilla-django-oidc's own get_user returns deactivated
        users too, so a session begun with single sign-on outlived the deactivation (images, pages)."""
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if not claims.get("email") or claims.get("email_verified") is not True:
            self._refuse("unverified", claims)
            return False
        return True

    def filter_users_by_claims(self, claims: dict[str, Any]) -> Any:
        return get_user_model().objects.filter(email=canonical_email(claims["email"]), is_active=True)

    @transaction.atomic
    def create_user(self, claims: dict[str, Any]) -> User | None:
        email = canonical_email(claims["email"])
        if User.objects.filter(email=email).exists():  # an account exists but is deactivated
            self._refuse("inactive", claims)
            return None
        invitation = (Invitation.objects.select_for_update().filter(email=email, accepted_at__isnull=True,
                                                                     expires_at__gt=timezone.now())
                      .order_by("-created_at").first())
        role, slugs = claim_grants(claims)
        if invitation is None and role is None:
            self._refuse("no-access", claims)
            return None
        if invitation is not None:
            role, slugs = invitation.role, list(invitation.projects or [])
        user = User.objects.create_user(email=email, password=None, role=role,
                                        display_name=str(claims.get("name") or "")[:150])
        if invitation is not None:
            invitation.accepted_at = timezone.now()
            invitation.save(update_fields=["accepted_at"])
        else:  # the claim mapping grants memberships the same way an invitation does
            invitation = Invitation(email=email, role=role or Role.RATER, projects=slugs)
        invitation_accepted.send(sender=Invitation, user=user, invitation=invitation)
        log.info("single sign-on created %s (%s) from %s", email, role, "an invitation" if invitation.pk else "claims")
        return user

    def update_user(self, user: User, claims: dict[str, Any]) -> User:
        return user

    def _refuse(self, reason: str, claims: dict[str, Any]) -> None:
        request = getattr(self, "request", None)
        if request is not None:
            request.session[REFUSED_KEY] = {"reason": reason, "email": str(claims.get("email") or "")[:254]}


def sso_start(request: HttpRequest) -> HttpResponse:
    if not sso_enabled():
        raise Http404("single sign-on is not configured")
    response: HttpResponse = OIDCAuthenticationRequestView.as_view()(request)
    return response


class _Callback(OIDCAuthenticationCallbackView):
    @property
    def failure_url(self) -> str:
        return "/accounts/sso/refused/"


def sso_callback(request: HttpRequest) -> HttpResponse:
    """The provider's redirect back; counted per client address in the one throttle."""
    if not sso_enabled():
        raise Http404("single sign-on is not configured")
    try:
        attempt = throttle.attempt(way="sso", account="", client=throttle.client_address(request))
    except throttle.Throttled as exc:
        return render(request, "accounts/sso_refused.html", {"reason": "throttled", "minutes": exc.minutes,
                                                              "contact": settings.EMORATE_SSO_CONTACT}, status=429)
    request.session.pop(REFUSED_KEY, None)
    response: HttpResponse = _Callback.as_view()(request)
    user = request.user
    if not user.is_authenticated:
        return response
    attempt.succeeded()
    assert isinstance(user, User)
    if twofactor.enrolled(user) or twofactor.must_enrol(user):  # our second factor applies to SSO too
        backend = request.session[BACKEND_SESSION_KEY]
        logout(request)
        return twofactor.sign_in(request, user, backend=backend, next_url=response["Location"])
    return response


def sso_refused(request: HttpRequest) -> HttpResponse:
    """Why single sign-on did not let someone in, and whom to ask."""
    refused = request.session.get(REFUSED_KEY) or {"reason": "failed", "email": ""}
    return render(request, "accounts/sso_refused.html", {**refused, "contact": settings.EMORATE_SSO_CONTACT,
                                                          "provider": settings.OIDC_PROVIDER_NAME})
