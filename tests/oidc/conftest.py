"""A real OpenID Connect provider process on loopback: npm's `oidc-provider` run by provider.js
(`make test` installs tests/oidc/node_modules). Never a mocked endpoint."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
CLIENT_ID, CLIENT_SECRET = "emorate-test", "test-only-client-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def oidc_provider(live_server, settings) -> Iterator[Callable[[dict[str, dict[str, object]]], str]]:  # type: ignore[no-untyped-def]
    """start(accounts) runs the provider with these accounts and points emorate's settings at it."""
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("tests/oidc/node_modules is missing: run `make test` (it runs npm ci there)")
    procs: list[subprocess.Popen[str]] = []

    def start(accounts: dict[str, dict[str, object]]) -> str:
        port = _free_port()
        env = {**os.environ, "OIDC_PORT": str(port), "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET,
               "OIDC_REDIRECT_URI": f"{live_server.url}/accounts/sso/callback/", "OIDC_ACCOUNTS": json.dumps(accounts)}
        proc = subprocess.Popen(["node", "provider.js"], cwd=HERE, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        procs.append(proc)
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        line = ""
        while time.monotonic() < deadline and not line.startswith("ready"):
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                pytest.fail("the OpenID Connect provider did not start")
        issuer = f"http://127.0.0.1:{port}"
        settings.OIDC_PROVIDER_NAME = "Test University"
        settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
        settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{issuer}/auth"
        settings.OIDC_OP_TOKEN_ENDPOINT = f"{issuer}/token"
        settings.OIDC_OP_USER_ENDPOINT = f"{issuer}/me"
        settings.OIDC_OP_JWKS_ENDPOINT = f"{issuer}/jwks"
        settings.OIDC_RP_SCOPES = "openid email profile groups"
        settings.OIDC_ROLE_MAP = ["emorate-leads=lead", "emorate-raters=rater"]
        settings.OIDC_PROJECT_GROUP_PREFIX = "emorate-project:"
        settings.EMORATE_SSO_CONTACT = "help@lab.org"
        settings.AUTHENTICATION_BACKENDS = ["accounts.backends.EmailBackend", "accounts.oidc.EmorateOIDCBackend"]
        return issuer

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
