"""The rate flow, in one home: what a rater's request goes through, in one direction.

    views.rate -> rating.stage (what the page shows; claims)   -> rating.claim  -> rating.sql -> models
               -> rating.submit (submit, skip, flag, revise)   -> rating.values (PURE) / rating.sql -> models

- values.py  PURE: parse and validate submitted values; the refusals (RatingError and its kinds)
- sql.py     every statement of the flow, built from the room rule and open-lease predicate,
             defined once; named parameters
- claim.py   the next image (or binary question) under a lease; the rater's progress
- submit.py  rating_submit (its PostgreSQL one-statement and careful variants behind the one
             function), assignment_skip, assignment_flag, rating_revise
- stage.py   the stage selector: the project for the rater, then everything the page needs
"""

from .claim import (
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
from .stage import Stage, may_rate, needs_calibration, project_for_rater, rate_stage, rater_paused
from .submit import assignment_flag, assignment_skip, rating_revise, rating_submit
from .values import (
    AssignmentConflict,
    AssignmentNotFound,
    ForeignAssignment,
    InvalidValues,
    RatingError,
    RawValues,
    values_parse,
)

__all__ = [
    "AssignmentConflict", "AssignmentNotFound", "Claim", "ForeignAssignment", "InvalidValues", "Progress",
    "RatingError", "RawValues", "Stage", "assignment_claim", "assignment_claim_next", "assignment_current",
    "assignment_flag", "assignment_skip", "binary_items_ensure", "may_rate", "needs_calibration",
    "project_coverage", "project_for_rater", "rate_stage", "rater_paused", "rater_progress", "rating_revise",
    "rating_submit", "retest_due", "values_parse",
]
