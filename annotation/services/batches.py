"""Batches (rounds, #22): make, open, pause, close and change them; their agreement and alerts.

The rules are in annotation/models/batch.py; serving is in annotation/rating/claim.py; what leads and
raters see is read by annotation/selectors_batches.py.

Every function here checks its input first and raises BatchError naming the problem before it
stores anything; each change is one transaction with its audit event.

Making a batch: `batch_create_from_spec` takes one spec (the same from the command line, the pages
and the API) saying where the images come from:

- {"images": [names or ids]}: chosen images;
- {"filter": {...}}: every image that passes a filter (FILTER_KEYS: a demographic stratum, unrated,
  fewer than N ratings, disputed, flagged and then confirmed usable by a lead), highest priority
  first, optionally at most `limit`;
- {"sample": {"size": N, "seed": S, "strata": [...], "filter": {...}}}: a stratified random sample
  of the filtered pool (annotation.batching.stratified_sample: proportional, seeded, reproducible);
- {"disputed": {"image_ids": [...]}} or {"disputed": {"limit": N}}: the disputed gallery's images
  (chosen ones, or its first N), sent back as a round.

Imports add their images to a batch by name (`batch_for_import`, `batch_add_images`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.utils import timezone

from accounts.models import Role, User
from annotation import selectors_batches
from annotation.batching import SampleError, stratified_sample
from annotation.models import (
    Assignment,
    AssignmentStatus,
    Batch,
    BatchImage,
    BatchSource,
    BatchState,
    FlagResolution,
    Image,
    ImageFlag,
    Project,
)
from annotation.services.audit import audit_record

MAX_TARGET = 50
MAX_PRIORITY = 1_000_000
FILTER_KEYS = ("ethnicity", "gender", "age", "unrated", "fewer_than", "disputed", "usable_after_flag", "limit")
STRATA = ("ethnicity", "gender", "age")
_CHUNK = 2000
# Which states may follow which (closed is final: a new round is a new batch).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    BatchState.DRAFT: (BatchState.OPEN, BatchState.CLOSED),
    BatchState.OPEN: (BatchState.PAUSED, BatchState.CLOSED),
    BatchState.PAUSED: (BatchState.OPEN, BatchState.CLOSED),
    BatchState.CLOSED: (),
}


class BatchError(ValueError):
    """A refused batch operation; the message names the field and what is allowed."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


# --- checks ---------------------------------------------------------------------------------------


