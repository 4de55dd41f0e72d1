"""Finding 2: one throttle for every way in, keyed on the account and the real client address."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import close_old_connections
from django.test import Client, RequestFactory, override_settings

from accounts import throttle
from accounts.models import Role
from tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed sign-in attempts"


def _login(client: Client, email: str, password: str, ip: str = "203.0.113.5", **extra: str) -> str:
    return client.post("/accounts/login/", {"email": email, "password": password}, REMOTE_ADDR=ip,
                       **extra).content.decode()


@override_settings(LOGIN_MAX_FAILURES=3)
def test_admin_login_goes_through_the_throttled_site_login(client):
    """Review P1: /admin/login/ no longer takes passwords: it sends to the one (throttled) login page."""
    make_user(Role.ADMIN, email="admin@lab.org")
    for i in range(5):
        resp = client.post("/admin/login/?next=/admin/", {"username": "admin@lab.org", "password": f"wrong{i}"})
        assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/?next=/admin/")
        assert "_auth_user_id" not in client.session
    for i in range(3):
        assert "Email or password is not correct" in _login(client, "admin@lab.org", f"wrong{i}")
    assert LOCKED in _login(client, "admin@lab.org", PASSWORD)
    assert "_auth_user_id" not in client.session


@override_settings(LOGIN_MAX_FAILURES=3)
def test_unicode_variants_share_one_counter_and_never_log_in(client):
    """Review P3: ſam@ (U+017F) is sam@ after NFKC+casefold; ıan@ (U+0131) is a different, unknown account."""
    make_user(Role.RATER, email="sam@lab.org")
    make_user(Role.RATER, email="ian@lab.org")
    for email in ("sam@lab.org", "SAM@lab.org", "\u017fam@lab.org"):
        assert "Email or password is not correct" in _login(client, email, "wrong-password")
    assert LOCKED in _login(client, "\u017fam@lab.org", PASSWORD)
    assert "Email or password is not correct" in _login(client, "\u0131an@lab.org", PASSWORD)
    assert "_auth_user_id" not in client.session
    assert "_auth_user_id" not in client.session
    client.post("/accounts/login/", {"email": "Ian@Lab.org", "password": PASSWORD}, REMOTE_ADDR="203.0.113.5")
    assert "_auth_user_id" in client.session


@override_settings(LOGIN_MAX_FAILURES=3, EMORATE_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_behind_the_trusted_proxy_each_client_has_its_own_counter(client):
    """Review P2: behind the proxy, the victim's own address is not locked by an attacker elsewhere."""
    make_user(Role.RATER, email="victim@lab.org")
    for _ in range(3):
        _login(client, "victim@lab.org", "wrong-password", ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert LOCKED in _login(client, "victim@lab.org", PASSWORD, ip="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.7")
    # A forged left-most hop does not get the attacker a fresh counter: the proxy appends the real one.
    assert LOCKED in _login(client, "victim@lab.org", PASSWORD, ip="10.0.0.2",
                            HTTP_X_FORWARDED_FOR="192.0.2.99, 198.51.100.7")
    _login(client, "victim@lab.org", PASSWORD, ip="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.20")
    assert "_auth_user_id" in client.session


def test_client_address_believes_forwarded_for_only_from_trusted_proxies():
    rf = RequestFactory()
    with override_settings(EMORATE_TRUSTED_PROXIES=[]):
        assert throttle.client_address(rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4")) == "10.0.0.2"
    with override_settings(EMORATE_TRUSTED_PROXIES=["10.0.0.0/8", "::1"]):
        assert throttle.client_address(rf.get("/", REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR="1.2.3.4")) \
            == "198.51.100.1"
        assert throttle.client_address(rf.get("/", REMOTE_ADDR="10.0.0.2",
                                              HTTP_X_FORWARDED_FOR="1.2.3.4, 5.6.7.8, 10.1.1.1")) == "5.6.7.8"
        assert throttle.client_address(rf.get("/", REMOTE_ADDR="::1", HTTP_X_FORWARDED_FOR="2001:db8::1")) \
            == "2001:db8::1"


@override_settings(LOGIN_MAX_FAILURES=100, EMORATE_THROTTLE_ACCOUNT_MAX=4)
def test_per_account_cap_across_addresses_and_ipv6_64_bucket(client):
    """Review P2 (bypass): rotating addresses, or IPv6 addresses in one /64, does not give fresh tries."""
    make_user(Role.RATER, email="sam@lab.org")
    for i in range(4):
        assert "Email or password is not correct" in _login(client, "sam@lab.org", "wrong", ip=f"198.51.100.{i}")
    assert LOCKED in _login(client, "sam@lab.org", PASSWORD, ip="198.51.100.77")
    with override_settings(EMORATE_THROTTLE_CLIENT_MAX=3, EMORATE_THROTTLE_ACCOUNT_MAX=100):
        for i in range(3):
            _login(client, f"nobody{i}@lab.org", "wrong", ip=f"2001:db8:1:2::{i + 1}")
        assert LOCKED in _login(client, "other@lab.org", "wrong", ip="2001:db8:1:2::ffff")


@override_settings(LOGIN_MAX_FAILURES=5)
def test_parallel_guesses_cannot_race_past_the_limit(transactional_db):
    """Review P4: count before judging; of 24 simultaneous wrong guesses only 5 are even checked."""
    make_user(Role.RATER, email="race@lab.org")

    def guess(i: int) -> str:
        try:
            return _login(Client(), "race@lab.org", f"wrong{i}")
        finally:
            close_old_connections()

    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(guess, range(24)))
    assert sum("Email or password is not correct" in b for b in bodies) == 5
    assert sum(LOCKED in b for b in bodies) == 19


@override_settings(LOGIN_MAX_FAILURES=3)
def test_success_gives_the_slot_back(client):
    make_user(Role.RATER, email="r@lab.org")
    for _ in range(5):
        _login(client, "r@lab.org", "wrong")
        client.logout()
        _login(client, "r@lab.org", PASSWORD)
        assert "_auth_user_id" in client.session
        client.logout()
