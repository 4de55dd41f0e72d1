"""DRF authentication with hashed, expiring, scoped tokens (`Authorization: Token <key>`).

A read-scoped token is refused for anything but GET, HEAD and OPTIONS, here, for every view
(views cannot forget it). Failed token checks count in the client address's throttle.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from . import throttle
from .api_tokens import api_token_find
from .models import TokenScope

KEYWORD = "Token"


class HashedTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != KEYWORD.lower().encode():
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: use 'Authorization: Token <key>'.")
        try:
            key = auth[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token header: the key has odd characters.") from exc
        client = throttle.client_address(request._request)
        try:
            attempt = throttle.attempt(way="token", account="", client=client)
        except throttle.Throttled as exc:
            raise exceptions.Throttled(detail=str(exc)) from exc
        token = api_token_find(key)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        attempt.succeeded()
        if token.scope != TokenScope.READ_WRITE and request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied("This token's scope is read only; this request needs a read-write token.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class HashedTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "accounts.api_auth.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <key>`: create one at /accounts/tokens/ (shown once; read or read-write scope)."}
