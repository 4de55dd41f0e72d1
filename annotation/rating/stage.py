"""The rate page's stage: everything one request of the page needs, in one call.

`project_for_rater` reads the project and the requesting user's membership in one prepared
statement; `rate_stage` claims (or returns the open) assignment of a rater who is not paused and
reads their progress, counted in passing by a new lease. Preconditions: the caller checked that
the user may rate the project (`may_rate`) and holds no lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import Role, User
from annotation import taxonomy
from annotation.models import Assignment, Project
from annotation.selectors_batches import RoundLine, rater_round, rater_rounds
from core import prepared

from . import sql
from .claim import Progress, assignment_claim_next, rater_progress
from .images import NEW, RETEST, rate_image_url


def project_for_rater(*, user: User, slug: str) -> Project | None:
    """The project with `is_member`, `rater_paused` and `rater_admitted` of `user` and `in_rounds`
    (annotation.rating.claim.claim_scopes) set (one query); None for an unknown slug."""
    found = prepared.fetch_models(Project, sql.project_for_rater(), {"user": user.pk, "slug": slug},
                                  extra=("is_member", "rater_paused", "rater_admitted", "in_rounds"))
    return found[0] if found else None


def may_rate(user: User, project: Project) -> bool:
    """An active rater who is a member (project from project_for_rater)."""
    return bool(user.is_active and user.role == Role.RATER and getattr(project, "is_member", False))


def rater_paused(project: Project) -> bool:
    """Whether a lead paused the requesting rater (annotation.services.raters)."""
    return bool(getattr(project, "rater_paused", False))


def needs_calibration(project: Project) -> bool:
    """Whether the requesting rater must rate the calibration set and be admitted first
    (annotation.services.calibration)."""
    return bool(project.require_calibration and not getattr(project, "rater_admitted", False))


@dataclass(frozen=True)
class Stage:
    """What the stage shows: the rater's progress, whether they are paused, and the assignment (with
    its image, or binary item and the emotion asked about) and the next image's URL (a prefetch
    hint), when there is one."""

    project: Project
    progress: Progress
    paused: bool
    assignment: Assignment | None = None
    next_image_url: str | None = None
    emotion: taxonomy.Emotion | None = None
    # the assignment's image, named for this rater alone (annotation.rating.images): a test-retest
    # repeat gets a URL of its own, never the one of the rater's first rating of the image
    image_url: str | None = None
    # the round (#22) the assignment came from: its name, the rater's own count in it, its size, due date
    round: RoundLine | None = None


def rate_stage(*, project: Project, rater: User, just_finished: bool = False) -> Stage:
    """Claim (or return the open) assignment unless the rater is paused, and their progress.
    `just_finished`: the rater has just finished their assignment (see assignment_claim_next)."""
    paused = rater_paused(project)
    claim = None if paused else assignment_claim_next(project=project, rater=rater, just_finished=just_finished)
    progress = rater_progress(project=project, rater=rater, mine=claim.rater_count if claim is not None else None)
    if claim is None:
        return Stage(project=project, progress=progress, paused=paused)
    a = claim.assignment
    emotion = None
    if project.is_binary:
        assert a.item is not None
        emotion = taxonomy.load().emotions[a.item.emotion]
    image_url = rate_image_url(project_id=project.pk, slug=project.slug, rater_id=rater.pk, image_id=a.image_id,
                               serving=RETEST if a.is_retest else NEW)
    return Stage(project=project, progress=progress, paused=paused, assignment=a,
                 next_image_url=claim.next_image_url, emotion=emotion, image_url=image_url,
                 round=_round(project, rater, a))


def _round(project: Project, rater: User, a: Assignment) -> RoundLine | None:
    """The rater's line for the assignment's round (#22). A test-retest repeat belongs to no round:
    it shows the rater's first open round, as new work would (a repeat must look like new work, #16)."""
    if a.batch_id is not None:
        return rater_round(batch_id=a.batch_id, rater=rater)
    in_rounds = getattr(project, "in_rounds", None)
    if in_rounds is not None and not in_rounds:
        return None
    rounds = rater_rounds(project=project, rater=rater) if a.is_retest else []
    return rounds[0] if rounds else None
