"""Every SQL statement of the rate flow, composed from the rules defined once here.

The two rules everything else is built from:

- **An open lease** (`OPEN_LEASE`): a lease that still holds a place on its image (item). Spelled
  as "not finished", which is the same as status = 'open' (assignment_status_valid allows no other
  status), so that no partial index on status = 'open' qualifies for it: the count then always goes
  through the image's (item's) own index, a few entries, whatever the planner's statistics say.
  Spelled status = 'open', a generic plan made while ANALYZE had seen no open leases (a quiet night,
  a new project) counted through assignment_one_open_per_rater instead, that is every open lease of
  the project for every image the claim walked past (measured at 650 held leases: 10.3 ms per claim
  against 1.6 ms).
- **The room rule** (`room`): a row may take one more lease or rating while what it has taken (its
  ratings, less a lead's extra target; or a binary item's answers) plus the other raters' open,
  unexpired, non-repeat leases on it stay below the project's target. The database's copy of the
  rule lives in annotation/db/postgres.py (emorate_image_has_room, for the one-statement claim; the
  triggers keeping Image.queue_full) and annotation/db/sqlite.py (the demo's triggers);
  tests/annotation/rating/test_sql.py checks the function and `room` agree.

Parameters are named (`%(project)s`): each name is one parameter however often the text uses it,
and core.prepared turns the names into PREPARE's numbered parameters. Statements shared with the
SQLite demo get their PostgreSQL casts from `casts` ("" on SQLite). tests/annotation/rating/sql/
holds every final statement as a file (written by tests/annotation/rating/test_sql.py), so a
review shows the real SQL.
"""

from __future__ import annotations

import functools
from typing import Any

from core import prepared

# Statuses after which a rater is never served the same image (intensity) / question (binary) again.
DONE_FOR_RATER = ("submitted", "skipped", "flagged")
_DONE = "(" + ", ".join(f"'{s}'" for s in DONE_FOR_RATER) + ")"
FINISHED = (*DONE_FOR_RATER, "expired")


def open_lease(a: str) -> str:
    """The open-lease predicate on the assignment alias `a` (see the module docstring)."""
    return f"{a}.status NOT IN (" + ", ".join(f"'{s}'" for s in FINISHED) + ")"


def open_leases(*, column: str, key: str, not_rater: bool, not_retest: bool = True) -> str:
    """The count of open, unexpired leases on one row: `column` (image_id or item_id) = `key`,
    expiring after %(now)s; with `not_rater`, the claiming rater's own leases do not count; with
    `not_retest`, neither do test-retest repeats (they take no capacity)."""
    return ("(SELECT count(*) FROM annotation_assignment a WHERE a." + column + " = " + key + " AND "
            + open_lease("a") + " AND a.expires_at > %(now)s"
            + (" AND a.rater_id <> %(rater)s" if not_rater else "")
            + (" AND NOT a.is_retest" if not_retest else "") + ")")


def room(*, taken: str, leases: str, capacity: str) -> str:
    """The room rule: what the row has taken plus the open leases on it stay below its capacity."""
    return f"{taken} + {leases} < {capacity}"


# A rater a lead paused (Membership.paused_at, annotation.services.raters) is served nothing. Not
# correlated with the row, so the database evaluates it once per query.
_NOT_PAUSED = ("AND NOT EXISTS (SELECT 1 FROM annotation_membership m WHERE m.project_id = %(project)s "
               "AND m.user_id = %(rater)s AND m.paused_at IS NOT NULL)")

# Finding 3 of #16: a rater is never served for the benchmark an image whose reference values they
# were shown in calibration (a CalibrationRating of theirs for a calibration item of the image;
# annotation.services.calibration). Not correlated with the row: the database reads the rater's
# few calibration images once per query (index calibration_project_rater) and then probes a hashed
# set per row walked, so the claim costs the same with or without a calibration set.
_NOT_SHOWN_IN_CALIBRATION = ("AND i.id NOT IN (SELECT ci.image_id FROM annotation_calibrationrating cr "
                             "JOIN annotation_calibrationitem ci ON ci.id = cr.item_id "
                             "WHERE cr.project_id = %(project)s AND cr.rater_id = %(rater)s)")

# The rater's own count (rater_progress), kept by the database (RaterTally): test-retest repeats
# count too, so a repeat is not given away by a count that does not move.
RATER_COUNT = ("COALESCE((SELECT n_rated FROM annotation_ratertally WHERE project_id = %(project)s "
               "AND rater_id = %(rater)s), 0)")

