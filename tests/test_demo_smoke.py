"""`make demo` path: the embedded SQLite database, seed_demo, a real server, a new rater logs in.

This is the only place the suite touches SQLite, because the demo itself runs on it; every other
test runs on PostgreSQL.
"""

import html
import http.cookiejar
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What `make demo` does not install: the scoring extra and the dev extra (pyproject.toml).
DEV_ONLY = {"torch", "transformers", "safetensors", "pytest", "playwright", "hypothesis", "schemathesis", "pandas",
            "datasets", "aiosmtpd", "pyotp", "mypy", "ruff"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_serves_a_page_a_new_rater_can_log_into_and_rate_on(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY"}}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.base", DJANGO_DEBUG="1", MEDIA_ROOT=str(tmp_path / "media"),
               DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    # `make demo` installs the app alone (#20): the demo must run with none of the scoring or test
    # packages importable, so they are blocked in every process below.
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        f"BLOCKED = {sorted(DEV_ONLY)!r}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'{name} is not installed for the demo')\n"
        "sys.meta_path.insert(0, Block())\n")
    env["PYTHONPATH"] = str(blocker)
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "torch is not installed for the demo" in check.stderr  # the block is in force

    def manage(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    manage("migrate", "--noinput", "-v0")
    assert "drawn face images" in manage("seed_demo", "--images", "6")
    manage("create_user", "newrater@example.org", "--role", "rater", "--project", "emonet-demo", "--password-stdin",
           stdin="a-brand-new-password-42\n")

    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        for _ in range(100):
            try:
                login_page = opener.open(f"{base}/accounts/login/", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("demo server did not start")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page).group(1)
        data = urllib.parse.urlencode({"email": "newrater@example.org", "password": "a-brand-new-password-42",
                                       "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(f"{base}/accounts/login/", data=data, headers={"Referer": f"{base}/"})
        home = opener.open(request, timeout=10).read().decode()
        assert "newrater@example.org" in home
        assert "EmoNet-Face demo (drawn faces)" in home
        # the rate page claims an image and a submit swaps in the next one, on SQLite too
        page = opener.open(f"{base}/projects/emonet-demo/rate/", timeout=10).read().decode()
        first = re.search(r'data-assignment="(\d+)"', page).group(1)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        names = [html.unescape(n) for n in re.findall(r'name="emo:([^"]+)"', page)]
        assert len(names) == 40
        form = {f"emo:{name}": "0" for name in names} | {"emo:Elation": "5", "csrfmiddlewaretoken": token,
                                                          "client_token": "demo-1", "active_seconds": "12"}
        submit = urllib.request.Request(f"{base}/projects/emonet-demo/rate/{first}/submit/",
                                        data=urllib.parse.urlencode(form).encode(),
                                        headers={"Referer": f"{base}/", "HX-Request": "true"})
        stage = opener.open(submit, timeout=10).read().decode()
        assert stage.lstrip().startswith('<section id="rate-stage"') and "You have rated <strong>1</strong>" in stage
        second = re.search(r'data-assignment="(\d+)"', stage).group(1)
        assert second != first
    finally:
        server.terminate()
        server.wait(timeout=10)
    media = list((tmp_path / "media").rglob("*.jpg"))
    assert len(media) >= 6
