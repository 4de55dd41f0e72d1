"""Importing existing ratings (e.g. the EmoNet-Face authors' files) into a project.

All or nothing: the file is parsed and validated first (annotation.ratingfiles), then checked
against what the project already holds, and only then written in one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils.text import slugify

from accounts.models import Role, User
from annotation import taxonomy
from annotation.models import Image, Membership, ModelScore, Project, Rating, RatingSource
from annotation.ratingfiles import RatingFileError, parse_ratings


@dataclass(frozen=True)
class RatingImportSummary:
    ratings: int
    model_scores: int
    images_created: int
    raters_created: int


def imported_rater_email(name: str) -> str:
    """The login name of an account created for a rater known only by a name in a file."""
    if "@" in name and "." in name.split("@")[-1]:
        return name.strip().lower()
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{slugify(name)[:40] or 'rater'}.{digest}@imported.invalid"


def _raters(names: set[str], project: Project) -> tuple[dict[str, User], int]:
    emails = {n: imported_rater_email(n) for n in names}
    existing = {u.email: u for u in User.objects.filter(email__in=set(emails.values()))}
    created = 0
    out: dict[str, User] = {}
    for name, email in sorted(emails.items()):
        user = existing.get(email)
        if user is None:
            user = User.objects.create_user(email=email, password=None, role=Role.RATER, display_name=name[:150],
                                            is_active=False, imported=True)
            created += 1
        out[name] = user
    Membership.objects.bulk_create([Membership(project=project, user=u) for u in out.values()], ignore_conflicts=True)
    return out, created


def _images(names: set[str], project: Project) -> tuple[dict[str, Image], int]:
    existing = {im.name: im for im in Image.objects.filter(project=project, name__in=names)}
    missing = sorted(names - existing.keys())
    # Placeholders: no file yet; import_images fills them in later by name.
    Image.objects.bulk_create([Image(project=project, name=n) for n in missing], batch_size=5000)
    if missing:
        existing.update({im.name: im for im in Image.objects.filter(project=project, name__in=missing)})
    return existing, len(missing)


@transaction.atomic
def ratings_import(*, project: Project, text: str, fmt: str) -> RatingImportSummary:
    """Import a rating file. Raises RatingFileError (naming every bad line); stores nothing then."""
    tax = taxonomy.load()
    parsed = parse_ratings(text, fmt=fmt, taxonomy=tax, binary=project.is_binary, scale_max=project.scale_max)
    images, images_created = _images({r.image for r in parsed.ratings} | {m.image for m in parsed.model_scores},
                                      project)
    raters, raters_created = _raters({r.rater for r in parsed.ratings}, project)

    # Never overwrite a stored rating or score: a clash refuses the whole file.
    errors: list[str] = []
    rater_ids = {u.pk for u in raters.values()}
    image_ids = {im.pk for im in images.values()}
    taken = set(Rating.objects.filter(project=project, rater_id__in=rater_ids, image_id__in=image_ids)
                .values_list("rater_id", "image_id", "emotion"))
    for r in parsed.ratings:
        key = (raters[r.rater].pk, images[r.image].pk, r.emotion)
        if key in taken:
            errors.append(f"line {r.line}: {r.rater} already has a rating for {r.image} in this project "
                          "(imports never overwrite ratings)")
    taken_scores = set(ModelScore.objects.filter(project=project, image_id__in=image_ids)
                       .values_list("image_id", "model_name"))
    for m in parsed.model_scores:
        if (images[m.image].pk, m.model) in taken_scores:
            errors.append(f"line {m.line}: model {m.model} already has scores for {m.image}")
    if errors:
        raise RatingFileError(errors)  # rolls back the placeholders and accounts made above

    Rating.objects.bulk_create(
        [Rating(project=project, image=images[r.image], rater=raters[r.rater], emotion=r.emotion, values=r.values,
                scale_max=project.scale_max, taxonomy_version=tax.version, source=RatingSource.IMPORT)
         for r in parsed.ratings],
        batch_size=5000,
    )
    ModelScore.objects.bulk_create(
        [ModelScore(project=project, image=images[m.image], model_name=m.model, scores=m.scores,
                    taxonomy_version=tax.version) for m in parsed.model_scores],
        batch_size=5000,
    )
    return RatingImportSummary(ratings=len(parsed.ratings), model_scores=len(parsed.model_scores),
                               images_created=images_created, raters_created=raters_created)
