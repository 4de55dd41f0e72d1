"""READ side: what pages, the API and commands show. Every query here is scoped by role."""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Count, QuerySet

from accounts.models import Role

from . import pgcopy
from . import rater_quality as rq
from .models import (
    AgreementSnapshot,
    Image,
    Membership,
    ModelScore,
    Project,
    Rating,
    RatingRevision,
    SnapshotStatus,
)
from .taxonomy import N_EMOTIONS


def project_list_for(user: Any) -> QuerySet[Project]:
    """Projects a user may open: admins all, everyone else their memberships."""
    qs = Project.objects.all()
    if not (user.is_authenticated and (user.role == Role.ADMIN or user.is_superuser)):
        qs = qs.filter(memberships__user=user)
    return qs.annotate(n_images=Count("images", distinct=True)).order_by("name")


def is_member(user: Any, project: Project) -> bool:
    return bool(user.is_authenticated and Membership.objects.filter(project=project, user=user).exists())


def can_rate(user: Any, project: Project) -> bool:
    """Raters rate the projects they belong to."""
    return bool(user.is_authenticated and user.is_active and user.role == Role.RATER and is_member(user, project))


def can_manage(user: Any, project: Project) -> bool:
    """Admins manage every project; leads only the projects they belong to; raters none."""
    if not (user.is_authenticated and user.is_active):
        return False
    if user.role == Role.ADMIN or user.is_superuser:
        return True
    return bool(user.role == Role.LEAD and is_member(user, project))


# How a rating without a lease, or with one made before provenance was recorded, is named in
# releases' raw tables (allocation_reasons).
IMPORTED, UNRECORDED = "imported", "unrecorded"


def allocation_reasons(project: Project, image_ids: np.ndarray, rater_ids: np.ndarray,
                       emotions: np.ndarray | None = None, *, max_rating_id: int | None = None) -> list[str]:
    """Why each rating was collected (Assignment.allocation_reason, #17), aligned with the rows
    (image, rater[, emotion]) given (a release's raw ratings). A rating stored without a lease
    (import_ratings) is IMPORTED; one leased before provenance was recorded is UNRECORDED."""
    ratings = Rating.objects.filter(project=project)
    if max_rating_id is not None:
        ratings = ratings.filter(pk__lte=max_rating_id)
    ratings = ratings.filter(emotion__isnull=emotions is None)
    why = {(i, r, e): (w if w is not None and w != "" else (IMPORTED if w is None else UNRECORDED))
           for i, r, e, w in ratings.values_list("image_id", "rater_id", "emotion", "assignment__allocation_reason")
           .iterator(chunk_size=20000)}
    if emotions is None:
        keys = zip(image_ids.tolist(), rater_ids.tolist(), [None] * len(image_ids), strict=True)
    else:
        keys = zip(image_ids.tolist(), rater_ids.tolist(), emotions.tolist(), strict=True)
    return [why.get(k, IMPORTED) for k in keys]


def rating_rows(project: Project, *, emotion: int | None = None, max_rating_id: int | None = None,
                as_of: datetime | None = None, exclude_raters: Sequence[int] = (),
                flagged_image_ids: Collection[int] | None = None) -> pgcopy.RatingRows:
    """Every expert rating of a project as arrays, for the agreement engine and releases.

    Intensity projects: one row per (image, rater) with all emotions (emotion=None).
    Binary projects: pass `emotion` for the votes on one emotion (vectors of length 1).
    Flagged images and placeholders are included only if rated; flagged images are left out.
    Ordered by image, then rater. On PostgreSQL this streams a binary COPY (about a second for
    300,000 ratings); on the demo's SQLite it falls back to the ORM.

    Releases freeze their inputs: `max_rating_id` leaves out later ratings, and `as_of` gives the
    values a rating had at that time (from its RatingRevision history when revised since).
    `exclude_raters` (release builds only) leaves those raters' ratings out, in the query itself.
    `flagged_image_ids` (release builds only): the flagged images frozen with the release's inputs,
    left out instead of the images flagged now.
    """
    excluded = sorted({int(r) for r in exclude_raters})
    k = 1 if emotion is not None else N_EMOTIONS
    frozen = sorted({int(i) for i in flagged_image_ids}) if flagged_image_ids is not None else None
    ratings = Rating.objects.filter(project=project)
    ratings = ratings.filter(image__flagged=False) if frozen is None else ratings.exclude(image_id__in=frozen)
    ratings = ratings.filter(emotion=emotion) if emotion is not None else ratings.filter(emotion__isnull=True)
    if max_rating_id is not None:
        ratings = ratings.filter(pk__lte=max_rating_id)
    if excluded:
        ratings = ratings.exclude(rater_id__in=excluded)
    if connection.vendor != "postgresql" or as_of is not None:
        return _rating_rows_orm(ratings, k, as_of)
    head = "r.emotion = %s" if emotion is not None else "r.emotion IS NULL"
    return _copy_rating_rows(project, head, [emotion] if emotion is not None else [], k,
                             max_rating_id=max_rating_id, excluded=excluded, frozen=frozen)


