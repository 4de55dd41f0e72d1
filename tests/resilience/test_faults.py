"""Faults on real servers: a dead database, a Redis restart, workers killed mid-job."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest
from django.http import Http404
from django.test import override_settings

from accounts.models import Role
from annotation.models import AgreementSnapshot, Rating, Release, ReleaseImage
from annotation.services.image_import import image_import_one
from annotation.services.releases import release_create, release_dir, release_file_response
from annotation.taxonomy import EMOTIONS
from annotation.views.rate import EMOTION_FIELD_PREFIX
from tests.factories import add_member, image_bytes, make_project, make_user
from tests.support.processes import ROOT, Worker, free_port, wait_for
from tests.support.seed import populate


def test_database_unavailable_gives_a_clear_page_not_a_stack_trace():
    port = free_port()
    dead_db = f"postgres://app:app@127.0.0.1:{free_port()}/app"
    env = {**os.environ, "DATABASE_URL": dead_db, "DJANGO_SETTINGS_MODULE": "config.settings.base",
           "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 60, "DJANGO_ALLOWED_HOSTS": "127.0.0.1"}
    # gunicorn, as in production (runserver would refuse to start without its database).
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind",
                               f"127.0.0.1:{port}", "--workers", "1"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = wait_for(lambda: _try(opener, f"http://127.0.0.1:{port}/accounts/login/"), timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        data = urllib.parse.urlencode({"email": "a@example.org", "password": "whatever-password",
                                       "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/accounts/login/", data=data,
                                         headers={"Referer": f"http://127.0.0.1:{port}/"})
        with pytest.raises(urllib.error.HTTPError) as err:
            opener.open(request, timeout=20)
        body = err.value.read().decode()
        assert err.value.code == 503 and err.value.headers["Retry-After"] == "30"
        assert "The database cannot be reached right now. Nothing from this request was saved" in body
        assert "Traceback" not in body and "OperationalError" not in body
    finally:
        server.terminate()
        server.wait(timeout=10)


def _try(opener, url):  # type: ignore[no-untyped-def]
    try:
        return opener.open(url, timeout=5).read().decode()
    except OSError:
        return None


@pytest.mark.django_db(transaction=True)
def test_redis_restart_loses_no_rating(client, redis_server):
    """Cache and broker on a Redis that goes down mid-session: every submitted rating is stored."""
    from config.celery import app

    project = make_project(slug="hq", target_ratings=1)
    rater = make_user(Role.RATER)
    add_member(project, rater)
    for i in range(6):
        image_import_one(project=project, name=f"{i}.jpg", data=image_bytes(), meta=None)
    caches = {"default": {"BACKEND": "core.cache.ResilientRedisCache", "LOCATION": redis_server.url,
                          "OPTIONS": {"socket_connect_timeout": 0.3, "socket_timeout": 0.5}}}
    old_broker = app.conf.broker_url
    app.conf.broker_url = redis_server.url
    try:
        with override_settings(CACHES=caches):
            client.force_login(rater)
            stored = []
            for step in range(6):
                if step == 2:
                    redis_server.stop()  # Redis dies with the session copies, counters, queued tasks
                if step == 4:
                    redis_server.start()
                page = client.get("/projects/hq/rate/")
                assert page.status_code == 200, page.content[:300]
                match = re.search(r'/projects/hq/rate/(\d+)/submit/', page.content.decode())
                assert match, "no image served"
                resp = client.post(f"/projects/hq/rate/{match.group(1)}/submit/",
                                   {f"{EMOTION_FIELD_PREFIX}{name}": str(step % 8) for name in EMOTIONS}
                                   | {"client_token": f"t{step}"},
                                   HTTP_HX_REQUEST="true")
                assert resp.status_code == 200, resp.content[:500]
                stored.append(int(match.group(1)))
    finally:
        app.conf.broker_url = old_broker
    ratings = Rating.objects.filter(project=project, rater=rater)
    assert ratings.count() == 6 and len(set(ratings.values_list("image_id", flat=True))) == 6


@pytest.mark.django_db(transaction=True)
def test_worker_killed_during_a_release_build_publishes_nothing_and_the_build_completes(redis_server, settings):
    from annotation.tasks import release_build_task
    from config.celery import app

    project = make_project(slug="hq")
    populate(project, 600, [make_user() for _ in range(5)], np.random.default_rng(0))
    release = release_create(project=project, version="1.0.0", n_boot=3000)
    worker = Worker(redis_server.url, "releases", str(settings.MEDIA_ROOT))
    worker.start()
    try:
        with app.connection_for_write(redis_server.url) as conn:
            release_build_task.apply_async((release.pk,), {"publish": True}, connection=conn, queue="releases")
        wait_for(lambda: Release.objects.get(pk=release.pk).progress >= 50, timeout=60, step=0.02)
        worker.kill()
        stuck = Release.objects.get(pk=release.pk)
        assert stuck.status == "building" and not stuck.manifest_sha256 and stuck.published_at is None
        assert not ReleaseImage.objects.filter(release=stuck).exists()
        # Files a killed build left on disk are never served (downloads go through the stored
        # manifest, empty until a build commits) and the next build replaces them.
        with pytest.raises(Http404):
            release_file_response(stuck, "README.md")
        time.sleep(4)  # past the visibility timeout (3 s here): the returning worker restores the task
        worker.start()  # a worker returns: the unacknowledged task is delivered again
        done = wait_for(lambda: Release.objects.filter(pk=release.pk, status="published").first(), timeout=90)
        assert done.manifest_sha256 and release_dir(done).exists()
        assert ReleaseImage.objects.filter(release=done).count() == 600
    finally:
        worker.stop()
        print(worker.output()[-3000:])


@pytest.mark.django_db(transaction=True)
def test_worker_killed_during_an_agreement_snapshot_recovers(redis_server, settings):
    from annotation.tasks import agreement_snapshot_task
    from config.celery import app

    project = make_project(slug="hq")
    populate(project, 3000, [make_user() for _ in range(8)], np.random.default_rng(1))
    worker = Worker(redis_server.url, "agreement", str(settings.MEDIA_ROOT))
    worker.start()
    try:
        with app.connection_for_write(redis_server.url) as conn:
            agreement_snapshot_task.apply_async((project.pk,), {"n_boot": 20000}, connection=conn, queue="agreement")
        running = wait_for(lambda: AgreementSnapshot.objects.filter(project=project, status="running").first(),
                           timeout=60, step=0.02)
        worker.kill()
        assert AgreementSnapshot.objects.get(pk=running.pk).status == "running"
        time.sleep(4)
        worker.start()
        done = wait_for(lambda: AgreementSnapshot.objects.filter(project=project, status="done").first(), timeout=120)
        assert done.pk == running.pk  # the interrupted row was taken over, not duplicated
        assert AgreementSnapshot.objects.filter(project=project).count() == 1
        assert len(done.payload["emotions"]) == 40
    finally:
        worker.stop()
