"""Who may open what: one helper per role, the only access checks of the HTML views.

Every view is behind `login_required` (anonymous users go to the login page before any of these
runs). Then, in this order: an unknown project is a 404, a user without the role a 403, and the
view gets the project (and, through `signed_in`, the user typed as `accounts.models.User`).

| helper          | who passes                                                     | used by               |
|-----------------|----------------------------------------------------------------|-----------------------|
| require_lead    | the project's leads and admins (selectors.can_manage)          | dashboards, releases, settings |
| require_rater   | active raters with a membership (annotation.rating.may_rate,   | the rate flow, calibration |
|                 | project and membership read in one prepared statement)        |                       |
| require_member  | raters who may rate it, its leads, admins                      | the project page      |
| ... files=True  | any membership row, and admins                                 | image files           |

The role x route matrix tests (tests/security/test_permission_matrix.py, tests/accounts/) hold
each route to its helper's answer.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from accounts.models import User

from .. import rating as flow
from .. import selectors
from ..models import Project

LEAD_REFUSAL = "Only the project's leads and admins can open its dashboards."
RATER_REFUSAL = "Only raters who are members of this project can rate it."
MEMBER_REFUSAL = "You are not a member of this project."


def signed_in(request: HttpRequest) -> User:
    """The signed-in user of a `login_required` view, typed. 403 for anything else (never reached
    behind login_required: the user model is accounts.User)."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("Sign in first.")
    return user


def require_lead(request: HttpRequest, slug: str, *, refusal: str = LEAD_REFUSAL) -> Project:
    """The project, if the user leads it or is an admin; 404 unknown, 403 (with `refusal`) otherwise."""
    project = get_object_or_404(Project, slug=slug)
    if not selectors.can_manage(request.user, project):
        raise PermissionDenied(refusal)
    return project


def require_rater(request: HttpRequest, slug: str) -> Project:
    """The project, if the user may rate it, with the rater's membership state set
    (`rater_paused`, `rater_admitted`: annotation.rating.stage). One query: this is the hot path."""
    user = signed_in(request)
    project = flow.project_for_rater(user=user, slug=slug)
    if project is None:
        raise Http404("No project matches the given query.")
    if not flow.may_rate(user, project):
        raise PermissionDenied(RATER_REFUSAL)
    return project


def require_member(request: HttpRequest, *, slug: str | None = None, pk: int | None = None,
                   files: bool = False) -> Project:
    """The project (by `slug` or `pk`), if the user works on it: a rater who may rate it, one of its
    leads, or an admin; 404 unknown, 403 otherwise.

    `files=True` (stored images): a membership row is enough, whatever the user's role or status,
    as the image files have always been served.
    """
    project = get_object_or_404(Project, slug=slug) if pk is None else get_object_or_404(Project, pk=pk)
    user = request.user
    member = selectors.is_member(user, project) if files else selectors.can_rate(user, project)
    if not (member or selectors.can_manage(user, project)):
        raise PermissionDenied(MEMBER_REFUSAL)
    return project
