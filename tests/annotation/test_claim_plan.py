"""The claim's plan stays cheap as a rater's history grows (#21 goal 6): whether the rater rated or
passed an image is one index probe per image walked, never a read of all their ratings and leases,
even under a generic plan made while the statistics said the rater had none (a new project). And
the one-statement claim re-counts the room of its first candidate only, when that one has room."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from annotation.models import Image
from annotation.rating import assignment_claim, rating_submit
from annotation.rating import claim as queue
from annotation.rating import sql as rating_sql
from core import prepared
from tests.factories import add_member, make_image, make_project, make_user

pytestmark = pytest.mark.django_db
ZEROS = [0] * 40


def _plan(text: str, params: dict, analyze: bool = False) -> str:
    run = prepared._statement(text)[2]
    with connection.cursor() as cur:
        cur.execute(f"EXPLAIN {'(ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' if analyze else ''}{run}", params)
        return "\n".join(row[0] for row in cur.fetchall())


@pytest.mark.parametrize("batch", [False, True])
def test_rated_and_passed_are_probed_per_image_under_a_plan_made_before_the_history(batch):
    from annotation.services import batches as service

    with connection.cursor() as cur:  # for the test's transaction: tables this small would be read whole
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    project = make_project(target_ratings=1)
    images = [make_image(project, priority=float(-i), file=f"images/p/{i}.jpg", width=64, height=48) for i in range(120)]
    rater, *others = [make_user() for _ in range(6)]
    add_member(project, rater, *others)
    scope = None
    if batch:
        b = service.batch_create(project=project, name="All", image_ids=[im.pk for im in images])
        scope = queue.Scope(1, b.pk)
    for other in others:  # the project under way: others rated, our rater not yet
        for _ in range(5):
            a = assignment_claim(project=project, rater=other)
            assert a is not None
            rating_submit(assignment=a, rater=other, values=ZEROS)
    with connection.cursor() as cur:  # the statistics of that moment
        for table in ("annotation_assignment", "annotation_rating", "annotation_image", "annotation_batchimage"):
            cur.execute(f"ANALYZE {table}")
    now = timezone.now()
    assert queue._candidates(project, rater, now, [], limit=2, lock=False, scope=scope)  # prepared now
    for _ in range(40):  # then the rater's history grows
        a = assignment_claim(project=project, rater=rater)
        assert a is not None
        rating_submit(assignment=a, rater=rater, values=ZEROS)
    text = rating_sql.candidates(binary=False, columns=prepared.select_list(Image, "i"), limit=2, batch=batch)
    params = {"project": project.pk, "rater": rater.pk, "now": now, "target": 1, "batch": scope and scope.batch}
    plan = _plan(text, params)
    assert "Anti Join" not in plan, plan
    # the rating and the finished-lease probes: by the image walked, the rater checked on its rows
    assert plan.count("Index Cond: (image_id = i.id)") == 3, plan  # and the open leases' count
    assert "Index Cond: (rater_id" not in plan, plan
    # and under ANALYZE: no node reads the rater's 40 ratings or leases
    analyzed = _plan(text, params, analyze=True)
    assert "rows=40" not in analyzed, analyzed


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
