"""Optional reminders to raters with open work, with the lead digest (#16): on a real SMTP server
(aiosmtpd on loopback), sent by a real Celery worker; once per project, rater and period; only to
raters who have images waiting, are not paused and did not opt out; the lead's digest counts them."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from accounts.models import EmailSent, Role
from annotation.models import Membership, Rating
from annotation.services.digest import lead_digests_send
from tests.factories import add_member, make_project, make_user
from tests.support.seed import image_with_file

pytestmark = pytest.mark.django_db(transaction=True)


def test_raters_with_images_waiting_get_one_reminder_per_week(smtp, celery_worker_real, settings):
    settings.EMORATE_SITE_URL = "https://emorate.lab.org"
    project = make_project(slug="hq", target_ratings=3, rater_reminders=True)
    quiet_project = make_project(slug="quiet", target_ratings=3)  # reminders off (the default)
    lead = make_user(Role.LEAD, email="lead@lab.org")
    busy, done = make_user(email="busy@lab.org"), make_user(email="done@lab.org")
    paused, opted_out = make_user(email="paused@lab.org"), make_user(email="optout@lab.org")
    opted_out.email_digest = False
    opted_out.save()
    add_member(project, lead, busy, done, paused, opted_out)
    add_member(quiet_project, make_user(email="elsewhere@lab.org"))
    images = [image_with_file(project, priority=float(i)) for i in range(3)]
    image_with_file(quiet_project)
    for image in images:  # `done` rated everything: nothing waits for them
        Rating.objects.create(project=project, image=image, rater=done, values=[2] * 40, scale_max=7,
                              taxonomy_version="emonet-face-1")
    Rating.objects.create(project=project, image=images[0], rater=busy, values=[1] * 40, scale_max=7,
                          taxonomy_version="emonet-face-1")
    Membership.objects.filter(project=project, user=paused).update(paused_at=timezone.now())

    assert lead_digests_send() == 2  # busy's reminder and the lead's digest
    messages = {m["To"]: m for m in smtp.wait(2)}
    assert set(messages) == {"busy@lab.org", "lead@lab.org"}
    reminder = messages["busy@lab.org"]
    body = smtp.body(reminder)
    assert reminder["Subject"] == "emorate: images are waiting for you in Hq"
    assert "https://emorate.lab.org/projects/hq/rate/" in body and "You have rated 1 image there" in body
    for other in ("done@lab.org", "lead@lab.org", "paused@lab.org", "alpha", "kappa"):
        assert other not in body  # nothing about anyone else
    assert "reminded this week: 1" in smtp.body(messages["lead@lab.org"])
    # the same period again: nothing more, whatever runs
    assert lead_digests_send() == 0
    time.sleep(0.5)
    assert len(smtp.messages) == 2
    assert EmailSent.objects.filter(key__startswith="reminder:").count() == 1
