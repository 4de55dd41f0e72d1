"""The queue: leases, order, exclusions, expiry, binary escalation, and concurrency on PostgreSQL."""

from __future__ import annotations

import importlib
import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from annotation.models import (
    Assignment,
    AssignmentStatus,
    BinaryItem,
    Image,
    RaterTally,
    Rating,
    RetestRating,
)
from annotation.rating import (
    assignment_claim,
    assignment_claim_next,
    assignment_flag,
    assignment_skip,
    binary_items_ensure,
    rating_submit,
)
from annotation.rating import claim as queue
from annotation.rating import sql as rating_sql
from annotation.rating.images import NEW, rate_image_url
from tests.factories import add_member, image_bytes, make_image, make_project, make_user, submit_as

ZEROS = [0] * 40


def image_with_file(project, priority: float = 0.0, **extra) -> Image:
    image = make_image(project, priority=priority, **extra)
    image.file.save(f"{image.sha256}.jpg", ContentFile(image_bytes()), save=True)
    return image


@pytest.mark.django_db
def test_claim_follows_priority_then_id_and_skips_flagged_and_placeholders():
    project = make_project(target_ratings=1)
    rater = make_user()
    add_member(project, rater)
    make_image(project, priority=9.0)  # placeholder: no file
    image_with_file(project, priority=8.0, flagged=True)
    b = image_with_file(project, priority=5.0)
    a = image_with_file(project, priority=5.0)  # same priority, higher id
    c = image_with_file(project, priority=1.0)
    served = []
    for _ in range(4):
        claim = assignment_claim(project=project, rater=make_user())
        if claim is None:
            break
        served.append(claim.image_id)
    assert served == [b.pk, a.pk, c.pk]


@pytest.mark.django_db
def test_reopening_returns_the_open_assignment_and_expiry_releases_it():
    project = make_project(target_ratings=1, lease_minutes=30)
    only = image_with_file(project)
    r1, r2 = make_user(), make_user()
    first = assignment_claim(project=project, rater=r1)
    assert first is not None and first.image_id == only.pk
    assert assignment_claim(project=project, rater=r1).pk == first.pk  # same lease again
    assert assignment_claim(project=project, rater=r2) is None  # the only slot is leased
    later = timezone.now() + timedelta(minutes=31)
    taken = assignment_claim(project=project, rater=r2, now=later)
    assert taken is not None and taken.image_id == only.pk  # expired lease returned the image
    # r1 comes back after the expiry: their lease is marked expired, nothing is left for them.
    assert assignment_claim(project=project, rater=r1, now=later) is None
    first.refresh_from_db()
    assert first.status == AssignmentStatus.EXPIRED


@pytest.mark.django_db
def test_never_served_again_after_rating_skipping_or_flagging():
    project = make_project(target_ratings=5)
    rater = make_user()
    images = [image_with_file(project, priority=p) for p in (3, 2, 1)]
    a = assignment_claim(project=project, rater=rater)
    rating_submit(assignment=a, rater=rater, values=ZEROS)
    b = assignment_claim(project=project, rater=rater)
    assignment_skip(assignment=b, rater=rater, reason="cannot_judge")
    c = assignment_claim(project=project, rater=rater)
    assignment_flag(assignment=c, rater=rater, reason="artifact", note="two noses")
    assert [a.image_id, b.image_id, c.image_id] == [im.pk for im in images]
    assert assignment_claim(project=project, rater=rater) is None
    # the skipped image still goes to others, and so does the flagged one until a lead confirms the
    # flag (#16: one rater's flag takes the image out of their own queue only)
    other = assignment_claim(project=project, rater=make_user())
    assert other.image_id == images[0].pk
    rating_submit(assignment=other, rater=other.rater, values=ZEROS)
    nxt = assignment_claim(project=project, rater=other.rater)
    assert nxt.image_id == images[1].pk
    assignment_skip(assignment=nxt, rater=other.rater, reason="cannot_judge")
    assert assignment_claim(project=project, rater=other.rater).image_id == images[2].pk
    assert not Image.objects.get(pk=images[2].pk).flagged