def rating_rows_chunks(project: Project, *, chunk_images: int, max_rating_id: int | None = None,
                       as_of: datetime | None = None, exclude_raters: Sequence[int] = (),
                       flagged_image_ids: Collection[int] | None = None) -> Iterator[pgcopy.RatingRows]:
    """rating_rows (intensity: one row per image and rater), in chunks of at most ``chunk_images``
    of the project's images (ascending image id ranges, each image whole in one chunk; chunks may
    be empty): concatenated they are rating_rows' arrays. On PostgreSQL each chunk is its own
    binary COPY over an image id range, so only one chunk's stream is held at a time (#21: a
    million images' stream is about a gigabyte). Elsewhere, and with ``as_of``, one chunk."""
    if connection.vendor != "postgresql" or as_of is not None:
        yield rating_rows(project, max_rating_id=max_rating_id, as_of=as_of, exclude_raters=exclude_raters,
                          flagged_image_ids=flagged_image_ids)
        return
    ids = np.fromiter(Image.objects.filter(project=project).order_by("pk").values_list("pk", flat=True),
                      dtype=np.int64)
    step = max(int(chunk_images), 1)
    bounds = [(int(ids[lo]), int(ids[min(lo + step, ids.size) - 1])) for lo in range(0, ids.size, step)]
    excluded = sorted({int(r) for r in exclude_raters})
    frozen = sorted({int(i) for i in flagged_image_ids}) if flagged_image_ids is not None else None
    for first, last in bounds:
        yield _copy_rating_rows(project, "r.emotion IS NULL AND r.image_id BETWEEN %s AND %s", [first, last],
                                N_EMOTIONS, max_rating_id=max_rating_id, excluded=excluded,
                                frozen=None if frozen is None else [i for i in frozen if first <= i <= last])


def _copy_rating_rows(project: Project, head: str, head_params: list[object], k: int, *,
                      max_rating_id: int | None, excluded: list[int], frozen: list[int] | None) -> pgcopy.RatingRows:
    """One binary COPY of the project's rating rows matching ``head`` (and its parameters), ordered by
    image and rater: at most ``max_rating_id``, without the ``excluded`` raters, and without the
    images flagged now (``frozen`` None) or the ``frozen`` flagged images."""
    clause, params = head, [project.pk, *head_params]
    if max_rating_id is not None:
        clause += " AND r.id <= %s"
        params.append(max_rating_id)
    if excluded:
        clause += " AND NOT (r.rater_id = ANY(%s))"
        params.append(excluded)
    if frozen is None:
        clause += " AND NOT i.flagged"
    elif frozen:
        clause += " AND NOT (r.image_id = ANY(%s))"
        params.append(frozen)
    sql = ('SELECT r.image_id::int4, r.rater_id::int4, r."values" FROM annotation_rating r '
           "JOIN annotation_image i ON i.id = r.image_id "
           f"WHERE r.project_id = %s AND {clause} ORDER BY r.image_id, r.rater_id")
    buf = io.BytesIO()
    with connection.cursor() as cur:
        cur.copy_expert(f"COPY ({cur.mogrify(sql, params).decode()}) TO STDOUT WITH (FORMAT binary)", buf)
    return pgcopy.parse_rating_rows(buf.getbuffer(), k)


