"""Helpers for the tests that run the deployed topology (tests/deploy/): Chromium trusting the run's
certificate, logging in over HTTPS, in-page uploads and downloads, reading the topology's database."""

from __future__ import annotations

import re

import psycopg2
from playwright.sync_api import Browser, BrowserContext, BrowserType, Page, expect

from deploy.topology import Topology
from tests.conftest import CHROMIUM, CHROMIUM_ARGS

PASSWORD = "a-long-enough-password-1"
# In the page, so the requests go through Chromium (which trusts this run's certificate) with the
# session cookie, and fetch() sends the Origin that Django's CSRF check over HTTPS compares.
UPLOAD_JS = """async ([b64, name, csrf]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const form = new FormData();
  form.append("file", new Blob([bytes], {type: "image/jpeg"}), name);
  const r = await fetch("/api/v1/projects/hq/images/", {method: "POST", body: form, headers: {"X-CSRFToken": csrf}});
  return [r.status, await r.text()];
}"""
FETCH_JS = """async (url) => {
  const r = await fetch(url);
  const body = await r.arrayBuffer();
  const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", body)))
    .map(b => b.toString(16).padStart(2, "0")).join("");
  return [r.status, new TextDecoder().decode(body), digest];
}"""


def launch_trusting(browser_type: BrowserType, topology: Topology) -> Browser:
    """Chromium that trusts this run's certificate, by its public key, and no other."""
    pin = f"--ignore-certificate-errors-spki-list={topology.spki_sha256()}"
    return browser_type.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, pin])


class Watch:
    """Everything a page loaded, and what the console said."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.static: dict[str, tuple[int, str]] = {}
        self.documents: list[dict[str, str]] = []
        self.console: list[str] = []

    def attach(self, page: Page) -> None:
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", lambda m: self.console.append(m.text))
        page.on("response", self._response)

    def _response(self, response) -> None:  # type: ignore[no-untyped-def]
        if "/static/" in response.url:
            self.static[response.url] = (response.status, response.headers.get("cache-control", ""))
        if response.request.resource_type == "document":
            self.documents.append(response.headers)


def login(browser: Browser, topology: Topology, email: str, watch: Watch) -> tuple[BrowserContext, Page]:
    context = browser.new_context(base_url=topology.url)
    page = context.new_page()
    watch.attach(page)
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    return context, page


def db_rows(topology: Topology, sql: str) -> list[tuple]:
    with psycopg2.connect(topology.env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()
