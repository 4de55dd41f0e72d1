"""The demo data set: a project of drawn faces, a lead, three raters and simulated ratings.

Simulated ratings are stored with source "simulated" by inactive accounts named "Simulated
rater N", so nobody mistakes them for expert data; the three demo raters start with an empty
history and a full queue.
"""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from django.db import transaction

from accounts.models import Role, User
from annotation import demo_faces, taxonomy
from annotation.manifests import ImageMeta
from annotation.models import Image, Membership, Project, Rating, RatingSource
from annotation.services.image_import import DuplicateImage, image_import_one
from annotation.services.projects import project_create

DEMO_SLUG = "emonet-demo"
DEMO_BINARY_SLUG = "emonet-demo-binary"
# Demo labels spanning the skin-tone palette (light -> dark); illustrative, not the authors' list.
ETHNICITIES: tuple[tuple[str, tuple[int, int]], ...] = (
    ("Northern European", (0, 2)), ("Southern European", (1, 3)), ("Eastern European", (0, 2)),
    ("East Asian", (1, 3)), ("Southeast Asian", (3, 5)), ("South Asian", (4, 7)), ("Central Asian", (2, 4)),
    ("Middle Eastern", (3, 5)), ("North African", (3, 6)), ("West African", (7, 9)), ("East African", (6, 9)),
    ("Hispanic/Latino", (2, 6)), ("Indigenous American", (4, 6)), ("Pacific Islander", (4, 7)),
)
SIMULATED_RATERS = 4


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str


@dataclass(frozen=True)
class DemoResult:
    logins: list[DemoLogin]
    images: int
    simulated_ratings: int
    created: bool


def _spec(i: int, rng: random.Random) -> tuple[demo_faces.FaceSpec, str]:
    spec = demo_faces.random_spec(rng)
    label, (lo, hi) = ETHNICITIES[i % len(ETHNICITIES)]
    return replace(spec, skin_tone=rng.randint(lo, hi)), label


def _login(email: str, role: str, projects: list[Project], display: str) -> DemoLogin:
    password = f"demo-{secrets.token_urlsafe(9)}"
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email=email, password=password, role=role, display_name=display)
    else:
        user.set_password(password)
        user.is_active = True
        user.save()
    for p in projects:
        Membership.objects.get_or_create(project=p, user=user)
    return DemoLogin(email=email, password=password, role=role)


PARALLEL_FROM = 64  # faces: below this, drawing them in this process is quicker than starting workers


def _add_images(project: Project, n: int, seed: int, progress: Callable[[int, int], None] | None
                ) -> list[tuple[Image, demo_faces.FaceSpec]]:
    rng = random.Random(seed)
    plan = []
    for i in range(n):  # every seeded draw first, in order, so the faces do not depend on the workers
        spec, ethnicity = _spec(i, rng)
        plan.append((i, spec, ethnicity, rng.random()))  # the last: a seeded shuffle until model scores exist
    faces = _draw_all([spec for _, spec, _, _ in plan])
    out = []
    for (i, spec, ethnicity, priority), data in zip(plan, faces, strict=True):
        meta = ImageMeta(ethnicity=ethnicity, age=round(spec.age / 10) * 10, gender=spec.gender,
                         prompt=f"a portrait photo of a {spec.age}-year-old {ethnicity} {spec.gender}",
                         source="emorate demo (drawn with Pillow)",
                         extra={"expression": {k: round(v, 2) for k, v in spec.expression.items()}})
        try:
            image = image_import_one(project=project, name=f"demo_face_{i:04d}.jpg", data=data, meta=meta)
        except DuplicateImage:
            continue
        image.priority = priority
        image.save(update_fields=["priority"])
        out.append((image, spec))
        if progress:
            progress(i + 1, n)
    return out


def _draw_all(specs: list[demo_faces.FaceSpec]) -> Iterator[bytes]:
    """The JPEG of each face, in order; drawn on every core for a large demo (drawing is pure and
    deterministic, about 60 ms a face on one core)."""
    if len(specs) < PARALLEL_FROM or (os.cpu_count() or 1) < 2:
        return (demo_faces.face_jpeg_bytes(spec, size=384) for spec in specs)
    with ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, 4)) as pool:
        return iter(list(pool.map(_face_384, specs, chunksize=8)))


def _face_384(spec: demo_faces.FaceSpec) -> bytes:
    return demo_faces.face_jpeg_bytes(spec, size=384)


def demo_seed(*, n_images: int = 200, seed: int = 7, progress: Callable[[int, int], None] | None = None) -> DemoResult:
    """Create the demo once; on later runs only reset and print the demo passwords."""
    created = False
    with transaction.atomic():
        project = Project.objects.filter(slug=DEMO_SLUG).first()
        binary = Project.objects.filter(slug=DEMO_BINARY_SLUG).first()
        if project is None:
            created = True
            project = project_create(
                slug=DEMO_SLUG, mode="intensity", name="EmoNet-Face demo (drawn faces)", scale_max=7, target=4,
                guidelines=("Rate how strongly each of the 40 emotions is expressed by the face, from 0 (not present) "
                            "to 7 (very strong). Judge the face only, not the background or clothing. Leave emotions "
                            "you do not see at 0. Flag images with generation artifacts or more than one face."),
            )
            binary = project_create(
                slug=DEMO_BINARY_SLUG, mode="binary", name="EmoNet-Face demo (yes/no)", target=3,
                guidelines="Answer whether the named emotion is clearly expressed by the face: y for Yes, n for No.",
            )
        assert binary is not None
        lead = _login("lead@demo.emorate.org", Role.LEAD, [project, binary], "Demo Lead")
        raters = [_login(f"rater{i}@demo.emorate.org", Role.RATER, [project, binary], f"Demo Rater {i}")
                  for i in (1, 2, 3)]
    if not created:
        return DemoResult(logins=[lead, *raters], images=project.images.count(), simulated_ratings=0, created=False)

    images = _add_images(project, n_images, seed, progress)
    _add_images(binary, 40, seed + 1, None)
    n_sim = _simulate(project, images, seed)
    return DemoResult(logins=[lead, *raters], images=len(images), simulated_ratings=n_sim, created=True)


@transaction.atomic
def _simulate(project: Project, images: list[tuple[Image, demo_faces.FaceSpec]], seed: int) -> int:
    sims = []
    for k in range(1, SIMULATED_RATERS + 1):
        user, _ = User.objects.get_or_create(
            email=f"simulated-{k}@demo.invalid",
            defaults={"role": Role.RATER, "display_name": f"Simulated rater {k}", "is_active": False, "imported": True},
        )
        Membership.objects.get_or_create(project=project, user=user)
        sims.append((user, random.Random(seed * 100 + k)))
    names = taxonomy.EMOTIONS
    rng = random.Random(seed)
    ratings = []
    for image, spec in images[: int(len(images) * 0.75)]:  # a quarter stays unrated
        for user, rater_rng in rng.sample(sims, rng.choice([2, 2, 3])):
            values = demo_faces.simulated_intensities(spec, rater_rng, scale_max=project.scale_max)
            ratings.append(Rating(project=project, image=image, rater=user, values=[values[n] for n in names],
                                  scale_max=project.scale_max, taxonomy_version=taxonomy.TAXONOMY_VERSION,
                                  source=RatingSource.SIMULATED, seconds_spent=round(rng.uniform(25, 70), 1)))
    Rating.objects.bulk_create(ratings)
    return len(ratings)
