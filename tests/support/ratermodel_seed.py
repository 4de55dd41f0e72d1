"""A project whose ratings are drawn from the measurement model (annotation.agreement.ratermodel),
for the model's command and release tests (import from here, never from a test module)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from annotation.agreement import ratermodel as rm
from annotation.models import Image, Rating
from tests.factories import add_member, make_project, make_user


def seed_simulated(slug: str, n_images: int = 300, k: int = 3, n_raters: int = 5, seed: int = 1,
                   odd_rater: bool = True) -> tuple[Any, list[Any]]:
    """Ratings from the model with identical raters, except (odd_rater) the last one, who marks
    presence far more readily (15% extra faint presences) and rates present emotions one step higher."""
    project = make_project(slug=slug, target_ratings=k)
    raters = [make_user(email=f"{slug}-r{i}@example.org") for i in range(n_raters)]
    add_member(project, *raters)
    sim = rm.simulate_ratings(np.random.default_rng(seed), n_images=n_images, ratings_per_image=k,
                              n_raters=n_raters, raters_differ=False)
    images = Image.objects.bulk_create([
        Image(project=project, name=f"{slug}_{i:04d}.jpg", sha256=hashlib.sha256(f"{slug}{i}".encode()).hexdigest())
        for i in range(n_images)])
    values = sim.values.copy()
    if odd_rater:
        odd = sim.raters == n_raters - 1
        rng = np.random.default_rng(seed + 1)
        values[odd] = np.where((values[odd] == 0) & (rng.random(values[odd].shape) < 0.15), 2, values[odd])
        values[odd] = np.where(values[odd] > 0, np.minimum(values[odd] + 1, 7), 0)
    Rating.objects.bulk_create([
        Rating(project=project, image=images[int(u)], rater=raters[int(r)], values=[int(x) for x in v],
               scale_max=7, taxonomy_version="emonet-face-1", source="import")
        for u, r, v in zip(sim.units, sim.raters, values, strict=True)])
    return project, raters
