"""Test data builders. Images are real encoded files made with Pillow."""

from __future__ import annotations

import io
import itertools
from typing import Any

from PIL import Image as PILImage

from accounts.models import Role, User
from annotation.models import Image, Membership, Project

_seq = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), color: tuple[int, int, int] | None = None) -> bytes:
    n = next(_seq)
    color = color or (n * 37 % 256, n * 91 % 256, n * 53 % 256)
    buf = io.BytesIO()
    PILImage.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def make_user(role: str = Role.RATER, email: str | None = None, password: str = PASSWORD, **extra: Any) -> User:
    email = email or f"{role}{next(_seq)}@example.org"
    if role == Role.ADMIN:
        return User.objects.create_superuser(email=email, password=password, **extra)
    return User.objects.create_user(email=email, password=password, role=role, **extra)


def make_project(slug: str | None = None, mode: str = "intensity", **extra: Any) -> Project:
    slug = slug or f"project-{next(_seq)}"
    if mode == "binary":
        extra.setdefault("scale_max", 1)
        extra.setdefault("target_ratings", 3)
    return Project.objects.create(name=slug.replace("-", " ").title(), slug=slug, mode=mode, **extra)


def add_member(project: Project, *users: User) -> None:
    for u in users:
        Membership.objects.get_or_create(project=project, user=u)


def make_image(project: Project, name: str | None = None, **extra: Any) -> Image:
    """A database image without a file (enough for rating and agreement tests)."""
    n = next(_seq)
    return Image.objects.create(project=project, name=name or f"img_{n:05d}.jpg", sha256=f"{n:064x}", **extra)


def submit_as(fast: bool, *, assignment: Any, **kw: Any) -> Any:
    """rating_submit as the rate page calls it (`fast`: the assignment id and the project, so
    PostgreSQL's one-statement fast path first) or with the Assignment itself (the careful way)."""
    from annotation.rating import rating_submit

    if fast:
        return rating_submit(assignment=assignment.pk, project=assignment.project, **kw)
    return rating_submit(assignment=assignment, **kw)
