"""The one-statement claim re-counts the room of its first candidate only, when that one has room
(#21 goal 6: one call of emorate_image_has_room per claim instead of one per candidate)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from annotation.rating import sql as rating_sql
from core import prepared
from tests.factories import add_member, make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def _plan(text: str, params: dict, analyze: bool = False) -> str:
    name, prepare, run = prepared._statement(text)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = %s", [name])
        if not cur.fetchone()[0]:
            cur.execute(prepare.replace("%", "%%"))
        cur.execute(f"EXPLAIN {'(ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' if analyze else ''}{run}", params)
        return "\n".join(row[0] for row in cur.fetchall())


def test_the_one_statement_claim_recounts_the_room_of_the_first_candidate_only():
    project = make_project(target_ratings=1)
    for i in range(5):
        make_image(project, priority=float(-i), file=f"images/r/{i}.jpg", width=64, height=48)
    rater = make_user()
    add_member(project, rater)
    now = timezone.now()
    params = {"project": project.pk, "rater": rater.pk, "now": now, "target": 1, "expires": now, "batch": None}
    plan = _plan(rating_sql.fast_claim(), params, analyze=True)
    # the ordered candidates come out one at a time until one has room: the first one here
    lines = plan.splitlines()
    scan = next(k for k, line in enumerate(lines) if "Subquery Scan on o" in line)
    assert "emorate_image_has_room" in lines[scan + 1], plan
    assert "Sort" in lines[scan + 2] and "rows=1 " in lines[scan + 2] + " ", plan

