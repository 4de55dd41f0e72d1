"""Upkeep of the lead's coverage tallies (annotation.models.ImageTally, #21).

The triggers only ever append delta rows; readers sum them (annotation.selectors_dashboard.
image_tally). Folding them into one row per combination keeps that sum small: after every agreement
snapshot, and whenever a reader finds more than COMPACT_AT rows.
"""

from __future__ import annotations

from django.db import connection, transaction

from annotation.models import ImageTally, Project

COMPACT_AT = 5000  # rows of one project beyond which a reader asks for a fold

_COMPACT = """
WITH gone AS (
  DELETE FROM annotation_imagetally WHERE project_id = %(project)s
  RETURNING project_id, n_ratings, ethnicity, age, gender, sent_back, images
)
INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
SELECT project_id, n_ratings, ethnicity, age, gender, sent_back, sum(images) FROM gone
GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(images) <> 0
"""


def image_tally_compact(project: Project | int) -> bool:
    """Fold a project's tally rows into one row per combination, in one statement (rows the
    triggers add meanwhile are left for the next fold). Skipped (False) while another fold of the
    project runs, and on the SQLite demo, which keeps no tallies."""
    if connection.vendor != "postgresql":
        return False
    project_id = project if isinstance(project, int) else project.pk
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_xact_lock(hashtext('emorate-image-tally'), %s)", [project_id])
        row = cur.fetchone()
        if not (row and row[0]):
            return False
        cur.execute(_COMPACT, {"project": project_id})
    return True


def image_tally_forget(project_id: int) -> None:
    """Remove a deleted project's tally rows (no foreign key holds them to the project)."""
    ImageTally.objects.filter(project_id=project_id).delete()