# The candidates: raw SQL (portable: PostgreSQL and the SQLite demo) because this is the hottest
# query of the product and the ORM spent longer compiling it than PostgreSQL spends running it. It
# walks the partial index `image_queue_open` (project, -priority, id; images not full, not flagged,
# with a file) and stops after the first free rows: full images are not in that index, so the walk
# does not grow with the project's progress. `n_ratings` is kept by a trigger (Image.n_ratings).
# Images whose room is taken by other raters' leases are still walked past (about 10 us each).
# "The rater rated it" is asked of rating_one_per_rater_image (emotion IS NULL), one probe. The
# rater's own leases count here (they hold none open when they claim).
# What makes image `i` free for the rater, whichever index walks the images (the project's queue or
# a round's): not rated or passed by them, room left, the rater not paused, not shown in calibration.
_IMAGE_FREE = """NOT i.flagged AND i.file <> ''
  AND NOT EXISTS (SELECT 1 FROM annotation_rating r WHERE r.image_id = i.id AND r.rater_id = %(rater)s
                  AND r.emotion IS NULL)
  AND NOT EXISTS (SELECT 1 FROM annotation_assignment a
                  WHERE a.image_id = i.id AND a.rater_id = %(rater)s AND a.status IN """ + _DONE + """)
  AND """ + room(taken="i.n_ratings", leases=open_leases(column="image_id", key="i.id", not_rater=False),
                 capacity="%(target)s + i.extra_target") + """
  """ + _NOT_PAUSED + """
  """ + _NOT_SHOWN_IN_CALIBRATION
_INTENSITY_CANDIDATES = """
SELECT {columns} FROM annotation_image i
WHERE i.project_id = %(project)s AND NOT i.queue_full AND """ + _IMAGE_FREE + """
  {exclude}
ORDER BY i.priority DESC, i.id
LIMIT {limit:d} {lock}
"""
_BINARY_CANDIDATES = """
SELECT {columns} FROM annotation_binaryitem b JOIN annotation_image i ON i.id = b.image_id
WHERE b.project_id = %(project)s AND NOT b.closed AND NOT i.flagged AND i.file <> ''
  AND NOT EXISTS (SELECT 1 FROM annotation_rating r
                  WHERE r.image_id = b.image_id AND r.emotion = b.emotion AND r.rater_id = %(rater)s)
  AND NOT EXISTS (SELECT 1 FROM annotation_assignment a
                  WHERE a.item_id = b.id AND a.rater_id = %(rater)s AND a.status IN """ + _DONE + """)
  AND """ + room(taken="b.n_yes", leases=open_leases(column="item_id", key="b.id", not_rater=False, not_retest=False),
                 capacity="%(target)s") + """
  """ + _NOT_PAUSED + """
  {exclude}
ORDER BY i.priority DESC, b.image_id, b.contrastive, b.id
LIMIT {limit:d} {lock}
"""

# A round (#22; annotation/models/batch.py): the same candidates, walked through the batch's partial
# index `batch_image_open` (batch, -priority, image; the images with room in the batch, kept by a
# trigger on the image) instead of the project's, against the batch's target (parameter `target`;
# plus batch). BatchImage.priority is the image's priority, so the order within a batch is the
# project's order.
_BATCH_CANDIDATES = """
SELECT {columns} FROM annotation_batchimage bi JOIN annotation_image i ON i.id = bi.image_id
WHERE bi.batch_id = %(batch)s AND bi.open AND """ + _IMAGE_FREE + """
  {exclude}
ORDER BY bi.priority DESC, bi.image_id
LIMIT {limit:d} {lock}
"""

# The rounds a rater is served from, best first (#22): the project's open batches the rater may rate
# (every rater, or the raters chosen for it), and one row (id 0) when the project is in rounds mode
# at all (a batch that is not a draft: then only open batches are served). Parameters: project, rater.
ROUNDS = """
SELECT b.id, b.target_ratings, b.priority FROM annotation_batch b
WHERE b.project_id = %(project)s AND b.state = 'open'
  AND (b.all_raters OR EXISTS (SELECT 1 FROM annotation_batch_raters br WHERE br.batch_id = b.id
                                                                        AND br.user_id = %(rater)s))
UNION ALL
SELECT 0, 0, 0 WHERE EXISTS (SELECT 1 FROM annotation_batch x WHERE x.project_id = %(project)s AND x.state <> 'draft')
"""


