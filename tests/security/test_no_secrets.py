"""No secrets in the repository: keys, tokens and passwords come from the environment."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATTERNS = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)(aws_secret_access_key|api[_-]?key|secret[_-]?key)\s*[=:]\s*['\"](?P<value>[A-Za-z0-9/+_\-]{32,})['\"]"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
]


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if not n.endswith((".png", ".jpg", ".webp", ".parquet"))]


def test_no_secrets_are_committed():
    hits = []
    for path in tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        for pattern in PATTERNS:
            for match in pattern.finditer(text):
                value = match.groupdict().get("value") or match.group(0)
                # Development and test keys say what they are; they are refused in production.
                if not any(word in value for word in ("insecure", "test-only", "change-me")):
                    hits.append(f"{path.relative_to(ROOT)}: {match.group(0)[:40]}...")
    assert hits == []


def test_env_example_holds_placeholders_only():
    env = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
               if "=" in line and not line.startswith("#"))
    assert env["DJANGO_SECRET_KEY"].startswith("change-me")
    assert not (ROOT / ".env").exists() or ".env" in (ROOT / ".gitignore").read_text()
