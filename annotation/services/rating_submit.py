"""Moved: submit, skip, flag and revise live in annotation.rating (annotation/rating/submit.py, value
parsing in annotation/rating/values.py). This alias remains only for code written before the move;
import from annotation.rating."""

from annotation.rating.submit import assignment_flag, assignment_skip, rating_revise, rating_submit  # noqa: F401
from annotation.rating.values import (  # noqa: F401
    AssignmentConflict,
    AssignmentNotFound,
    ForeignAssignment,
    InvalidValues,
    RatingError,
    RawValues,
    values_parse,
)