def candidates(*, binary: bool, columns: str, limit: int, lock: str = "", n_exclude: int = 0,
               batch: bool = False) -> str:
    """Free queue rows for the rater, best first. Parameters: project, rater, now, target and
    exclude0.. for `n_exclude` rows to leave out. The limit is part of the text, not a parameter: a
    prepared statement's generic plan estimates an unknown LIMIT as a tenth of the table, and at a
    million images that estimate crosses PostgreSQL's JIT threshold (measured: 24 ms of JIT
    compilation per claim, 0.9 ms without). With `batch` (intensity only): the candidates of one
    round, parameter batch, and target is the batch's."""
    table = "b" if binary else "i"
    exclude = (f"AND {table}.id NOT IN (" + ", ".join(f"%(exclude{k})s" for k in range(n_exclude)) + ")"
               if n_exclude else "")
    assert not (binary and batch), "rounds serve intensity projects"
    text = _BINARY_CANDIDATES if binary else _BATCH_CANDIDATES if batch else _INTENSITY_CANDIDATES
    return text.format(columns=columns, exclude=exclude, lock=lock, limit=int(limit))


def allocation_reason(image: str, *, cast: str = "") -> str:
    """Why a new lease on `image` (a table alias) is made (Assignment.allocation_reason, #17): the
    image's dominant priority term (Image.priority_reason, written by the priority recompute), or
    "sent_back" once the base target is reached and only a lead's request for more ratings
    (extra_target) leaves room. Parameter: target (the project's target_ratings), with `cast`."""
    return (f"CASE WHEN {image}.extra_target > 0 AND {image}.n_ratings >= %(target)s{cast} THEN 'sent_back' "
            f"ELSE {image}.priority_reason END")


# The lease, inserted only if the locked row still has room: one statement started after the lock
# was taken, so its snapshot sees every rating and lease committed before (a claim that committed
# just before we got the lock is counted). Leases of the rater themselves do not count. Returns the
# rater's own count too, saving the page a round trip. Parameters: project, image, item, rater, now,
# expires, target, batch (the round it is served from, #22: its target; None outside rounds).
INTENSITY_ROOM = room(taken="(SELECT n_ratings - extra_target FROM annotation_image WHERE id = %(image)s)",
                      leases=open_leases(column="image_id", key="%(image)s", not_rater=True),
                      capacity="%(target)s")
# A closed item counts as full: target_ratings taken already.
BINARY_ROOM = room(taken="(SELECT CASE WHEN closed THEN %(target)s ELSE n_yes + n_no END FROM annotation_binaryitem "
                         "WHERE id = %(item)s)",
                   leases=open_leases(column="item_id", key="%(item)s", not_rater=True),
                   capacity="%(target)s")
_LEASE = """
INSERT INTO annotation_assignment (project_id, image_id, item_id, rater_id, status, claimed_at, expires_at,
                                   client_token, reason, note, is_retest, allocation_reason, batch_id)
SELECT %(project)s{bigint}, %(image)s{bigint}, %(item)s{bigint}, %(rater)s{bigint}, 'open', %(now)s{timestamptz},
       %(expires)s{timestamptz}, '', '', '', FALSE,
       (SELECT """ + allocation_reason("annotation_image") + """ FROM annotation_image WHERE id = %(image)s),
       %(batch)s{bigint}
WHERE {room}
RETURNING id, """ + RATER_COUNT


def lease(*, binary: bool, db: Any) -> str:
    return _LEASE.format(room=BINARY_ROOM if binary else INTENSITY_ROOM, **casts(db))


def casts(db: Any) -> dict[str, str]:
    return prepared.casts(db, "bigint", "timestamptz")


# The rater's open assignment with its image and binary item; at most one row (one open lease per
# rater: assignment_one_open_per_rater). Parameters: project, rater.
_CURRENT = """
SELECT {a}, {i}, {b} FROM annotation_assignment a JOIN annotation_image i ON i.id = a.image_id
LEFT JOIN annotation_binaryitem b ON b.id = a.item_id
WHERE a.project_id = %(project)s AND a.rater_id = %(rater)s AND a.status = 'open'
ORDER BY a.id LIMIT 1
"""


@functools.cache
def current() -> str:
    from annotation.models import Assignment, BinaryItem, Image

    return _CURRENT.format(a=prepared.select_list(Assignment, "a"), i=prepared.select_list(Image, "i"),
                           b=prepared.select_list(BinaryItem, "b"))


