"""Every URL and API endpoint x every role, with the expected outcome.

Roles: anonymous, a rater of another project, the project's rater, a lead of another project,
the project's lead, an admin. A route missing from ROUTES fails `test_every_route_is_in_the_matrix`,
so a new page cannot ship without its row here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.api_tokens import api_token_create
from accounts.models import Role
from accounts.services import invitation_create
from annotation.models import Assignment, Image, ImageFlag, Rating, Webhook
from annotation.rating.claim import assignment_claim
from annotation.rating.images import NEW, rate_image_url
from annotation.rating.submit import rating_submit
from annotation.services.agreement_snapshot import agreement_snapshot_create
from annotation.services.batches import batch_create
from annotation.services.image_import import image_import_one
from annotation.services.releases import release_build, release_create
from tests.factories import add_member, image_bytes, make_project, make_user

pytestmark = pytest.mark.django_db
ROLES = ("anonymous", "rater_other", "rater", "lead_other", "lead", "admin")

# Who may use a route:
PUBLIC = set(ROLES)
SIGNED_IN = set(ROLES) - {"anonymous"}
MEMBERS = {"rater", "lead", "admin"}
RATER = {"rater"}
MANAGERS = {"lead", "admin"}
TOKEN_HOLDERS = {"lead_other", "lead", "admin"}  # by role, whatever the project
OWN = {"assignment_id", "rating_id", "image_token"}  # objects that belong to the world's rater alone


@dataclass(frozen=True)
class Route:
    method: str
    allowed: frozenset[str]
    kwargs: tuple[str, ...] = ()  # names filled from the world below
    api: bool = False
    hidden: bool = False  # a 404 for every role: only a bearer token opens it (tested in tests/core/)


ROUTES: dict[str, Route] = {
    "healthz": Route("GET", frozenset(PUBLIC)),
    "readyz": Route("GET", frozenset(PUBLIC)),
    "metrics": Route("GET", frozenset(), hidden=True),
    "accounts:login": Route("GET", frozenset(PUBLIC)),
    "accounts:logout": Route("POST", frozenset(PUBLIC)),
    "accounts:invitation-accept": Route("GET", frozenset(PUBLIC), ("token",)),
    "accounts:api-tokens": Route("GET", frozenset(TOKEN_HOLDERS)),
    "accounts:api-token-revoke": Route("POST", frozenset(TOKEN_HOLDERS), ("token_id",)),
    "accounts:invitations": Route("GET", frozenset(TOKEN_HOLDERS)),  # leads and admins invite
    "accounts:preferences": Route("GET", frozenset(SIGNED_IN)),
    "accounts:profile": Route("GET", frozenset(SIGNED_IN)),  # one's own background form
    "accounts:password-reset": Route("GET", frozenset(PUBLIC)),
    "accounts:password-reset-done": Route("GET", frozenset(PUBLIC)),
    "accounts:password-reset-confirm": Route("GET", frozenset(PUBLIC), ("uidb64", "token")),
    "accounts:password-reset-complete": Route("GET", frozenset(PUBLIC)),
    "accounts:2fa": Route("GET", frozenset(TOKEN_HOLDERS)),  # leads and admins
    "accounts:2fa-setup": Route("GET", frozenset(TOKEN_HOLDERS)),
    "accounts:2fa-verify": Route("GET", frozenset(PUBLIC)),  # the second step of signing in
    "accounts:2fa-disable": Route("POST", frozenset(TOKEN_HOLDERS)),
    "accounts:sso-start": Route("GET", frozenset(PUBLIC)),  # 404 until OIDC_RP_CLIENT_ID is set
    "accounts:sso-callback": Route("GET", frozenset(PUBLIC)),
    "accounts:sso-refused": Route("GET", frozenset(PUBLIC)),
    "api-schema": Route("GET", frozenset(SIGNED_IN)),
    "api-docs": Route("GET", frozenset(SIGNED_IN)),
    "media": Route("GET", frozenset(MEMBERS), ("path",)),
    "api:project-list": Route("GET", frozenset(SIGNED_IN), api=True),
    "api:image-list": Route("GET", frozenset(MANAGERS), ("slug",), api=True),
    "api:image-bulk": Route("POST", frozenset(MANAGERS), ("slug",), api=True),
    "api:rating-export": Route("GET", frozenset(MANAGERS), ("slug",), api=True),
    "api:model-scores": Route("GET", frozenset(MANAGERS), ("slug",), api=True),
    "api:agreement-latest": Route("GET", frozenset(MANAGERS), ("slug",), api=True),
    "api:flag-list": Route("GET", frozenset(MANAGERS), ("slug",), api=True),
    "api:flag-decide": Route("POST", frozenset(MANAGERS), ("slug", "flag_id"), api=True),
    "api:webhook-list": Route("GET", frozenset(MANAGERS), ("slug",), api=True),
    "api:release-list": Route("GET", frozenset(MANAGERS), ("slug",), api=True),
    "api:batch-list": Route("GET", frozenset(MANAGERS), ("slug",), api=True),
    "api:batch-detail": Route("GET", frozenset(MANAGERS), ("slug", "batch_id"), api=True),
    "api:batch-state": Route("POST", frozenset(MANAGERS), ("slug", "batch_id"), api=True),
    "api:release-detail": Route("GET", frozenset(MANAGERS), ("slug", "version"), api=True),
    "api:release-file": Route("GET", frozenset(MANAGERS), ("slug", "version", "file"), api=True),
    "annotation:home": Route("GET", frozenset(SIGNED_IN)),
    "annotation:project-detail": Route("GET", frozenset(MEMBERS), ("slug",)),
    "annotation:project-settings": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:webhooks": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:webhook-delete": Route("POST", frozenset(MANAGERS), ("slug", "webhook_id")),
    "annotation:rate": Route("GET", frozenset(RATER), ("slug",)),
    "annotation:rate-submit": Route("POST", frozenset(RATER), ("slug", "assignment_id")),
    "annotation:rate-skip": Route("POST", frozenset(RATER), ("slug", "assignment_id")),
    "annotation:rate-flag": Route("POST", frozenset(RATER), ("slug", "assignment_id")),
    "annotation:rate-history": Route("GET", frozenset(RATER), ("slug",)),
    # the rate flow's opaque image URLs (#16): the token's own rater only (another member: 404)
    "annotation:rate-image": Route("GET", frozenset(RATER), ("slug", "image_token")),
    "annotation:rate-revise": Route("GET", frozenset(RATER), ("slug", "rating_id")),
    "annotation:calibration": Route("GET", frozenset(RATER), ("slug",)),
    "annotation:release-list": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:release-create": Route("POST", frozenset(MANAGERS), ("slug",)),
    "annotation:release-row": Route("GET", frozenset(MANAGERS), ("slug", "version")),
    "annotation:release-publish": Route("POST", frozenset(MANAGERS), ("slug", "version")),
    "annotation:release-file": Route("GET", frozenset(MANAGERS), ("slug", "version", "file")),
    "annotation:dashboard": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:dashboard-agreement": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:dashboard-recompute": Route("POST", frozenset(MANAGERS), ("slug",)),
    "annotation:dashboard-definitions": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:dashboard-jobs": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:dashboard-raters": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:dashboard-rater-pause": Route("POST", frozenset(MANAGERS), ("slug", "user_id")),
    "annotation:dashboard-rater-resume": Route("POST", frozenset(MANAGERS), ("slug", "user_id")),
    "annotation:dashboard-rater-exclude": Route("POST", frozenset(MANAGERS), ("slug", "user_id")),
    "annotation:dashboard-rater-include": Route("POST", frozenset(MANAGERS), ("slug", "user_id")),
    "annotation:dashboard-rater-admit": Route("POST", frozenset(MANAGERS), ("slug", "user_id")),
    "annotation:dashboard-demographics": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:dashboard-disputed": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:dashboard-disputed-detail": Route("GET", frozenset(MANAGERS), ("slug", "image_id")),
    "annotation:dashboard-calibration-item": Route("POST", frozenset(MANAGERS), ("slug", "image_id")),
    "annotation:dashboard-image": Route("GET", frozenset(MANAGERS), ("slug", "image_id")),
    "annotation:dashboard-releases": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:batch-list": Route("GET", frozenset(MANAGERS), ("slug",)),
    "annotation:batch-detail": Route("GET", frozenset(MANAGERS), ("slug", "batch_id")),
    "annotation:batch-open": Route("POST", frozenset(MANAGERS), ("slug", "batch_id")),
    "annotation:batch-pause": Route("POST", frozenset(MANAGERS), ("slug", "batch_id")),
    "annotation:batch-close": Route("POST", frozenset(MANAGERS), ("slug", "batch_id")),
    "annotation:dashboard-flag-confirm": Route("POST", frozenset(MANAGERS), ("slug", "flag_id")),
    "annotation:dashboard-flag-dismiss": Route("POST", frozenset(MANAGERS), ("slug", "flag_id")),
}


def all_route_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns: list, ns: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                if ns == "" and p.app_name == "admin":
                    continue  # Django's admin: staff only, its own permission system
                walk(p.url_patterns, f"{ns}{p.namespace}:" if p.namespace else ns)
            elif isinstance(p, URLPattern) and p.name:
                names.add(f"{ns}{p.name}")

    walk(get_resolver().url_patterns, "")
    return names


def test_every_route_is_in_the_matrix():
    assert all_route_names() == set(ROUTES)


@pytest.fixture
def world(tmp_path):  # type: ignore[no-untyped-def]
    project, other = make_project(slug="p"), make_project(slug="q")
    users = {"rater": make_user(Role.RATER), "lead": make_user(Role.LEAD), "admin": make_user(Role.ADMIN),
             "rater_other": make_user(Role.RATER), "lead_other": make_user(Role.LEAD)}
    add_member(project, users["rater"], users["lead"])
    add_member(other, users["rater_other"], users["lead_other"])
    experts = [make_user() for _ in range(3)]
    add_member(project, *experts)
    images = [image_import_one(project=project, name=f"{i}.jpg", data=image_bytes(), meta=None) for i in range(4)]
    rng = np.random.default_rng(0)
    for image in images[:3]:
        for e in experts:
            Rating.objects.create(project=project, image=image, rater=e, values=[int(v) for v in rng.integers(0, 8, 40)],
                                  scale_max=7, taxonomy_version="emonet-face-1")
    # The rater: one submitted rating (to revise) and one open assignment.
    done = assignment_claim(project=project, rater=users["rater"])
    rated = rating_submit(assignment=done, rater=users["rater"], values=[1] * 40)
    open_assignment = assignment_claim(project=project, rater=users["rater"])
    assert open_assignment is not None
    flag = ImageFlag.objects.create(project=project, image=images[3], rater=experts[0], reason="artifact")
    agreement_snapshot_create(project, n_boot=10)
    release_build(release_create(project=project, version="1.0.0", n_boot=0))
    values = {
        "slug": "p", "version": "1.0.0", "file": "README.md", "assignment_id": open_assignment.pk,
        "rating_id": rated.pk, "image_id": images[0].pk, "path": images[0].file.name, "user_id": experts[0].pk, "flag_id": flag.pk,
        "image_token": rate_image_url(project_id=project.pk, slug="p", rater_id=users["rater"].pk,
                                      image_id=images[0].pk, serving=NEW).rstrip("/").rsplit("/", 1)[1],
        "token_id": api_token_create(user=users["lead"])[0].pk, "uidb64": "MQ",
        "webhook_id": Webhook.objects.create(project=project, url="https://hooks.example.org/emorate",
                                             events=["release.published"], secret="s" * 20).pk,
        "batch_id": batch_create(project=project, name="Round 1", image_ids=[images[3].pk]).pk,
        "token": invitation_create(email="new@example.org", role=Role.RATER, projects=["p"], created_by=None).token,
    }
    return users, values


def _token(user, scope: str) -> str:  # type: ignore[no-untyped-def]
    """An API token of `user`; raters cannot hold one, so theirs is made directly (a stolen or
    left-over key must still not open anything a rater may not see)."""
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import ApiToken, token_digest

    key = f"emr_test_{user.pk}_{scope}"
    ApiToken.objects.get_or_create(digest=token_digest(key), defaults={
        "user": user, "prefix": key[:12], "scope": scope, "expires_at": timezone.now() + timedelta(days=1)})
    return key


def url_for(name: str, route: Route, values: dict) -> str:
    kwargs = {k: values[k] for k in route.kwargs}
    if "file" in kwargs:
        kwargs["path"] = kwargs.pop("file")
    return reverse(name, kwargs=kwargs)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_route_for_every_role(name, world, client):  # type: ignore[no-untyped-def]
    users, values = world
    route = ROUTES[name]
    url = url_for(name, route, values)
    # Denied roles first: a refused request must not change anything an allowed one then sees.
    for role in sorted(ROLES, key=lambda r: r in route.allowed):
        client.logout()
        headers = {}
        if role != "anonymous":
            if route.api:
                headers["HTTP_AUTHORIZATION"] = f"Token {_token(users[role], 'read_write')}"
            else:
                client.force_login(users[role])
        response = client.get(url, **headers) if route.method == "GET" else client.post(url, {}, **headers)
        status = response.status_code
        where = f"{route.method} {url} as {role}: {status}"
        assert status < 500, where
        if route.hidden:
            assert status == 404, where
        elif role in route.allowed:
            assert status not in (401, 403), where
            if route.allowed != PUBLIC:  # (logging out lands on the login page, as it should)
                assert not (status == 302 and response["Location"].startswith("/accounts/login/")), where
        elif role == "anonymous":
            assert status in (401, 403) or (status == 302 and response["Location"].startswith("/accounts/login/")), \
                where
        else:
            assert status == 403, where


@pytest.mark.parametrize("name", sorted(n for n, r in ROUTES.items() if not (r.api or r.hidden or set(r.kwargs) & OWN)))
def test_a_single_sign_on_rater_is_just_a_rater(name, world, client):  # type: ignore[no-untyped-def]
    """SSO users in the matrix: a rater whose account single sign-on created from an invitation
    (no password) is allowed and refused exactly where the project's rater is."""
    from accounts.oidc import EmorateOIDCBackend

    users, values = world
    invitation_create(email="sso-rater@uni.example", role=Role.RATER, projects=["p"], created_by=None)
    backend = EmorateOIDCBackend.__new__(EmorateOIDCBackend)  # create_user needs no provider settings
    sso_rater = backend.create_user({"email": "sso-rater@uni.example", "email_verified": True})
    assert sso_rater is not None and not sso_rater.has_usable_password()
    route = ROUTES[name]
    url = url_for(name, route, values)
    client.force_login(sso_rater)
    response = client.get(url) if route.method == "GET" else client.post(url, {})
    refused = response.status_code in (401, 403) or (route.allowed != PUBLIC and response.status_code == 302
                                                      and response["Location"].startswith("/accounts/login/"))
    assert refused == ("rater" not in route.allowed), f"{route.method} {url}: {response.status_code}"


