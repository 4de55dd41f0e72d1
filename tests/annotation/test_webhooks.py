"""Webhooks (#20): signed deliveries to a real HTTP receiver on loopback, retries with backoff
through a real Celery worker, every event, the SSRF rule, and the lead's page and API."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction

from accounts.models import Role
from annotation.models import DeliveryStatus, Rating, Webhook, WebhookDelivery
from annotation.services.agreement_snapshot import agreement_snapshot_create
from annotation.services.releases import release_build, release_create, release_publish
from annotation.services.webhooks import (
    DeliveryFailed,
    WebhookError,
    webhook_create,
    webhook_deliver,
    webhooks_emit,
    webhooks_target_sweep,
)
from annotation.webhook_signing import address_refusal, signature, signature_valid
from tests.factories import add_member, make_project, make_user
from tests.support.seed import populate

SECRET = "a-long-shared-secret-0123456789"


class Receiver:
    """A real HTTP server on loopback that checks each delivery's signature and timestamp the way
    a receiver should, and answers with scripted statuses (then 200)."""

    def __init__(self, statuses: list[int] | None = None, secret: str = SECRET,
                 headers: dict[str, str] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.secret = secret
        self.extra_headers = headers or {}
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                payload = json.loads(body)
                stamp = int(self.headers["X-Emorate-Timestamp"])
                receiver.received.append({
                    "payload": payload, "event": self.headers["X-Emorate-Event"],
                    "delivery": self.headers["X-Emorate-Delivery"],
                    "signed": signature_valid(receiver.secret, body, self.headers["X-Emorate-Signature"]),
                    "fresh": abs(time.time() - stamp) < 300 and payload["sent_at"] == stamp,
                })
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                for k, v in receiver.extra_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def loopback_allowed(settings):  # type: ignore[no-untyped-def]
    settings.EMORATE_WEBHOOK_ALLOW_PRIVATE = True
    settings.EMORATE_WEBHOOK_RETRY_SECONDS = 0.2
    return settings


def test_signature_matches_the_published_hmac_sha256_example():
    # RFC 4231, test case 2
    assert signature("Jefe", b"what do ya want for nothing?") == \
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert signature_valid("Jefe", b"what do ya want for nothing?", signature("Jefe", b"what do ya want for nothing?"))
    assert not signature_valid("Jefe", b"what do ya want for nothing!", signature("Jefe", b"what do ya want for nothing?"))


@pytest.mark.parametrize("address, kind", [("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"),
                                           ("192.168.0.9", "private"), ("169.254.169.254", "link-local"),
                                           ("::ffff:127.0.0.1", "loopback"), ("0.0.0.0", "unspecified"),
                                           ("224.0.0.1", "multicast")])
def test_internal_addresses_are_refused(address, kind):
    assert kind in (address_refusal(address) or "")


def test_public_addresses_pass():
    assert address_refusal("93.184.216.34") is None and address_refusal("2606:2800:220:1::1") is None


@pytest.mark.django_db
@pytest.mark.parametrize("url, problem", [
    ("http://127.0.0.1:9/hook", "loopback"), ("http://localhost/hook", "loopback"),
    ("http://10.0.0.5/hook", "private"), ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]/hook", "loopback"), ("ftp://files.example.org/x", "http:// or https://"),
    ("https://user:pw@hooks.example.org/x", "user name or password"),
])
def test_registering_an_internal_or_odd_target_is_refused(url, problem):
    project = make_project(slug="ssrf")
    with pytest.raises(WebhookError, match=problem):
        webhook_create(project=project, url=url, events=["release.published"], secret=SECRET)
    assert not Webhook.objects.exists()


@pytest.mark.django_db
def test_a_target_that_became_internal_is_not_called(loopback_allowed, receiver):
    project = make_project(slug="rebind")
    webhook = webhook_create(project=project, url=receiver.url, events=["release.published"], secret=SECRET)
    loopback_allowed.EMORATE_WEBHOOK_ALLOW_PRIVATE = False  # e.g. its name now resolves to 127.0.0.1
    webhooks_emit(project, "release.published", {"version": "1.0.0"})
    delivery = webhook_deliver(WebhookDelivery.objects.get(webhook=webhook).pk)
    assert delivery.status == DeliveryStatus.FAILED and "loopback" in delivery.error
    assert receiver.received == []


@pytest.mark.django_db(transaction=True)
def test_a_failing_receiver_gets_the_same_signed_delivery_until_it_takes_it(celery_worker_real, loopback_allowed):
    receiver = Receiver(statuses=[500, 503])  # fails twice, then answers 200
    try:
        project = make_project(slug="retry")
        webhook = webhook_create(project=project, url=receiver.url, events=["release.published"], secret=SECRET)
        with transaction.atomic():
            webhooks_emit(project, "release.published", {"version": "1.0.0"})
        delivery = WebhookDelivery.objects.get(webhook=webhook)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            delivery.refresh_from_db()
            if delivery.status != DeliveryStatus.PENDING:
                break
            time.sleep(0.1)
    finally:
        receiver.close()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 3 and delivery.response_status == 200
    assert [r["delivery"] for r in receiver.received] == [str(delivery.uuid)] * 3
    assert all(r["signed"] and r["fresh"] and r["event"] == "release.published" for r in receiver.received)
    assert {json.dumps({k: v for k, v in r["payload"].items() if k != "sent_at"}, sort_keys=True)
            for r in receiver.received} == {json.dumps(delivery.payload, sort_keys=True)}


@pytest.mark.django_db
def test_a_receiver_that_keeps_failing_ends_failed_after_the_last_try(loopback_allowed):
    loopback_allowed.EMORATE_WEBHOOK_MAX_ATTEMPTS = 2
    receiver = Receiver(statuses=[500, 500, 500])
    try:
        project = make_project(slug="gives-up")
        webhook = webhook_create(project=project, url=receiver.url, events=["rater.alert"], secret=SECRET)
        webhooks_emit(project, "rater.alert", {"alerts": []})
        pk = WebhookDelivery.objects.get(webhook=webhook).pk
        with pytest.raises(DeliveryFailed):
            webhook_deliver(pk)
        delivery = webhook_deliver(pk)
    finally:
        receiver.close()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 2 and "HTTP 500" in delivery.error
    assert webhook_deliver(pk).attempts == 2  # finished: never sent again


@pytest.mark.django_db
def test_redirects_are_not_followed(loopback_allowed):
    target = Receiver()
    redirector = Receiver(statuses=[302, 302, 302, 302, 302, 302], headers={"Location": target.url})
    try:
        project = make_project(slug="redir")
        webhook = webhook_create(project=project, url=redirector.url, events=["release.published"], secret=SECRET)
        webhooks_emit(project, "release.published", {"version": "1.0.0"})
        with pytest.raises(DeliveryFailed, match="HTTP 302"):
            webhook_deliver(WebhookDelivery.objects.get(webhook=webhook).pk)
    finally:
        target.close()
        redirector.close()
    assert len(redirector.received) == 1 and target.received == []


def _deliver_all(event: str) -> list[WebhookDelivery]:
    out = []
    for d in WebhookDelivery.objects.filter(event=event, status=DeliveryStatus.PENDING).order_by("pk"):
        out.append(webhook_deliver(d.pk))
    return out


@pytest.mark.django_db
def test_every_event_reaches_the_receiver(loopback_allowed, receiver):
    import numpy as np

    project = make_project(slug="events", target_ratings=3)
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    raters = [make_user() for _ in range(3)]
    webhook = webhook_create(project=project, url=receiver.url, events=["release.published", "agreement.snapshot_done",
                                                                        "image.target_reached", "rater.alert"],
                             secret=SECRET, actor=lead)
    images = populate(project, 12, raters[:2], np.random.default_rng(1), per_image=2)  # 2 of 3 ratings each

    assert webhooks_target_sweep() == 0  # nobody reached the target yet
    for image in images[:5]:  # the third rating: 5 images reach the target
        Rating.objects.create(project=project, image=image, rater=raters[2], values=[1] * 40, scale_max=7,
                              taxonomy_version="emonet-face-1")
    assert webhooks_target_sweep() == 1 and webhooks_target_sweep() == 0  # once, not again
    [reached] = _deliver_all("image.target_reached")
    assert reached.status == DeliveryStatus.DELIVERED
    assert reached.payload["data"]["count"] == 5 and {i["name"] for i in reached.payload["data"]["images"]} == \
        {im.name for im in images[:5]}

    snapshot = agreement_snapshot_create(project, n_boot=10)
    [done] = _deliver_all("agreement.snapshot_done")
    assert done.payload["data"]["snapshot"] == snapshot.pk and done.payload["data"]["n_images"] == snapshot.payload["n_images"]

    release = release_build(release_create(project=project, version="1.0.0", n_boot=0))
    assert not WebhookDelivery.objects.filter(event="release.published").exists()  # built is not published
    release_publish(release, actor=lead)
    [published] = _deliver_all("release.published")
    assert published.payload["data"]["version"] == "1.0.0"
    assert published.payload["data"]["manifest_sha256"] == release.manifest_sha256
    events = [r["event"] for r in receiver.received]
    assert events == ["image.target_reached", "agreement.snapshot_done", "release.published"]
    assert all(r["signed"] and r["fresh"] for r in receiver.received)
    assert webhook.deliveries.count() == 3


@pytest.mark.django_db
def test_rater_alerts_are_sent_when_a_snapshot_raises_them(loopback_allowed, receiver):
    import numpy as np

    project = make_project(slug="alerts", alert_min_kappa=0.99)  # every rater is below this
    raters = [make_user() for _ in range(3)]
    populate(project, 30, raters, np.random.default_rng(2), per_image=3)
    webhook_create(project=project, url=receiver.url, events=["rater.alert"], secret=SECRET)
    agreement_snapshot_create(project, n_boot=10)
    [alert] = _deliver_all("rater.alert")
    assert alert.status == DeliveryStatus.DELIVERED and alert.payload["data"]["alerts"]
    assert all("kappa" in reason for a in alert.payload["data"]["alerts"] for reason in a["reasons"])
    assert not WebhookDelivery.objects.filter(event="agreement.snapshot_done").exists()  # not subscribed


@pytest.mark.django_db
def test_the_lead_registers_webhooks_on_the_page_and_through_the_api(loopback_allowed, client):
    from accounts.api_tokens import api_token_create

    project = make_project(slug="page")
    lead = make_user(Role.LEAD)
    add_member(project, lead)
    client.force_login(lead)
    page = client.post("/projects/page/webhooks/", {"url": "ftp://x.example.org/", "events": ["release.published"],
                                                    "secret": SECRET})
    assert page.status_code == 400 and "http:// or https://" in page.content.decode()
    page = client.post("/projects/page/webhooks/", {"url": "http://127.0.0.1:9/hook", "events": ["release.published"],
                                                    "secret": SECRET}, follow=True)
    body = page.content.decode()
    assert page.status_code == 200 and "http://127.0.0.1:9/hook" in body and SECRET not in body
    webhook = Webhook.objects.get(project=project)
    webhooks_emit(project, "release.published", {"version": "1.0.0"})
    with pytest.raises(DeliveryFailed):  # nothing listens on port 9: tried again later
        webhook_deliver(WebhookDelivery.objects.get(webhook=webhook).pk)
    log = client.get("/projects/page/webhooks/").content.decode()
    assert "release.published" in log and "Connection refused" in log

    token = api_token_create(user=lead, scope="read_write")[1]
    bad = client.post("/api/v1/projects/page/webhooks/", {"url": "https://hooks.example.org/x", "events": ["nope"],
                                                          "secret": SECRET}, content_type="application/json",
                      HTTP_AUTHORIZATION=f"Token {token}")
    assert bad.status_code == 400 and "events" in bad.json()
    short = client.post("/api/v1/projects/page/webhooks/", {"url": "http://127.0.0.1:9/b", "events": ["rater.alert"],
                                                            "secret": "short"}, content_type="application/json",
                        HTTP_AUTHORIZATION=f"Token {token}")
    assert short.status_code == 400 and "secret" in short.json()
    ok = client.post("/api/v1/projects/page/webhooks/", {"url": "http://127.0.0.1:9/b", "events": ["rater.alert"],
                                                         "secret": SECRET}, content_type="application/json",
                     HTTP_AUTHORIZATION=f"Token {token}")
    assert ok.status_code == 201 and "secret" not in ok.json() and ok.json()["events"] == ["rater.alert"]
    listed = client.get("/api/v1/projects/page/webhooks/", HTTP_AUTHORIZATION=f"Token {token}").json()
    assert sorted(w["url"] for w in listed) == ["http://127.0.0.1:9/b", "http://127.0.0.1:9/hook"]
    client.post(f"/projects/page/webhooks/{webhook.pk}/delete/")
    assert not Webhook.objects.filter(pk=webhook.pk).exists()


@pytest.mark.django_db
def test_a_delivery_queued_before_its_webhook_was_removed_is_dropped(loopback_allowed, receiver):
    project = make_project(slug="removed")
    webhook = webhook_create(project=project, url=receiver.url, events=["release.published"], secret=SECRET)
    webhooks_emit(project, "release.published", {"version": "1.0.0"})
    pk = WebhookDelivery.objects.get(webhook=webhook).pk
    webhook.delete()
    assert webhook_deliver(pk) is None and receiver.received == []