# PostgreSQL, intensity mode: the whole claim in one autocommitted statement (one round trip instead
# of BEGIN, candidates, lease, COMMIT). Lock the best two candidates (the same query as
# `candidates`), re-count the room of each after the lock with emorate_image_has_room() (a VOLATILE
# function counts in a fresh snapshot, so a lease committed just before we got the lock is seen, as
# the separate lease statement sees it), lease the first one with room; the other comes back as the
# prefetch hint. The locks end with the statement, when the lease is committed. No lease (no room
# after the lock, nothing free, a lock held by a claimer right now) returns no leased row and the
# claim goes the careful way, which decides. The re-count runs on the candidates in order until one
# has room (OFFSET 0: the filter is not pushed below the sort, so the LIMIT stops it): one call in the
# common case, not one per candidate. Parameters: project, rater, now, target, expires.
LOCK_BATCH = 2
_FAST_CLAIM = """
WITH c AS ({candidates}),
pick AS (
  SELECT o.id, {why} AS why FROM (SELECT * FROM c ORDER BY c.priority DESC, c.id OFFSET 0) o
  WHERE emorate_image_has_room(o.id, %(now)s::timestamptz, %(rater)s::bigint, %(target)s::integer)
  LIMIT 1
),
lease AS (
  INSERT INTO annotation_assignment (project_id, image_id, item_id, rater_id, status, claimed_at, expires_at,
                                     client_token, reason, note, is_retest, allocation_reason, batch_id)
  SELECT %(project)s::bigint, pick.id, NULL, %(rater)s::bigint, 'open', %(now)s::timestamptz, %(expires)s::timestamptz,
         '', '', '', FALSE, pick.why, {batch}
  FROM pick
  RETURNING id, image_id
)
SELECT {columns}, lease.id, {count} FROM c LEFT JOIN lease ON lease.image_id = c.id ORDER BY c.priority DESC, c.id
"""


@functools.cache
def fast_claim(*, batch: bool = False) -> str:
    """The one-statement claim; with `batch`, in one round (#22: parameter batch, target the batch's)."""
    from annotation.models import Image

    return _FAST_CLAIM.format(
        candidates=candidates(binary=False, columns=prepared.select_list(Image, "i"), limit=LOCK_BATCH,
                              lock="FOR UPDATE OF i SKIP LOCKED", batch=batch),
        columns=prepared.select_list(Image, "c"), count=RATER_COUNT, why=allocation_reason("o", cast="::integer"),
        batch="%(batch)s::bigint" if batch else "NULL")


# The careful submit's lock (the view's path, the project known): the assignment row and its image
# locked in one raw statement, in the same order as the ORM's `FOR UPDATE OF self, image`, without
# compiling a select_related query on every submit. Parameters: assignment.
_LOCK = """
SELECT a.* FROM annotation_assignment a JOIN annotation_image i ON i.id = a.image_id
WHERE a.id = %(assignment)s {lock}
"""


def lock(*, for_update_of: bool) -> str:
    return _LOCK.format(lock="FOR UPDATE OF a, i" if for_update_of else "")


# PostgreSQL, the careful way: the rating and the finished assignment in one statement (one round
# trip instead of two, and no ORM insert/update to compile on every submit).
SUBMIT = """
WITH r AS (
  INSERT INTO annotation_rating (project_id, image_id, rater_id, emotion, "values", scale_max, taxonomy_version,
                                 source, seconds_spent, active_seconds, created_at, updated_at)
  VALUES (%(project)s, %(image)s, %(rater)s, %(emotion)s, %(values)s, %(scale_max)s, %(taxonomy_version)s,
          %(source)s, %(seconds_spent)s, %(active_seconds)s, %(created_at)s, %(updated_at)s)
  RETURNING id
)
UPDATE annotation_assignment SET status = %(status)s, rating_id = (SELECT id FROM r), finished_at = %(finished_at)s,
                                 client_token = %(client_token)s
WHERE id = %(assignment)s
RETURNING rating_id
"""

