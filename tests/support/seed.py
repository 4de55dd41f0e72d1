"""Shared seed data for tests and benchmarks: projects with images and ratings, built the same way
wherever they are needed (import from here, never from another test module)."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.utils import timezone

from accounts.models import Role
from annotation import demo_faces
from annotation.models import AgreementSnapshot, Image, ModelScore, Rating
from annotation.services.agreement_snapshot import agreement_snapshot_create
from annotation.taxonomy import EMOTIONS
from tests.factories import add_member, image_bytes, make_image, make_project, make_user

POPULATE_ETHNICITIES = ["A", "B", "C", "D"]


POPULATE_GENDERS = ["man", "woman", "non-binary person"]


def populate(project, n_images: int, raters, rng, start: int = 0, per_image: int = 3) -> list[Image]:
    images = []
    for i in range(start, start + n_images):
        images.append(Image.objects.create(
            project=project, name=f"face_{i:05d}.jpg", sha256=hashlib.sha256(f"img{i}".encode()).hexdigest(),
            ethnicity=POPULATE_ETHNICITIES[i % 4], gender=POPULATE_GENDERS[i % 3],
            age=20 + 10 * (i % 7), prompt=f"prompt {i % 50}"))
    ratings = []
    for image in images:
        truth = rng.integers(0, 8, size=40) * (rng.random(40) < 0.25)
        for rater in rng.choice(raters, size=per_image, replace=False):
            vals = np.clip(truth + rng.integers(-1, 2, size=40) * (truth > 0), 0, 7)
            ratings.append(Rating(project=project, image=image, rater=rater, values=[int(v) for v in vals],
                                  scale_max=7, taxonomy_version="emonet-face-1", source="import"))
    Rating.objects.bulk_create(ratings)
    return images


DASHBOARD_ETHNICITIES = ["Asian", "Black", "Hispanic", "White"]


def seed_rated_project(slug: str = "dash", n_images: int = 24, n_raters: int = 4, per_image: int = 3,
                       files: bool = False, seed: int = 7) -> dict[str, Any]:
    """A project with correlated, zero-inflated ratings spread over the last days, model scores for
    some images, two agreement snapshots (a trend), a lead, a rater and an admin."""
    rng = random.Random(seed)
    project = make_project(slug=slug, target_ratings=per_image)
    raters = [make_user(email=f"{slug}-r{i}@example.org", display_name=f"Rater {chr(65 + i)}") for i in range(n_raters)]
    lead = make_user(Role.LEAD, email=f"{slug}-lead@example.org")
    add_member(project, lead, *raters)
    images = []
    for i in range(n_images):
        image = make_image(project, name=f"{slug}_{i:03d}.jpg", priority=rng.random(),
                           ethnicity=DASHBOARD_ETHNICITIES[i % 4] if i < n_images - 2 else "Other",
                           age=20 + 10 * (i % 7), gender=["man", "woman", "non-binary person"][i % 3])
        if files:
            image.file.save(f"{image.sha256}.jpg", ContentFile(demo_faces.face_jpeg_bytes(demo_faces.random_spec(rng))),
                            save=True)
        images.append(image)
    now = timezone.now()
    # Emotions differ in how hard they are (noise grows with the taxonomy index), like real data
    # where some emotions reach alpha 0.6 and others stay near 0; the last rater is noisier.
    hardness = [e % 8 for e in range(len(EMOTIONS))]
    for k, image in enumerate(images):
        truth = [0 if rng.random() < 0.7 else rng.randint(1, 7) for _ in EMOTIONS]
        for rater in rng.sample(raters, per_image):
            noise = [h + (2 if rater is raters[-1] else 0) for h in hardness]
            values = [min(7, max(0, t + rng.randint(-n, n))) if t or rng.random() < 0.05 * (1 + n) else 0
                      for t, n in zip(truth, noise, strict=True)]
            r = Rating.objects.create(project=project, image=image, rater=rater, values=values, scale_max=7,
                                      taxonomy_version=project.taxonomy_version, seconds_spent=20 + rng.random() * 60)
            Rating.objects.filter(pk=r.pk).update(created_at=now - timedelta(days=k % 10, hours=rng.randint(0, 5)))
        if k % 3 == 0:
            ModelScore.objects.create(project=project, image=image, model_name="empathic-insight-face-small",
                                      scores=[min(7.0, t + rng.random()) for t in truth],
                                      taxonomy_version=project.taxonomy_version)
    first = agreement_snapshot_create(project, n_boot=0, seed=1)
    second = agreement_snapshot_create(project, n_boot=30, seed=0)
    AgreementSnapshot.objects.filter(pk=first.pk).update(created_at=now - timedelta(days=3))
    second.refresh_from_db()
    return {"project": project, "raters": raters, "lead": lead, "images": images, "snapshot": second}


def image_with_file(project, priority: float = 0.0, **extra):
    image = make_image(project, priority=priority, **extra)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes()), save=True)
    return image


def rating_setup(mode: str = "intensity", n_images: int = 3, **kw):
    """A project of `n_images` images with files (descending priority) and one member rater."""
    project = make_project(mode=mode, **kw)
    images = [image_with_file(project, priority=n_images - i) for i in range(n_images)]
    rater = make_user()
    add_member(project, rater)
    return project, images, rater


def face_images(project, n: int, **extra) -> list:
    rng = random.Random(project.pk)
    images = []
    for i in range(n):
        image = make_image(project, priority=n - i, **extra)
        image.file.save(f"{image.sha256}.jpg", ContentFile(demo_faces.face_jpeg_bytes(demo_faces.random_spec(rng))),
                        save=True)
        images.append(image)
    return images


def demo_world(n_images: int = 24, seed: int = 3):
    """The demo's projects and people (annotation.services.demo), with an agreement snapshot and a
    built release: every page has something to show. Returns the DemoResult (logins)."""
    from annotation.models import Project
    from annotation.services.agreement_snapshot import agreement_snapshot_create
    from annotation.services.demo import DEMO_SLUG, demo_seed
    from annotation.services.releases import release_build, release_create

    result = demo_seed(n_images=n_images, seed=seed)
    project = Project.objects.get(slug=DEMO_SLUG)
    agreement_snapshot_create(project, n_boot=20)
    release_build(release_create(project=project, version="1.0.0", n_boot=0))
    return result