def _check_name(project: Project, name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise BatchError("name: give a name of 1 to 100 characters", "name")
    if Batch.objects.filter(project=project, name=name).exists():
        raise BatchError(f"name: project {project.slug} already has a batch named {name!r}", "name")
    return name


def _check_target(project: Project, target: int | None) -> int:
    if target is None:
        return project.target_ratings
    if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= MAX_TARGET:
        raise BatchError(f"target_ratings: {target!r} out of range (allowed: 1..{MAX_TARGET})", "target_ratings")
    return target


def _check_priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > MAX_PRIORITY:
        raise BatchError(f"priority: {priority!r} out of range (allowed: -{MAX_PRIORITY}..{MAX_PRIORITY})", "priority")
    return priority


def _check_due(due_on: date | str | None) -> date | None:
    if due_on is None or due_on == "":
        return None
    if isinstance(due_on, date):
        return due_on
    try:
        return date.fromisoformat(str(due_on))
    except ValueError:
        raise BatchError(f"due_on: {due_on!r} is not a date like 2026-03-14", "due_on") from None


def _check_raters(project: Project, raters: Sequence[User | int | str] | None) -> list[User] | None:
    """The chosen raters as users (by user, id or email); each must be an active rater of the
    project. None = every rater of the project."""
    if raters is None:
        return None
    if not isinstance(raters, (list, tuple)):
        raise BatchError("raters: give a list of raters (emails or ids), or none for every rater", "raters")
    ids = [r.pk for r in raters if isinstance(r, User)] + [r for r in raters if isinstance(r, int)]
    emails = [r.strip().lower() for r in raters if isinstance(r, str) and r.strip()]
    members = User.objects.filter(memberships__project=project, role=Role.RATER, is_active=True)
    found = list(members.filter(Q(pk__in=ids) | Q(email__in=emails)).distinct())
    missing = sorted({str(i) for i in ids} - {str(u.pk) for u in found}
                     | set(emails) - {u.email.lower() for u in found})
    if missing:
        raise BatchError(f"raters: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not an active rater "
                         f"of project {project.slug}", "raters")
    if not found:
        raise BatchError("raters: choose at least one rater, or let every rater of the project rate it", "raters")
    return found


def _image_ids(project: Project, refs: Sequence[int | str]) -> list[int]:
    """Image ids for names or ids of the project's images, in the order given (duplicates once)."""
    ids = [r for r in refs if isinstance(r, int) and not isinstance(r, bool)]
    names = [r for r in refs if isinstance(r, str)]
    by_id = set(Image.objects.filter(project=project, pk__in=ids).values_list("pk", flat=True)) if ids else set()
    by_name: dict[str, int] = {}
    for start in range(0, len(names), _CHUNK):
        by_name.update(Image.objects.filter(project=project, name__in=names[start:start + _CHUNK])
                       .values_list("name", "pk"))
    unknown = [str(r) for r in refs if (r not in by_id if isinstance(r, int) else r not in by_name)]
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise BatchError(f"images: {len(unknown)} not in project {project.slug}: {shown}", "images")
    out: list[int] = []
    seen: set[int] = set()
    for r in refs:
        pk = r if isinstance(r, int) else by_name[r]
        if pk not in seen:
            seen.add(pk)
            out.append(pk)
    return out


# --- where the images come from ---------------------------------------------------------------------


def images_filtered(project: Project, spec: dict[str, Any]) -> list[int]:
    """Ids of the project's usable images (a file, not flagged) passing the filter `spec`, highest
    priority first. Keys (FILTER_KEYS): ethnicity, gender, age (a stratum, exact values), unrated
    (true: no rating yet), fewer_than (N: fewer than N ratings), disputed (true: as the disputed
    gallery: two or more ratings, not decided), usable_after_flag (true: flagged by a rater and
    confirmed usable by a lead), limit (at most N images)."""
    unknown = sorted(map(str, set(spec) - set(FILTER_KEYS)))
    if unknown:
        raise BatchError(f"filter: unknown key(s) {', '.join(unknown)} (known: {', '.join(FILTER_KEYS)})", "filter")
    qs = Image.objects.filter(project=project, flagged=False).exclude(file="")
    for key in ("ethnicity", "gender"):
        if spec.get(key) not in (None, ""):
            qs = qs.filter(**{key: str(spec[key])})
    if spec.get("age") not in (None, ""):
        qs = qs.filter(age=_int(spec["age"], "filter.age", 0, 200))
    if spec.get("unrated"):
        qs = qs.filter(n_ratings=0)
    if spec.get("fewer_than") not in (None, ""):
        qs = qs.filter(n_ratings__lt=_int(spec["fewer_than"], "filter.fewer_than", 1, 1000))
    if spec.get("disputed"):
        qs = qs.filter(n_ratings__gte=2, adjudication__in=["", "more_ratings"])
    if spec.get("usable_after_flag"):
        qs = qs.filter(Exists(ImageFlag.objects.filter(image=OuterRef("pk"), resolution=FlagResolution.DISMISSED)))
    qs = qs.order_by("-priority", "id")
    if spec.get("limit") not in (None, ""):
        qs = qs[:_int(spec["limit"], "filter.limit", 1, 10_000_000)]
    return list(qs.values_list("pk", flat=True))


def images_sampled(project: Project, spec: dict[str, Any]) -> list[int]:
    """A stratified random sample (annotation.batching.stratified_sample) of the images passing
    spec["filter"] (default: every usable image). Keys: size, seed (default 0), strata (default
    ethnicity, gender, age; any of them, or none for a simple random sample), filter."""
    unknown = sorted(set(spec) - {"size", "seed", "strata", "filter"})
    if unknown:
        raise BatchError(f"sample: unknown key(s) {', '.join(unknown)} (known: size, seed, strata, filter)", "sample")
    size = _int(spec.get("size"), "sample.size", 1, 10_000_000)
    seed = _int(spec.get("seed", 0), "sample.seed", 0, 2**32 - 1)
    strata = spec.get("strata", list(STRATA))
    if not isinstance(strata, list):
        raise BatchError(f"sample.strata: give a list (any of {', '.join(STRATA)})", "sample")
    bad = [s for s in strata if s not in STRATA]
    if bad:
        raise BatchError(f"sample.strata: {', '.join(map(str, bad))} unknown (allowed: {', '.join(STRATA)})", "sample")
    flt = spec.get("filter") or {}
    if not isinstance(flt, dict):
        raise BatchError("sample.filter: give an object of filter settings", "sample")
    pool = images_filtered(project, flt)
    labels: dict[int, tuple[Any, ...]] = {}
    for start in range(0, len(pool), 50_000):
        for row in Image.objects.filter(pk__in=pool[start:start + 50_000]).values_list("pk", *strata):
            labels[row[0]] = tuple(row[1:])
    try:
        return stratified_sample(pool, [labels[i] for i in pool], size, seed=seed)
    except SampleError as exc:
        raise BatchError(f"sample: {exc}", "sample") from None


def images_disputed(project: Project, spec: dict[str, Any]) -> list[int]:
    """The disputed gallery's images: the chosen `image_ids` (each must be in the gallery) or its
    first `limit` (same order as the gallery: highest priority first)."""
    if spec.get("image_ids"):
        if not isinstance(spec["image_ids"], list):
            raise BatchError("disputed.image_ids: give a list of image ids", "images")
        ids = _image_ids(project, [_int(i, "disputed.image_ids", 1, 2**62) for i in spec["image_ids"]])
        gallery = set(Image.objects.filter(pk__in=ids, n_ratings__gte=2, adjudication__in=["", "more_ratings"],
                                           flagged=False).values_list("pk", flat=True))
        outside = [i for i in ids if i not in gallery]
        if outside:
            raise BatchError(f"disputed: image(s) {', '.join(map(str, outside[:5]))} are not in the disputed gallery "
                             "(two or more ratings, not decided, not flagged)", "images")
        return ids
    return images_filtered(project, {"disputed": True, "limit": _int(spec.get("limit"), "disputed.limit", 1,
                                                                      10_000_000)})


def _int(value: Any, field: str, lo: int, hi: int) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise BatchError(f"{field}: {value!r} is not a whole number", field.split(".")[0]) from None
    if isinstance(value, float) and value != out or not lo <= out <= hi:
        raise BatchError(f"{field}: {value!r} out of range (allowed: {lo}..{hi})", field.split(".")[0])
    return out


SOURCES = {"images": BatchSource.MANUAL, "filter": BatchSource.FILTER, "sample": BatchSource.SAMPLE,
           "disputed": BatchSource.DISPUTED}


def spec_images(project: Project, spec: dict[str, Any]) -> tuple[str, list[int]]:
    """(source, image ids) of a batch spec (module docstring); exactly one source key."""
    keys = [k for k in SOURCES if k in spec]
    if len(keys) != 1 or set(spec) - set(SOURCES):
        raise BatchError(f"spec: give exactly one of {', '.join(SOURCES)}", "spec")
    key = keys[0]
    body = spec[key]
    if key == "images":
        if not isinstance(body, list):
            raise BatchError("images: give a list of image names or ids", "images")
        return SOURCES[key], _image_ids(project, body)
    if not isinstance(body, dict):
        raise BatchError(f"{key}: give an object of settings", key)
    make = {"filter": images_filtered, "sample": images_sampled, "disputed": images_disputed}[key]
    return SOURCES[key], make(project, body)


# --- making and changing batches ---------------------------------------------------------------------


def batch_create_from_spec(*, project: Project, name: str, spec: dict[str, Any], target_ratings: int | None = None,
                           priority: int = 0, due_on: date | str | None = None,
                           raters: Sequence[User | int | str] | None = None, actor: Any = None) -> Batch:
    """A draft batch of the images `spec` names (module docstring). Refuses an empty selection."""
    source, ids = spec_images(project, spec)
    if not ids:
        raise BatchError(f"{next(iter(spec))}: no image of project {project.slug} matches", "images")
    return batch_create(project=project, name=name, image_ids=ids, target_ratings=target_ratings, priority=priority,
                        due_on=due_on, raters=raters, source=source, source_spec=spec, actor=actor)


@transaction.atomic
def batch_create(*, project: Project, name: str, image_ids: Sequence[int], target_ratings: int | None = None,
                 priority: int = 0, due_on: date | str | None = None, raters: Sequence[User | int | str] | None = None,
                 source: str = BatchSource.MANUAL, source_spec: dict[str, Any] | None = None,
                 actor: Any = None) -> Batch:
    """A draft batch of the given images (ids of the project's images, checked). Target defaults to
    the project's; `raters` None lets every rater of the project rate it."""
    name = _check_name(project, name)
    target = _check_target(project, target_ratings)
    prio = _check_priority(priority)
    due = _check_due(due_on)
    chosen = _check_raters(project, raters)
    ids = _image_ids(project, list(image_ids))
    batch = Batch.objects.create(project=project, name=name, target_ratings=target, priority=prio, due_on=due,
                                 all_raters=chosen is None, source=source, source_spec=source_spec or {},
                                 created_by=actor if getattr(actor, "is_authenticated", False) else None)
    if chosen:
        batch.raters.set(chosen)
    _add(batch, ids)
    audit_record(actor=actor, action="batch.created", project=project, obj=batch, name=name, source=source,
                 images=batch.n_images, target=target)
    return batch


def _add(batch: Batch, ids: list[int]) -> int:
    """Add images (ids checked by the caller) with their queue state; already members stay. Returns
    how many were new. The batch row is locked (n_images)."""
    Batch.objects.select_for_update().filter(pk=batch.pk).first()
    before = BatchImage.objects.filter(batch=batch).count()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        rows = Image.objects.filter(pk__in=chunk).values_list("pk", "priority", "flagged", "file", "n_ratings",
                                                               "extra_target")
        BatchImage.objects.bulk_create(
            [BatchImage(batch=batch, image_id=pk, priority=prio,
                        open=not flagged and bool(file) and n < batch.target_ratings + extra)
             for pk, prio, flagged, file, n, extra in rows], ignore_conflicts=True)
    batch.n_images = BatchImage.objects.filter(batch=batch).count()
    Batch.objects.filter(pk=batch.pk).update(n_images=batch.n_images)
    return batch.n_images - before


@transaction.atomic
def batch_add_images(*, batch: Batch, image_ids: Sequence[int | str], actor: Any = None) -> int:
    """Add images (names or ids of the batch's project) to a batch that is not closed; returns how
    many were not in it yet."""
    if batch.state == BatchState.CLOSED:
        raise BatchError(f"batch {batch.name!r} is closed; make a new batch", "state")
    ids = _image_ids(batch.project, list(image_ids))
    added = _add(batch, ids)
    if added:
        audit_record(actor=actor, action="batch.images_added", project=batch.project, obj=batch, added=added)
    return added


def batch_for_import(*, project: Project, name: str, actor: Any = None) -> tuple[Batch, bool]:
    """The batch an import adds its images to (import_images --batch NAME, the upload API) and
    whether it was made now: the project's batch of that name if it is not closed, else a new draft
    one (source: import). Call before importing, so a refused name stores nothing; if nothing is
    imported, `batch_discard_if_empty` takes a batch made now away again."""
    batch = Batch.objects.filter(project=project, name=(name or "").strip()).first()
    if batch is not None:
        if batch.state == BatchState.CLOSED:
            raise BatchError(f"batch {batch.name!r} is closed; name a new batch", "batch")
        return batch, False
    with transaction.atomic():
        return batch_create(project=project, name=name, image_ids=[], source=BatchSource.IMPORT, actor=actor), True


def batch_discard_if_empty(batch: Batch) -> bool:
    """Remove a draft batch that has no images (an import into a new batch that imported nothing)."""
    return bool(Batch.objects.filter(pk=batch.pk, state=BatchState.DRAFT, n_images=0).delete()[0])


def _refresh(batch: Batch) -> None:
    """Recompute the queue state of the batch's images (after its target changed)."""
    image = Image.objects.filter(pk=OuterRef("image_id"))
    BatchImage.objects.filter(batch=batch).update(
        priority=Subquery(image.values("priority")[:1]),
        open=Exists(image.filter(flagged=False, n_ratings__lt=batch.target_ratings + F("extra_target")).exclude(file="")))


@transaction.atomic
def batch_update(*, batch: Batch, actor: Any = None, **changes: Any) -> Batch:
    """Change a batch that is not closed: name, target_ratings, priority, due_on, raters (a list;
    None = every rater). Unknown keys are refused."""
    allowed = {"name", "target_ratings", "priority", "due_on", "raters"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise BatchError(f"unknown setting(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    locked = Batch.objects.select_for_update().get(pk=batch.pk)
    if locked.state == BatchState.CLOSED:
        raise BatchError(f"batch {locked.name!r} is closed and cannot change", "state")
    project = locked.project
    fields = []
    if "name" in changes and changes["name"] != locked.name:
        locked.name = _check_name(project, changes["name"])
        fields.append("name")
    if "target_ratings" in changes:
        locked.target_ratings = _check_target(project, changes["target_ratings"])
        fields.append("target_ratings")
    if "priority" in changes:
        locked.priority = _check_priority(changes["priority"])
        fields.append("priority")
    if "due_on" in changes:
        locked.due_on = _check_due(changes["due_on"])
        locked.behind_alert_at = None
        fields += ["due_on", "behind_alert_at"]
    chosen: list[User] | None = None
    if "raters" in changes:
        chosen = _check_raters(project, changes["raters"])
        locked.all_raters = chosen is None
        fields.append("all_raters")
    locked.save(update_fields=fields)
    if "raters" in changes:
        locked.raters.set(chosen or [])
    if "target_ratings" in changes:
        _refresh(locked)
    audit_record(actor=actor, action="batch.updated", project=project, obj=locked,
                 changed=sorted(changes), **{k: str(v) for k, v in changes.items() if k != "raters"})
    return locked


def batch_set_state(*, batch: Batch, state: str, actor: Any = None, now: Any = None) -> Batch:
    """Open, pause or close a batch (TRANSITIONS). Pausing or closing returns the open leases the
    batch gave out (they expire now; the raters' next claim serves other work). Opening refuses a
    batch without images and, for now, binary projects (rounds serve intensity projects)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Batch.objects.select_for_update().select_related("project").get(pk=batch.pk)
        if state not in TRANSITIONS:
            raise BatchError(f"state: {state!r} unknown (allowed: {', '.join(TRANSITIONS)})", "state")
        if state == locked.state:
            return locked  # idempotent
        if state not in TRANSITIONS[locked.state]:
            allowed = ", ".join(TRANSITIONS[locked.state]) or "none: closed is final, make a new batch"
            raise BatchError(f"state: batch {locked.name!r} is {locked.state} and cannot become {state} "
                             f"(allowed: {allowed})", "state")
        if state == BatchState.OPEN:
            if locked.n_images == 0:
                raise BatchError(f"batch {locked.name!r} has no images; add some first", "state")
            if locked.project.is_binary:
                raise BatchError("rounds serve intensity projects; this project is binary", "state")
            _refresh(locked)
        fields = ["state"]
        if state == BatchState.OPEN and locked.opened_at is None:
            locked.opened_at = now
            fields.append("opened_at")
        if state == BatchState.CLOSED:
            locked.closed_at = now
            fields.append("closed_at")
        previous, locked.state = locked.state, state
        locked.save(update_fields=fields)
        returned = 0
        if state in (BatchState.PAUSED, BatchState.CLOSED):
            returned = Assignment.objects.filter(batch=locked, status=AssignmentStatus.OPEN).update(
                status=AssignmentStatus.EXPIRED, finished_at=now)
        audit_record(actor=actor, action=f"batch.{state}", project=locked.project, obj=locked, previous=previous,
                     leases_returned=returned)
    return locked


def batch_get(project: Project, name: str) -> Batch:
    """The project's batch of that name; BatchError naming the known ones otherwise."""
    batch = Batch.objects.filter(project=project, name=name).first()
    if batch is None:
        known = ", ".join(Batch.objects.filter(project=project).values_list("name", flat=True)[:20]) or "none yet"
        raise BatchError(f"no batch named {name!r} in project {project.slug} (known: {known})", "batch")
    return batch


def batch_image_ids(batches: Sequence[Batch]) -> list[int]:
    """The images of the batches, each once, sorted (for a release cut from batches)."""
    return sorted(set(BatchImage.objects.filter(batch__in=list(batches)).values_list("image_id", flat=True)))


# --- alerts (the snapshot job and a periodic job; round agreement: annotation.services.agreement_snapshot) ---


def batch_alerts_sweep(*, now: Any = None) -> list[tuple[str, str]]:
    """batch_alerts_raise for every project with an open round (the periodic job)."""
    raised: list[tuple[str, str]] = []
    for project in Project.objects.filter(batches__state=BatchState.OPEN).distinct().order_by("pk"):
        raised += batch_alerts_raise(project, now=now)
    return raised


def batch_alerts_raise(project: Project, *, now: Any = None) -> list[tuple[str, str]]:
    """Raise, once each, the alerts of the project's open batches: "batch.completed" when every
    image reached the batch's target, "batch.behind" when the batch will miss its due date at its
    current pace (after it has been open a day, or once the day is here). Each alert is an audit
    event, a webhook event and an email to the project's leads. Returns (batch name, event) pairs."""
    from accounts.emails import email_render, email_send_later, site_url
    from annotation.services.webhooks import webhooks_emit

    now = now or timezone.now()
    raised: list[tuple[str, str]] = []
    for batch in Batch.objects.filter(project=project, state=BatchState.OPEN):
        progress = selectors_batches.batch_progress(batch, today=timezone.localdate(now))
        event = None
        if progress.complete and batch.completed_alert_at is None:
            event, field = "batch.completed", "completed_alert_at"
        elif (not progress.complete and progress.projection.behind and batch.behind_alert_at is None
              and batch.due_on is not None and batch.opened_at is not None
              and (now - batch.opened_at >= timedelta(days=1) or timezone.localdate(now) >= batch.due_on)):
            event, field = "batch.behind", "behind_alert_at"
        if event is None:
            continue
        with transaction.atomic():
            if not Batch.objects.filter(pk=batch.pk, **{f"{field}__isnull": True}).update(**{field: now}):
                continue  # another worker raised it
            data = {"batch": batch.name, "images": progress.n_images, "target": batch.target_ratings,
                    "coverage_percent": progress.coverage_percent,
                    "due_on": batch.due_on.isoformat() if batch.due_on else None,
                    "projected_on": (progress.projection.projected_on.isoformat()
                                     if progress.projection.projected_on else None),
                    "pace_per_day": round(progress.projection.pace_per_day, 2)}
            audit_record(actor=None, action=f"{event}_alert", project=project, obj=batch, **data)
            webhooks_emit(project, event, data)
            leads = User.objects.filter(memberships__project=project, role=Role.LEAD, is_active=True)
            subject, body = email_render("batch_alert", {
                "project": project, "batch": batch, "event": event, "p": progress,
                "url": site_url(f"/projects/{project.slug}/batches/{batch.pk}/")})
            for lead in leads:
                email_send_later(to=lead.email, subject=subject, body=body, key=f"{event}:{batch.pk}:{lead.pk}")
        raised.append((batch.name, event))
    return raised
