"""The snapshot's sections in forked workers (#21, annotation.agreement.forked): the same numbers as
the serial path bit for bit, a worker's error raised as itself in the caller, a lost worker
reported by name, nothing left running or waited for forever."""

import json
import os
import signal
import time

import numpy as np
import pytest

from annotation import agreement as ag
from annotation import rater_quality as rq
from annotation.agreement import project as ag_project
from annotation.agreement.forked import Forked, WorkerLost
from annotation.models import AgreementSnapshot, Image, Rating, SnapshotStatus
from annotation.services import agreement_snapshot as snap
from tests.factories import make_project, make_user

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_the_result_comes_from_another_process():
    big = np.arange(1_000_000, dtype=np.int64)  # seen copy-on-write, not sent
    worker = Forked(lambda: (os.getpid(), int(big.sum()), big[::100_000] * 2))
    pid, total, part = worker.result()
    assert pid != os.getpid()
    assert total == 499_999_500_000
    assert part.tolist() == list(range(0, 2_000_000, 200_000))
    assert worker.result()[1] == total  # asked again: the same, no second wait


def test_serial_runs_here_when_asked():
    assert Forked(os.getpid, parallel=False).result() == os.getpid()


def test_the_workers_error_is_raised_as_itself_with_its_traceback():
    def bad() -> None:
        raise ValueError("emotion 3 has a value 9 outside the scale 0..7")

    with pytest.raises(ValueError, match="emotion 3 has a value 9 outside") as got:
        Forked(bad).result()
    assert any("in the forked worker" in note and "bad" in note for note in got.value.__notes__)


def test_an_error_that_cannot_cross_the_pipe_arrives_as_a_runtime_error_naming_it():
    class Local(Exception):  # defined in a function: cannot be pickled
        pass

    def bad() -> None:
        raise Local("the rater table is empty")

    with pytest.raises(RuntimeError, match="Local: the rater table is empty"):
        Forked(bad).result()


def test_a_killed_worker_is_reported_not_waited_for():
    worker = Forked(lambda: os.kill(os.getpid(), signal.SIGKILL), name="test worker")
    with pytest.raises(WorkerLost, match=r"test worker \(process \d+\) ended without a result \(killed by SIGKILL\)"):
        worker.result()


def test_close_kills_and_reaps_a_worker_whose_result_is_not_taken():
    t0 = time.perf_counter()
    with Forked(lambda: time.sleep(60)) as worker:
        pid = worker._pid
        assert pid > 0
    assert time.perf_counter() - t0 < 10
    with pytest.raises(ChildProcessError):  # reaped: no zombie left
        os.waitpid(pid, os.WNOHANG)


def test_the_worker_holds_none_of_the_callers_files_and_the_hook_runs_before_the_fork(tmp_path):
    ran: list[int] = []
    with open(tmp_path / "held.txt", "w") as held:  # stands for the caller's database socket
        fd = held.fileno()

        def probe() -> bool:
            try:
                os.fstat(fd)
            except OSError:
                return False
            return True

        assert probe()  # open here
        worker = Forked(probe, before_fork=lambda: ran.append(os.getpid()))
        assert worker.result() is False  # closed in the child
    assert ran == [os.getpid()]
    assert Forked(probe, parallel=False, before_fork=lambda: ran.append(0)).result() is False  # closed by now
    assert ran == [os.getpid()]  # no fork, no hook


def _seeded_table(seed: int, n_units: int):
    rng = np.random.default_rng(seed)
    per = rng.integers(2, 5, size=n_units)
    units = np.repeat(np.arange(n_units) * 2 + 11, per)
    raters = np.concatenate([rng.choice(15, size=k, replace=False) for k in per])
    values = np.where(rng.random((units.size, 8)) < 0.7, 0.0, rng.integers(1, 8, size=(units.size, 8)))
    values[rng.random(values.shape) < 0.05] = np.nan
    labels = {"ethnicity": np.array(list("ABCD"))[rng.integers(0, 4, n_units)][np.repeat(np.arange(n_units), per)],
              "gender": np.array(list("fmx"))[rng.integers(0, 3, n_units)][np.repeat(np.arange(n_units), per)]}
    return units, raters, values, labels


@pytest.mark.parametrize("level", ["interval", "ordinal"])
def test_snapshot_stats_in_parallel_equals_the_serial_path_bit_for_bit(level):
    units, raters, values, labels = _seeded_table(7, 600)
    kw = dict(level=level, domain=tuple(range(8)), n_boot=200, seed=3)
    serial = ag.snapshot_stats(units, raters, values, labels, parallel=False, **kw)
    parallel = ag.snapshot_stats(units, raters, values, labels, parallel=True, **kw)
    assert repr(parallel) == repr(serial)
    assert serial.kappas and serial.raters and serial.strata["gender"]


def _rated_project(slug: str, n_images: int = 120):
    rng = np.random.default_rng(11)
    project = make_project(slug=slug)
    raters = [make_user() for _ in range(5)]
    images = Image.objects.bulk_create([
        Image(project=project, name=f"{i}.jpg", ethnicity=["a", "b", "c"][i % 3], gender=["f", "m"][i % 2],
              age=[25, 40][(i // 2) % 2]) for i in range(n_images)])
    ratings = []
    for image in images:
        for rater in rng.choice(len(raters), size=3, replace=False):
            values = np.where(rng.random(40) < 0.7, 0, rng.integers(1, 8, size=40)).tolist()
            ratings.append(Rating(project=project, image=image, rater=raters[int(rater)], values=values, scale_max=7,
                                  taxonomy_version="emonet-face-1", seconds_spent=float(rng.integers(5, 60))))
    Rating.objects.bulk_create(ratings)
    return project


@pytest.mark.django_db
def test_the_snapshot_payload_with_workers_equals_the_serial_one(monkeypatch):
    project = _rated_project("forked-same")
    monkeypatch.setattr(ag, "PARALLEL_MIN_RATINGS", 10**9)
    monkeypatch.setattr(ag_project, "PARALLEL_MIN_RATINGS", 10**9)
    serial = snap.agreement_compute(project, n_boot=100, seed=4)
    monkeypatch.setattr(ag, "PARALLEL_MIN_RATINGS", 0)
    monkeypatch.setattr(ag_project, "PARALLEL_MIN_RATINGS", 0)
    parallel = snap.agreement_compute(project, n_boot=100, seed=4)
    assert json.dumps(parallel, sort_keys=True) == json.dumps(serial, sort_keys=True)
    assert serial["raters"][0]["consistency"] is not None and serial["strata"]["gender"]


@pytest.mark.django_db
def test_a_failure_in_a_worker_fails_the_snapshot_with_its_message(monkeypatch):
    project = _rated_project("forked-fails", n_images=40)
    monkeypatch.setattr(ag, "PARALLEL_MIN_RATINGS", 0)
    monkeypatch.setattr(ag_project, "PARALLEL_MIN_RATINGS", 0)

    def broken(*args, **kwargs):
        raise ValueError("intensity shift: rater table broken")

    monkeypatch.setattr(rq, "intensity_shift", broken)  # runs in the forked rater-quality worker
    with pytest.raises(ValueError, match="rater table broken"):
        snap.agreement_snapshot_create(project, n_boot=20, seed=0)
    row = AgreementSnapshot.objects.get(project=project)
    assert row.status == SnapshotStatus.FAILED and "rater table broken" in row.error
