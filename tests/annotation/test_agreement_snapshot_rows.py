"""The snapshot's one-pass read (selectors.snapshot_rows): the same rows as rating_rows, the same
times as the drift query, the same labels as the per-image lookup, and so the same payload (#21)."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from annotation import selectors
from annotation.models import Rating
from annotation.services import agreement_snapshot as snap
from tests.factories import make_image, make_project, make_user

pytestmark = pytest.mark.django_db


def _project_with_awkward_rows():
    """Ratings with ties and distinct times, missing speeds, blank and missing labels, a flagged
    image, another project's rating and a binary vote (the last three stay out)."""
    rng = np.random.default_rng(11)
    project, other = make_project(), make_project()
    raters = [make_user() for _ in range(4)]
    images = []
    for n in range(24):
        images.append(make_image(project, ethnicity=["A", "B", ""][n % 3], gender=["man", "woman"][n % 2],
                                 age=None if n % 5 == 0 else 20 + 10 * (n % 4), flagged=n == 7))
    start = datetime(2026, 11, 29, 23, 0, tzinfo=UTC)
    made = []
    for n, image in enumerate(images):
        for rater in rng.choice(raters, size=3, replace=False):
            made.append(Rating.objects.create(
                project=project, image=image, rater=rater, values=[int(v) for v in rng.integers(0, 8, size=40)],
                scale_max=7, taxonomy_version="emonet-face-1", seconds_spent=None if n % 4 == 0 else 5.0 + n))
    for i, rating in enumerate(made):  # pairs of ratings share a time: the id breaks the tie
        Rating.objects.filter(pk=rating.pk).update(created_at=start + timedelta(minutes=7 * (i // 2), microseconds=i % 3))
    Rating.objects.create(project=other, image=make_image(other), rater=raters[0], values=[7] * 40, scale_max=7,
                          taxonomy_version="emonet-face-1")
    return project, raters


def test_one_read_gives_the_rows_times_and_labels_of_the_separate_reads():
    project, _ = _project_with_awkward_rows()
    wide = selectors.snapshot_rows(project, snap.STRATA_KEYS)
    assert wide is not None
    rows = selectors.rating_rows(project)
    assert np.array_equal(wide.rows.image_ids, rows.image_ids) and np.array_equal(wide.rows.rater_ids, rows.rater_ids)
    assert np.array_equal(wide.rows.values, rows.values) and wide.rows.values.dtype == np.int16
    assert len(rows.image_ids) == 23 * 3  # the flagged image's ratings and the other project's are out
    # times: the drift query's, row for row (it is ordered by rater, time, id)
    image_ids, rater_ids, created, spent = snap._drift_rows(project)
    by_time = np.lexsort((wide.rating_ids, wide.created, wide.rows.rater_ids))
    assert np.array_equal(wide.rows.image_ids[by_time], image_ids)
    assert np.array_equal(wide.rows.rater_ids[by_time], rater_ids)
    assert np.array_equal(wide.created[by_time], created)  # bit for bit, microseconds included
    assert np.array_equal(wide.seconds[by_time], spent, equal_nan=True) and np.isnan(spent).any()
    # labels: the per-image lookup's, "unknown" for blank and missing ones
    expected = snap._strata_labels(project, rows.image_ids)
    coded = snap._row_labels(wide)  # codes into the names (ag.CodedLabels)
    got = {key: c.names[c.codes] for key, c in coded.items()}
    for key in snap.STRATA_KEYS:
        assert got[key].tolist() == expected[key].tolist()
    assert "unknown" in got["ethnicity"].tolist() and "unknown" in got["age"].tolist()


def test_the_payload_is_the_same_as_with_the_separate_reads(monkeypatch):
    project, _ = _project_with_awkward_rows()
    one_pass = snap.agreement_compute(project, n_boot=200, seed=3)
    monkeypatch.setattr(selectors, "snapshot_rows", lambda *a, **k: None)  # the reads one by one (SQLite's way)
    separate = snap.agreement_compute(project, n_boot=200, seed=3)
    assert one_pass == separate
    assert any(r["drift"] and r["drift"]["weeks"] for r in one_pass["raters"])
    assert set(one_pass["strata"]) == {"ethnicity", "gender", "age"}


def test_empty_project_reads_nothing():
    wide = selectors.snapshot_rows(make_project(), snap.STRATA_KEYS)
    assert wide is not None and wide.rows.values.shape == (0, 40) and wide.created.shape == (0,)


def _same_rows(a: selectors.SnapshotRows, b: selectors.SnapshotRows) -> None:
    for x, y in [(a.rows.image_ids, b.rows.image_ids), (a.rows.rater_ids, b.rows.rater_ids),
                 (a.rows.values, b.rows.values), (a.rating_ids, b.rating_ids), (a.created, b.created)]:
        assert np.array_equal(x, y) and x.dtype == y.dtype
    assert np.array_equal(a.seconds, b.seconds, equal_nan=True)
    assert a.label_values == b.label_values
    assert all(np.array_equal(a.label_codes[k], b.label_codes[k]) for k in a.label_codes)


@pytest.mark.django_db(transaction=True)
def test_the_split_read_over_two_connections_gives_the_same_rows():
    """Committed data (a second connection sees it): the two halves read at once over two
    connections, joined, are the one COPY's rows; inside a caller's transaction it reads once."""
    from django.db import transaction

    project, _ = _project_with_awkward_rows()
    one = selectors.snapshot_rows(project, snap.STRATA_KEYS, split=False)
    two = selectors.snapshot_rows(project, snap.STRATA_KEYS, split=True)
    assert one is not None and two is not None and len(one.rows.image_ids) == 23 * 3
    _same_rows(one, two)
    with transaction.atomic():
        Rating.objects.filter(project=project).update(seconds_spent=1.5)  # uncommitted: only this connection sees it
        inside = selectors.snapshot_rows(project, snap.STRATA_KEYS, split=True)
        assert inside is not None and (inside.seconds == 1.5).all()
        transaction.set_rollback(True)