def _rating_rows_orm(ratings: QuerySet[Rating], k: int, as_of: datetime | None) -> pgcopy.RatingRows:
    rows = list(ratings.order_by("image_id", "rater_id").values_list("pk", "image_id", "rater_id", "values",
                                                                       "updated_at"))
    values = [r[3] for r in rows]
    if as_of is not None:
        changed = [i for i, r in enumerate(rows) if r[4] > as_of]
        if changed:
            # The values before the first change after `as_of` are what the rating held then.
            first_after: dict[int, list[int]] = {}
            for rating_id, old in (RatingRevision.objects.filter(rating_id__in=[rows[i][0] for i in changed],
                                                                 changed_at__gt=as_of)
                                   .order_by("rating_id", "changed_at", "pk").values_list("rating_id", "values")):
                first_after.setdefault(rating_id, old)
            for i in changed:
                values[i] = first_after.get(rows[i][0], values[i])
    return pgcopy.RatingRows(
        image_ids=np.array([r[1] for r in rows], dtype=np.int64),
        rater_ids=np.array([r[2] for r in rows], dtype=np.int64),
        values=np.array(values, dtype=np.int16).reshape(len(rows), k),
    )


@dataclass(frozen=True)
class SnapshotRows:
    """``rating_rows(project)`` with, per row, what else the agreement snapshot reads about it: the
    rating's id, created_at (epoch seconds), seconds_spent (NaN when not recorded) and, per image
    label key, the image's label as a code into ``label_values[key]`` (-1: a label that appeared
    while the rows were read)."""

    rows: pgcopy.RatingRows
    rating_ids: np.ndarray
    created: np.ndarray
    seconds: np.ndarray
    label_values: dict[str, list[Any]]
    label_codes: dict[str, np.ndarray]


# From this many images snapshot_rows reads with two COPYs at once (halves of the image ids, over two
# connections sharing one exported snapshot): PostgreSQL's side of the binary COPY is most of the read
# and one backend uses one core (#21).
SPLIT_READ_MIN_IMAGES = 50_000