@pytest.mark.django_db
def test_prefetch_hint_names_the_next_claimable_image():
    project = make_project(target_ratings=1)
    first, second = image_with_file(project, priority=2), image_with_file(project, priority=1)
    rater = make_user()
    claim = assignment_claim_next(project=project, rater=rater)
    assert claim.assignment.image_id == first.pk
    # named by the rater's opaque URL of the image as new work (#16), never its stored file's
    assert claim.next_image_url == rate_image_url(project_id=project.pk, slug=project.slug, rater_id=rater.pk,
                                                  image_id=second.pk, serving=NEW)


@pytest.mark.django_db
def test_binary_items_created_lazily_with_contrastive_emotion_and_escalation():
    project = make_project(mode="binary", target_ratings=3)
    named = image_with_file(project, priority=2, extra={"emotion": "Elation"})
    plain = image_with_file(project, priority=1)
    assert binary_items_ensure(project=project) == 2 + 40
    items = BinaryItem.objects.filter(image=named)
    assert sorted(i.contrastive for i in items) == [False, True]
    assert BinaryItem.objects.filter(image=plain).count() == 40
    target = items.get(contrastive=False)
    # three yes votes in a row make it positive; nobody else is asked
    raters = [make_user() for _ in range(4)]
    served = []
    for r in raters[:3]:
        a = assignment_claim(project=project, rater=r)
        served.append(a.item_id)
        rating_submit(assignment=a, rater=r, values=[1])
    assert served == [target.pk] * 3
    target.refresh_from_db()
    assert (target.n_yes, target.closed) == (3, True)
    nxt = assignment_claim(project=project, rater=raters[3])
    assert nxt.item_id != target.pk
    # a single "no" closes an item at once
    rating_submit(assignment=nxt, rater=raters[3], values=[0])
    item = BinaryItem.objects.get(pk=nxt.item_id)
    assert item.closed and item.n_no == 1
    assert assignment_claim(project=project, rater=make_user()).item_id not in {target.pk, item.pk}


def _threads(n: int, fn) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def run(i: int) -> None:
        try:
            barrier.wait()
            fn(i)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fast", [False, True], ids=["careful", "fast"])
def test_many_raters_claiming_and_submitting_at_once_never_exceed_the_target(fast, monkeypatch):
    """Both ways of both steps: the careful claim and submit, and the one-statement ones."""
    monkeypatch.setattr(queue, "_FAST_CLAIM", fast)
    project = make_project(target_ratings=3)
    images = [image_with_file(project, priority=i % 3) for i in range(12)]
    raters = [make_user() for _ in range(24)]
    for r in raters:
        add_member(project, r)

    def work(i: int) -> None:
        rater = raters[i]
        while True:
            a = assignment_claim(project=project, rater=rater)
            if a is None:
                return
            submit_as(fast, assignment=a, rater=rater, values=[i % 8] + [0] * 39)
            # a double submit of the same assignment (a retry) stores nothing new
            submit_as(fast, assignment=a, rater=rater, values=[7] * 40)

    assert _threads(len(raters), work) == []
    per_image = Counter(Rating.objects.values_list("image_id", flat=True))
    assert per_image == {im.pk: 3 for im in images}  # every image exactly at its target
    pairs = list(Rating.objects.values_list("rater_id", "image_id"))
    assert len(pairs) == len(set(pairs)) == 36
    assert Assignment.objects.filter(status=AssignmentStatus.SUBMITTED).count() == 36
    assert not Assignment.objects.filter(status=AssignmentStatus.OPEN).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fast", [False, True], ids=["careful", "fast"])
