"""READ side: what pages, the API and commands show. Every query here is scoped by role."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from accounts.models import Role

from .models import Membership, Project


def project_list_for(user: Any) -> QuerySet[Project]:
    """Projects a user may open: admins all, everyone else their memberships."""
    qs = Project.objects.all()
    if not (user.is_authenticated and (user.role == Role.ADMIN or user.is_superuser)):
        qs = qs.filter(memberships__user=user)
    return qs.annotate(n_images=Count("images", distinct=True)).order_by("name")


def is_member(user: Any, project: Project) -> bool:
    return bool(user.is_authenticated and Membership.objects.filter(project=project, user=user).exists())


def can_rate(user: Any, project: Project) -> bool:
    """Raters rate the projects they belong to."""
    return bool(user.is_authenticated and user.is_active and user.role == Role.RATER and is_member(user, project))


def can_manage(user: Any, project: Project) -> bool:
    """Admins manage every project; leads only the projects they belong to; raters none."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.role == Role.ADMIN or user.is_superuser:
        return True
    return bool(user.role == Role.LEAD and is_member(user, project))