def test_a_refused_rater_learns_nothing_of_others(world, client):  # type: ignore[no-untyped-def]
    users, values = world
    client.force_login(users["rater"])
    for name in ("annotation:dashboard", "annotation:dashboard-agreement", "annotation:release-list"):
        body = client.get(reverse(name, kwargs={"slug": "p"})).content.decode()
        assert "alpha" not in body.lower() and "kappa" not in body.lower()
    page = client.get(reverse("annotation:rate", kwargs={"slug": "p"})).content.decode()
    assert "alpha" not in page.lower() and "kappa" not in page.lower()
    others = Rating.objects.exclude(rater=users["rater"]).filter(image_id=Assignment.objects.get(
        pk=values["assignment_id"]).image_id)
    assert others.exists()  # there is something to leak ...
    for r in others:
        assert f"rater-{r.rater_id}" not in page and r.rater.email not in page  # ... and it is not shown
    assert Image.objects.filter(project__slug="p").exists()


@pytest.mark.parametrize("name", sorted(n for n, r in ROUTES.items() if r.api))
def test_a_read_token_reads_and_never_writes(name, world, client):  # type: ignore[no-untyped-def]
    """Token scopes: a read-only token of the project's lead works on every GET its role allows and
    is refused (403, with the reason) on every write, before the view runs."""
    users, values = world
    route = ROUTES[name]
    url = url_for(name, route, values)
    headers = {"HTTP_AUTHORIZATION": f"Token {_token(users['lead'], 'read')}"}
    if route.method == "GET":
        assert client.get(url, **headers).status_code == 200
    else:
        response = client.post(url, {}, **headers)
        assert response.status_code == 403 and "scope is read only" in response.json()["detail"]