def test_concurrent_claims_in_rounds_never_exceed_each_rounds_target(fast, monkeypatch):
    """The same race with rounds (#22): two open rounds with their own targets (3 and 5) sharing
    images, a round for two chosen raters only, and images in no round (never served)."""
    from annotation.models import BatchState
    from annotation.services.batches import batch_create, batch_set_state

    monkeypatch.setattr(queue, "_FAST_CLAIM", fast)
    project = make_project(target_ratings=2)
    images = [image_with_file(project, priority=i % 4) for i in range(16)]
    raters = [make_user() for _ in range(20)]
    for r in raters:
        add_member(project, r)
    three = batch_create(project=project, name="Three", image_ids=[im.pk for im in images[:8]], target_ratings=3,
                         priority=1)
    five = batch_create(project=project, name="Five", image_ids=[im.pk for im in images[5:11]], target_ratings=5,
                        priority=2)
    chosen = batch_create(project=project, name="Chosen", image_ids=[images[11].pk], target_ratings=4,
                          raters=[raters[0], raters[1]])
    for b in (three, five, chosen):
        batch_set_state(batch=b, state=BatchState.OPEN)

    def work(i: int) -> None:
        rater = raters[i]
        while True:
            a = assignment_claim(project=project, rater=rater)
            if a is None:
                return
            submit_as(fast, assignment=a, rater=rater, values=[i % 8] + [0] * 39)

    assert _threads(len(raters), work) == []
    per_image = Counter(Rating.objects.values_list("image_id", flat=True))
    expected = {im.pk: 3 for im in images[:5]} | {im.pk: 5 for im in images[5:11]} | {images[11].pk: 2}
    assert per_image == expected  # each round's target exactly; the chosen round by its two raters only
    assert set(Rating.objects.filter(image=images[11]).values_list("rater_id", flat=True)) == {raters[0].pk,
                                                                                              raters[1].pk}
    served = Counter(Assignment.objects.filter(status=AssignmentStatus.SUBMITTED).values_list("batch_id", flat=True))
    # every rating came from a round's lease
    assert served[chosen.pk] == 2 and sum(served.values()) == sum(expected.values()) and None not in served


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fast", [False, True], ids=["careful", "fast"])
def test_concurrent_double_submit_of_one_assignment_stores_one_rating(fast):
    project = make_project(target_ratings=2)
    image_with_file(project)
    rater = make_user()
    a = assignment_claim(project=project, rater=rater)
    results = []
    errors = _threads(8, lambda i: results.append(submit_as(fast, assignment=a, rater=rater, values=[i % 8] * 40).pk))
    assert errors == []
    assert len(set(results)) == 1
    assert Rating.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fast", [False, True], ids=["careful", "fast"])
def test_concurrent_claims_by_one_rater_share_one_lease(fast, monkeypatch):
    monkeypatch.setattr(queue, "_FAST_CLAIM", fast)
    project = make_project(target_ratings=5)
    for _ in range(5):
        image_with_file(project)
    rater = make_user()
    got: list[int] = []
    assert _threads(6, lambda i: got.append(assignment_claim(project=project, rater=rater).pk)) == []
    assert len(set(got)) == 1
    assert Assignment.objects.filter(rater=rater, status=AssignmentStatus.OPEN).count() == 1


@pytest.mark.django_db
def test_the_one_statement_claims_room_function_answers_as_the_lease_statement():
    """emorate_image_has_room() (migration 0018, the one-statement claim) and sql.INTENSITY_ROOM
    (the careful claim, the SQLite demo) count the same: ratings, a lead's extra target, other
    raters' open unexpired leases; not expired, finished or test-retest leases, nor the rater's own."""
    project = make_project(target_ratings=3)
    image = image_with_file(project)
    me, others = make_user(), [make_user() for _ in range(6)]
    now = timezone.now()
    Rating.objects.create(project=project, image=image, rater=others[0], values=ZEROS, scale_max=7,
                          taxonomy_version="emonet-face-1", source="import")

    def lease(rater, minutes=30, status=AssignmentStatus.OPEN, retest=False) -> None:
        Assignment.objects.create(project=project, image=image, rater=rater, status=status, claimed_at=now,
                                  expires_at=now + timedelta(minutes=minutes), is_retest=retest)

    def both(rater, target: int) -> tuple[bool, bool]:
        when = connection.ops.adapt_datetimefield_value(now)
        with connection.cursor() as cur:
            cur.execute("SELECT emorate_image_has_room(%s, %s, %s, %s)", [image.pk, when, rater.pk, target])
            fn = cur.fetchone()[0]
            cur.execute(f"SELECT {rating_sql.INTENSITY_ROOM}",
                        {"image": image.pk, "now": when, "rater": rater.pk, "target": target})
            sql = cur.fetchone()[0]
        return fn, sql

    states = []
    for step in (lambda: lease(others[1]), lambda: lease(others[2], minutes=-1), lambda: lease(me),
                 lambda: lease(others[3], status=AssignmentStatus.SKIPPED), lambda: lease(others[4], retest=True),
                 lambda: Image.objects.filter(pk=image.pk).update(extra_target=1), lambda: lease(others[5])):
        step()
        for rater in (me, others[1]):
            for target in (1, 2, 3, 4):
                fn, sql = both(rater, target)
                assert fn == sql, (len(states), rater, target)
                states.append(fn)
    assert True in states and False in states


