"""Property-based fuzzing of the API from its own OpenAPI schema (schemathesis).

Every generated request, valid or not, must end in a 2xx or in a 4xx that says what is wrong:
never a 500, never a refusal without a message.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings

from accounts.api_tokens import api_token_create
from accounts.models import Role
from tests.factories import add_member, make_project, make_user
from tests.support.seed import populate


def _schema() -> schemathesis.openapi.OpenApiSchema:
    """The schema the API serves (it needs a signed-in user at /api/schema/, so it is generated here)."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(
        SchemaGenerator().get_schema(request=None, public=True))))
    loaded.app = get_wsgi_application()
    loaded.location = "/api/schema/"
    return loaded


schema = _schema()


@pytest.fixture
def keep_connection():  # type: ignore[no-untyped-def]
    """Calling the WSGI app directly would close the test's database connection after each
    request (Django's request signals); Django's own test client switches that off the same way."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def lead_token(db, keep_connection):  # type: ignore[no-untyped-def]
    project = make_project(slug="hq")
    make_project(slug="yn", mode="binary")
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    populate(project, 12, [make_user() for _ in range(3)], np.random.default_rng(0))
    return api_token_create(user=lead, scope="read_write")[1]


def _message(body: bytes) -> bool:
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return bool(body.strip())
    return bool(data)


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_api_never_fails_and_always_explains(case, lead_token):  # type: ignore[no-untyped-def]
    if "slug" in (case.path_parameters or {}):
        case.path_parameters["slug"] = "hq"  # mostly a real project, so deeper code paths run
    response = case.call(headers={"Authorization": f"Token {lead_token}"})
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}"
    if 400 <= response.status_code < 500:
        assert _message(response.content), f"{case.method} {case.formatted_path}: empty {response.status_code}"
