"""Every same-site page a signed-in (or anonymous) person can reach from "/" by GET: the pages
the rendered-text guard and the accessibility audit check, found by following what each role sees."""

from __future__ import annotations

import re
from collections import deque
from urllib.parse import urldefrag, urljoin, urlsplit

from django.test import Client

LINKS = re.compile(r'(?:href|hx-get|src|action)="([^"#][^"]*)"')
SKIP = ("/accounts/logout", "/admin/", "/static/", "/media/", "/api/", "/accounts/sso/")
MAX_PAGES = 250


def crawl(client: Client, start: str = "/", max_pages: int = MAX_PAGES) -> dict[str, str]:
    """path -> HTML of every page reachable by GET from `start` (redirects followed; non-HTML
    answers and errors map to "")."""
    seen: dict[str, str] = {}
    todo = deque([start])
    while todo and len(seen) < max_pages:
        path = todo.popleft()
        if path in seen:
            continue
        response = client.get(path)
        if response.status_code in (301, 302):
            seen[path] = ""
            todo.append(urldefrag(urljoin(path, response["Location"]))[0])
            continue
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            seen[path] = ""
            continue
        html = response.content.decode()
        seen[path] = html
        for link in LINKS.findall(html):
            link = urldefrag(urljoin(path, link.replace("&amp;", "&")))[0]
            parts = urlsplit(link)
            if parts.netloc or not parts.path.startswith("/") or parts.path.startswith(SKIP):
                continue
            if link not in seen:
                todo.append(link)
    return seen