@pytest.mark.django_db
def test_image_counters_follow_every_rating_insert_and_the_target():
    """Image.n_ratings / queue_full are kept by the database: page submits, bulk imports, a changed
    target; a stale instance saved later never writes its old count back."""
    project = make_project(target_ratings=2)
    image, other = image_with_file(project, priority=2.0), image_with_file(project, priority=1.0)
    stale = Image.objects.get(pk=image.pk)
    raters = [make_user() for _ in range(3)]
    for r in raters:
        add_member(project, r)
    a = assignment_claim(project=project, rater=raters[0])
    assert a is not None and a.image_id == image.pk
    rating_submit(assignment=a, rater=raters[0], values=ZEROS)
    image.refresh_from_db()
    assert (image.n_ratings, image.queue_full) == (1, False)
    Rating.objects.bulk_create([Rating(project=project, image=im, rater=raters[1], values=ZEROS, scale_max=7,
                                       taxonomy_version="emonet-face-1", source="import") for im in (image, other)])
    image.refresh_from_db()
    assert (image.n_ratings, image.queue_full) == (2, True)
    stale.prompt = "edited"
    stale.save()  # an instance loaded before the ratings: must not reset the counters
    image.refresh_from_db()
    assert (image.n_ratings, image.queue_full, image.prompt) == (2, True, "edited")
    claim = assignment_claim(project=project, rater=raters[2])
    assert claim is not None and claim.image_id == other.pk  # the full image is not served
    project.target_ratings = 3
    project.save(update_fields=["target_ratings"])
    image.refresh_from_db()
    assert image.queue_full is False  # back in the queue with room for one more
    project.target_ratings = 2
    project.save(update_fields=["target_ratings"])
    image.refresh_from_db()
    assert image.queue_full is True


def _tallies() -> dict[tuple[int, int], int]:
    return {(t.project_id, t.rater_id): t.n_rated for t in RaterTally.objects.all()}


def _counted() -> dict[tuple[int, int], int]:
    """What the tally must equal: ratings + test-retest repeats per (project, rater), counted."""
    out: Counter[tuple[int, int]] = Counter()
    for model in (Rating, RetestRating):
        for row in model.objects.values("project_id", "rater_id").annotate(n=Count("id")):
            out[(row["project_id"], row["rater_id"])] += row["n"]
    return dict(out)


