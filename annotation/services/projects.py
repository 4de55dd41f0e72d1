"""Creating projects and adding members."""

from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify

from accounts.models import User
from annotation.models import Membership, Mode, Project
from annotation.taxonomy import default_anchors


class ProjectError(ValueError):
    """A refused project operation; the message names the problem."""


@transaction.atomic
def project_create(*, slug: str, mode: str, name: str = "", scale_max: int | None = None, target: int = 4,
                   guidelines: str = "", lease_minutes: int = 30) -> Project:
    if slugify(slug) != slug:
        raise ProjectError(f"slug {slug!r} may contain only lower-case letters, digits, hyphens and underscores")
    if mode not in Mode.values:
        raise ProjectError(f"unknown mode {mode!r} (allowed: {', '.join(Mode.values)})")
    if Project.objects.filter(slug=slug).exists():
        raise ProjectError(f"a project with slug {slug!r} already exists")
    if mode == Mode.BINARY:
        if scale_max not in (None, 1):
            raise ProjectError("a binary project answers yes/no: its scale is 0..1 (leave out --scale-max)")
        scale_max = 1
    scale_max = 7 if scale_max is None else scale_max
    if not 1 <= scale_max <= 100:
        raise ProjectError(f"scale max {scale_max} is out of range (allowed: 1..100)")
    if target < 1:
        raise ProjectError(f"target {target} must be at least 1 rating per image")
    return Project.objects.create(
        slug=slug, mode=mode, name=name or slug.replace("-", " ").title(), scale_max=scale_max,
        anchors={} if mode == Mode.BINARY else {str(k): v for k, v in default_anchors(scale_max).items()},
        target_ratings=target, guidelines=guidelines, lease_minutes=lease_minutes,
    )


def membership_add(*, project: Project, user: User) -> Membership:
    membership, _ = Membership.objects.get_or_create(project=project, user=user)
    return membership


def project_settings_update(*, project: Project, changes: dict[str, object], actor: object) -> Project:
    """Apply a lead's validated settings changes and record them in the audit history."""
    from annotation.services.audit import audit_record

    before = {k: getattr(project, k) for k in changes}
    with transaction.atomic():
        for key, value in changes.items():
            setattr(project, key, value)
        project.save(update_fields=list(changes))
        changed = {k: [before[k], changes[k]] for k in changes if before[k] != changes[k]}
        if changed:
            audit_record(actor=actor, action="project.settings_changed", project=project, obj=project,
                         changes={k: [str(a), str(b)] for k, (a, b) in changed.items()})
    return project
