"""Moved: the claim lives in annotation.rating (annotation/rating/claim.py). This alias remains only
for code written before the move; import from annotation.rating."""

from annotation.rating.claim import (  # noqa: F401
    Claim,
    Progress,
    assignment_claim,
    assignment_claim_next,
    assignment_current,
    binary_items_ensure,
    project_coverage,
    rater_progress,
    retest_due,
)