@pytest.mark.django_db
def test_rater_tally_follows_every_rating_insert_and_the_backfill_matches():
    """RaterTally (the progress line's own count) is kept by the database: submits on both paths,
    binary answers, bulk imports spanning raters and projects; the claim reports it; the
    migration's backfill recounts the same numbers."""
    project, other = make_project(target_ratings=3), make_project(target_ratings=3)
    binary = make_project(mode="binary", target_ratings=3)
    images = [image_with_file(project, priority=float(-i)) for i in range(4)]
    image_with_file(binary)
    raters = [make_user() for _ in range(3)]
    for p in (project, other, binary):
        add_member(p, *raters)
    for fast in (True, False):
        a = assignment_claim(project=project, rater=raters[0])
        assert a is not None
        submit_as(fast, assignment=a, rater=raters[0], values=ZEROS)
    assert _tallies() == {(project.pk, raters[0].pk): 2}
    claim = assignment_claim_next(project=project, rater=raters[0])
    assert claim is not None and claim.rater_count == 2
    a = assignment_claim(project=binary, rater=raters[1])
    assert a is not None
    rating_submit(assignment=a, rater=raters[1], values=[1])
    Rating.objects.bulk_create(
        [Rating(project=project, image=im, rater=r, values=ZEROS, scale_max=7, taxonomy_version="emonet-face-1",
                source="import") for im in images[2:] for r in raters[1:]]
        + [Rating(project=other, image=make_image(other), rater=raters[2], values=ZEROS, scale_max=7,
                  taxonomy_version="emonet-face-1", source="import")])
    assert _tallies() == _counted() == {(project.pk, raters[0].pk): 2, (binary.pk, raters[1].pk): 1,
                                        (project.pk, raters[1].pk): 2, (project.pk, raters[2].pk): 2,
                                        (other.pk, raters[2].pk): 1}
    # The migration's backfill (also the SQLite demo's recount) gives the same numbers.
    backfill = importlib.import_module("annotation.migrations.0017_rater_tally_and_leaner_indexes").BACKFILL
    RaterTally.objects.all().delete()
    with connection.cursor() as cur:
        cur.execute(backfill)
    assert _tallies() == _counted()


@pytest.mark.django_db
def test_claim_plan_probes_per_image_even_when_statistics_saw_no_open_lease():
    """The claim's generic plan, made after an ANALYZE that saw no open lease (a quiet night, a new
    project) and run once many leases are held: each walked image's leases are counted through the
    image's own index, never by reading every open lease of the project (assignment_one_open_per_rater,
    the plan this query got while it said status = 'open')."""
    from core import prepared

    with connection.cursor() as cur:  # for the test's transaction: tables this small would be read whole
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    project = make_project(target_ratings=2)
    for i in range(60):
        make_image(project, priority=float(-i), file=f"images/plan/{i}.jpg", width=64, height=48)
    raters = [make_user() for _ in range(61)]
    add_member(project, *raters)
    for r in raters[:10]:  # history: submitted leases only
        for _ in range(3):
            a = assignment_claim(project=project, rater=r)
            assert a is not None
            rating_submit(assignment=a, rater=r, values=ZEROS)
    with connection.cursor() as cur:
        for table in ("annotation_assignment", "annotation_rating", "annotation_membership"):
            cur.execute(f"ANALYZE {table}")
    for r in raters[10:60]:  # now 50 leases are held
        assert assignment_claim(project=project, rater=r) is not None
    rater, now = raters[60], timezone.now()
    assert queue._candidates(project, rater, now, [], limit=2, lock=False)  # prepared on this connection
    sql = rating_sql.candidates(binary=False, columns=prepared.select_list(Image, "i"), limit=2)
    run = prepared._statement(sql)[2]
    with connection.cursor() as cur:
        cur.execute(f"EXPLAIN {run}", {"project": project.pk, "rater": rater.pk, "now": now,
                                       "target": project.target_ratings})
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "assignment_one_open_per_rater" not in plan, plan
    assert "annotation_assignment_image_id" in plan, plan


@pytest.mark.django_db
def test_an_image_sent_back_by_a_lead_is_served_again():
    from accounts.models import Role
    from annotation.services.adjudication import image_send_back
    from annotation.services.image_import import image_import_one

    project = make_project(slug="sendback", target_ratings=1)
    image = image_import_one(project=project, name="a.jpg", data=image_bytes(), meta=None)
    first, second = make_user(Role.RATER), make_user(Role.RATER)
    add_member(project, first, second)
    a = assignment_claim(project=project, rater=first)
    rating_submit(assignment=a, rater=first, values=[1] * 40)
    assert assignment_claim(project=project, rater=second) is None  # full at its target
    image_send_back(image=Image.objects.get(pk=image.pk), actor=make_user(Role.LEAD), extra=1)
    again = assignment_claim(project=project, rater=second)
    assert again is not None and again.image_id == image.pk
    rating_submit(assignment=again, rater=second, values=[2] * 40)
    assert Image.objects.get(pk=image.pk).n_ratings == 2 and Image.objects.get(pk=image.pk).queue_full