def snapshot_rows(project: Project, label_keys: Sequence[str], *, split: bool | None = None) -> SnapshotRows | None:
    """Every intensity rating of the project's non-flagged images (as ``rating_rows(project)``, in
    the same order) with its id, times and image labels (``label_keys``: Image columns), in one
    binary COPY: the snapshot's drift figures and strata need no second pass over the ratings (#21).
    None off PostgreSQL (the caller reads the parts one by one there).

    ``split``: read the lower and upper halves of the image ids by two COPYs at once, the upper half
    over a second connection that imports this one's snapshot (``pg_export_snapshot``: both see the
    same data, as one COPY would); None decides by size (SPLIT_READ_MIN_IMAGES), and never inside a
    transaction of the caller's (a second connection would not see its uncommitted rows). The same
    rows either way."""
    if connection.vendor != "postgresql":
        return None
    keys = list(label_keys)
    for key in keys:
        Image._meta.get_field(key)  # FieldDoesNotExist for anything but a column of Image
    with connection.cursor() as cur:
        # the labels in use (a few per key), so that the COPY sends each row's as a small integer; the
        # image ids' range, to split the read
        cur.execute("SELECT " + "".join(f"array_agg(DISTINCT {k}::text), " for k in keys)
                    + "count(*), min(id), max(id) FROM annotation_image WHERE project_id = %s", [project.pk])
        found = cur.fetchone()
        values = {k: list(found[i] or []) for i, k in enumerate(keys)}
        n_images, lo, hi = found[len(keys):]
        label_sql = "".join(f", (COALESCE(array_position(%s::text[], i.{k}::text), 0) - 1)::int4" for k in keys)
        sql = (
            # date_part gives the double directly (EXTRACT goes through numeric); both are the exact
            # microseconds / 1e6 correctly rounded, so the same number
            'SELECT r.image_id::int4, r.rater_id::int4, r."values", r.id::int8, '
            "date_part('epoch', r.created_at), COALESCE(r.seconds_spent::float8, 'NaN'::float8)"
            f"{label_sql} FROM annotation_rating r JOIN annotation_image i ON i.id = r.image_id "
            # no ORDER BY: sorting these wide rows would spill to disk in PostgreSQL; numpy sorts below
            "WHERE r.project_id = %s AND r.emotion IS NULL AND NOT i.flagged"
        )
        extra = [("id", ">i8"), ("at", ">f8"), ("seconds", ">f8"), *((f"label_{k}", ">i4") for k in keys)]
        params = [*(values[k] for k in keys), project.pk]
        if split is None:
            split = n_images >= SPLIT_READ_MIN_IMAGES
        if split and not connection.in_atomic_block and lo is not None and hi > lo:
            mid = lo + (hi - lo) // 2
            low = cur.mogrify(sql + " AND r.image_id <= %s", [*params, mid]).decode()
            high = cur.mogrify(sql + " AND r.image_id > %s", [*params, mid]).decode()
            parts = _copy_two(low, high, extra)
        else:
            parts = [_copy_rows(cur, cur.mogrify(sql, params).decode(), extra)]
    fields = ("image_ids", "rater_ids", "values")
    got = pgcopy.RatingRows(*(np.concatenate([getattr(p[0], f) for p in parts]) if len(parts) > 1
                              else getattr(parts[0][0], f) for f in fields))
    cols = {name: np.concatenate([p[1][name] for p in parts]) if len(parts) > 1 else parts[0][1][name]
            for name, _ in extra}
    del parts
    # by image, then rater: as rating_rows (the rows usually come so already: then nothing is copied)
    ids, raters = got.image_ids, got.rater_ids
    in_order = bool(ids.size < 2 or ((ids[1:] > ids[:-1]) | ((ids[1:] == ids[:-1]) & (raters[1:] > raters[:-1]))).all())
    if in_order:
        return SnapshotRows(got, cols["id"], cols["at"], cols["seconds"], values,
                            {k: cols[f"label_{k}"] for k in keys})
    order = np.lexsort((got.rater_ids, got.image_ids))
    rows = pgcopy.RatingRows(got.image_ids[order], got.rater_ids[order], got.values[order])
    return SnapshotRows(rows, cols["id"][order], cols["at"][order], cols["seconds"][order], values,
                        {k: cols[f"label_{k}"][order] for k in keys})


_Parsed = tuple[pgcopy.RatingRows, dict[str, np.ndarray]]


def _copy_rows(cur: Any, query: str, extra: list[tuple[str, str]]) -> _Parsed:
    """One binary COPY of snapshot_rows' rows, parsed while it arrives: the stream itself is never
    held whole (about 1 GB at a million images)."""
    stream = pgcopy.RowStream(N_EMOTIONS, extra)
    sink = stream.sink()
    cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)", sink)
    sink.flush()
    return stream.result()


def _copy_two(low: str, high: str, extra: list[tuple[str, str]]) -> list[_Parsed]:
    """``_copy_rows`` of both queries at once: ``high`` in a thread over a second connection that
    imports this connection's snapshot (REPEATABLE READ on both), ``low`` here. The driver lets go of
    the GIL while it waits for PostgreSQL, so the two backends work on both cores."""
    import threading

    from django.db import connections, transaction

    got: dict[str, Any] = {}
    ready = threading.Event()

    def other(snapshot_id: str) -> None:
        conn = connections.create_connection("default")
        try:
            with conn.cursor() as c2:
                c2.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                c2.execute("SET TRANSACTION SNAPSHOT %s", [snapshot_id])
                ready.set()
                got["high"] = _copy_rows(c2, high, extra)
                c2.execute("COMMIT")
        except BaseException as exc:  # re-raised in the caller's thread
            got["error"] = exc
        finally:
            ready.set()
            conn.close()

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cur.execute("SELECT pg_export_snapshot()")
        thread = threading.Thread(target=other, args=(cur.fetchone()[0],), name="snapshot_rows upper half")
        thread.start()
        try:
            ready.wait()  # the snapshot is imported (or the thread failed) before anything here ends it
            lower = _copy_rows(cur, low, extra)
        finally:
            thread.join()
    if "error" in got:
        raise got["error"]
    return [lower, got["high"]]