# The common case in one autocommitted statement (PostgreSQL, intensity mode): lock the assignment
# and its image (the same rows, in the same order, as `lock`), and store the rating and finish the
# assignment only if the lease is the rater's, open, unexpired and not a test-retest repeat. Under
# READ COMMITTED a concurrent submit of the same assignment makes the lock wait and then re-check
# these conditions on the new row version, so a double submit stores one rating. Every other case
# (a replay, an expired lease, a foreign or unknown assignment, a repeat) finds no row and goes the
# careful way, which answers it. Time spent is counted from the claim, never negative; the page's
# active time never exceeds it. Parameters: now, assignment, project, rater, values, scale_max,
# taxonomy_version, source, active, client_token.
FAST_SUBMIT = """
WITH a AS (
  SELECT a.id, a.image_id, GREATEST(0, EXTRACT(EPOCH FROM (%(now)s::timestamptz - a.claimed_at)))::float8 AS spent
  FROM annotation_assignment a JOIN annotation_image i ON i.id = a.image_id
  WHERE a.id = %(assignment)s::bigint AND a.project_id = %(project)s::bigint AND a.rater_id = %(rater)s::bigint
    AND a.status = 'open' AND a.expires_at > %(now)s::timestamptz AND NOT a.is_retest AND a.item_id IS NULL
  FOR UPDATE OF a, i
), r AS (
  INSERT INTO annotation_rating (project_id, image_id, rater_id, emotion, "values", scale_max, taxonomy_version,
                                 source, seconds_spent, active_seconds, created_at, updated_at)
  SELECT %(project)s::bigint, a.image_id, %(rater)s::bigint, NULL, %(values)s::smallint[], %(scale_max)s::smallint,
         %(taxonomy_version)s::varchar, %(source)s::varchar, round(a.spent::numeric, 3),
         CASE WHEN %(active)s::float8 IS NULL THEN NULL ELSE round(LEAST(%(active)s::float8, a.spent)::numeric, 3) END,
         %(now)s::timestamptz, %(now)s::timestamptz
  FROM a
  RETURNING id, image_id, seconds_spent, active_seconds
)
UPDATE annotation_assignment SET status = 'submitted', rating_id = r.id, finished_at = %(now)s::timestamptz,
                                 client_token = %(client_token)s::varchar
FROM r WHERE annotation_assignment.id = %(assignment)s::bigint
RETURNING r.id, r.image_id, r.seconds_spent, r.active_seconds
"""

# The rate page's project and the requesting user's membership in one round trip (the ORM spent
# longer compiling the equivalent Exists() annotations than the database spends answering;
# membership_unique makes the LEFT JOIN yield at most one row), and whether the project is in rounds
# mode (#22: then the claim reads the rater's rounds, sql.ROUNDS). Parameters: user, slug.
_PROJECT_FOR_RATER = """
SELECT {columns}, m.id IS NOT NULL AS is_member,
       COALESCE(m.paused_at IS NOT NULL, FALSE) AS rater_paused,
       COALESCE(m.admitted_at IS NOT NULL, FALSE) AS rater_admitted,
       EXISTS (SELECT 1 FROM annotation_batch x WHERE x.project_id = p.id AND x.state <> 'draft') AS in_rounds
FROM annotation_project p LEFT JOIN annotation_membership m ON m.project_id = p.id AND m.user_id = %(user)s
WHERE p.slug = %(slug)s
"""


@functools.cache
def project_for_rater() -> str:
    from annotation.models import Project

    return _PROJECT_FOR_RATER.format(columns=prepared.select_list(Project, "p"))


def statements(db: Any) -> dict[str, str]:
    """Every final statement by a file name, as sent to `db` (the golden files' content)."""
    from annotation.models import BinaryItem, Image

    return {
        "candidates_intensity.sql": candidates(binary=False, columns=prepared.select_list(Image, "i"),
                                               limit=LOCK_BATCH, lock="FOR UPDATE OF i SKIP LOCKED"),
        "candidates_intensity_exclude.sql": candidates(binary=False, columns=prepared.select_list(Image, "i"),
                                                       limit=LOCK_BATCH, lock="FOR UPDATE OF i SKIP LOCKED",
                                                       n_exclude=2),
        "candidates_binary.sql": candidates(binary=True, columns=prepared.select_list(BinaryItem, "b"),
                                            limit=LOCK_BATCH, lock="FOR UPDATE OF b SKIP LOCKED"),
        "lease_intensity.sql": lease(binary=False, db=db),
        "lease_binary.sql": lease(binary=True, db=db),
        "current.sql": current(),
        "fast_claim.sql": fast_claim(),
        "candidates_batch.sql": candidates(binary=False, columns=prepared.select_list(Image, "i"), limit=LOCK_BATCH,
                                           lock="FOR UPDATE OF i SKIP LOCKED", batch=True),
        "fast_claim_batch.sql": fast_claim(batch=True),
        "rounds.sql": ROUNDS,
        "rater_count.sql": f"SELECT {RATER_COUNT}",
        "lock.sql": lock(for_update_of=True),
        "submit.sql": SUBMIT,
        "fast_submit.sql": FAST_SUBMIT,
        "project_for_rater.sql": project_for_rater(),
    }