def agreement_latest(project: Project) -> AgreementSnapshot | None:
    """The most recent finished agreement snapshot of a project, or None."""
    return AgreementSnapshot.objects.filter(project=project, status=SnapshotStatus.DONE).order_by(
        "-created_at", "-id").first()


def median_seconds_per_rater(project: Project) -> dict[int, float]:
    """Median time per rating (claim to submit) of each rater in a project, computed in the database."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(
                "SELECT rater_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds_spent) FROM annotation_rating "
                "WHERE project_id = %s AND seconds_spent IS NOT NULL GROUP BY rater_id", [project.pk])
            return {int(r): float(m) for r, m in cur.fetchall()}
    per: dict[int, list[float]] = {}
    for rater_id, s in Rating.objects.filter(project=project, seconds_spent__isnull=False).values_list(
            "rater_id", "seconds_spent"):
        if s is not None:  # never: filtered above
            per.setdefault(rater_id, []).append(s)
    return {r: float(np.median(v)) for r, v in per.items()}


def image_list(project: Project, *, flagged: bool | None = None, name: str | None = None,
               min_ratings: int | None = None, ethnicity: str | None = None, gender: str | None = None,
               age: int | None = None) -> QuerySet[Image]:
    """A project's images for leads, with their rating counts, filtered as asked."""
    qs = Image.objects.filter(project=project)
    if flagged is not None:
        qs = qs.filter(flagged=flagged)
    if name:
        qs = qs.filter(name=name)
    if min_ratings is not None:
        qs = qs.filter(n_ratings__gte=min_ratings)
    if ethnicity:
        qs = qs.filter(ethnicity=ethnicity)
    if gender:
        qs = qs.filter(gender=gender)
    if age is not None:
        qs = qs.filter(age=age)
    return qs.order_by("id")


def rating_export(project: Project, *, rater: int | None = None, image: str | None = None,
                  since: datetime | None = None) -> QuerySet[Rating]:
    qs = Rating.objects.filter(project=project).select_related("image")
    if rater is not None:
        qs = qs.filter(rater_id=rater)
    if image:
        qs = qs.filter(image__name=image)
    if since is not None:
        qs = qs.filter(updated_at__gte=since)
    return qs.order_by("id")


def model_score_list(project: Project) -> QuerySet[ModelScore]:
    return ModelScore.objects.filter(project=project).select_related("image").order_by("id")


def snapshot_rater_alerts(project: Project, raters: Sequence[dict[str, Any]] | None) -> list[tuple[str, list[str]]]:
    """(rater label, reasons) for each row of a stored snapshot's "raters" that the project's alert
    thresholds flag (annotation.rater_quality.rater_alerts): the home page, the digest and the
    rater.alert webhook say the same."""
    thresholds = rq.AlertThresholds(min_kappa=project.alert_min_kappa, min_retest_alpha=project.alert_min_retest_alpha,
                                    speed_ratio=project.alert_speed_ratio)
    out = []
    for rater in raters or []:
        reasons = rq.rater_alerts(mean_kappa=rater.get("mean_kappa"),
                                  retest_alpha=(rater.get("retest") or {}).get("mean_alpha"),
                                  usual_seconds=(rater.get("drift") or {}).get("usual_seconds"),
                                  recent_seconds=(rater.get("drift") or {}).get("recent_seconds"),
                                  thresholds=thresholds)
        if reasons:
            out.append((str(rater.get("label", "a rater")), list(reasons)))
    return out
