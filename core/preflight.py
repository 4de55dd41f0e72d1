"""Start-up check for every served process (deploy/*.sh): `python -m core.preflight [--wait S]`.

Fails fast, with one line naming the variable to fix, on bad configuration (the settings raise
ImproperlyConfigured: missing or placeholder DJANGO_SECRET_KEY, empty DJANGO_ALLOWED_HOSTS, ...)
and on an unreachable PostgreSQL or Redis (after retrying for --wait seconds, so a container that
starts a moment before its database does not fail). Exit status 0 when all is well, 2 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from urllib.parse import urlsplit


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}{parts.path}" if parts.hostname else "(no host)"


def _bucket_status() -> str:
    """The S3 error code of a HEAD on the configured bucket ("" when it answers or cannot be asked)."""
    from django.core.files.storage import default_storage

    try:
        from botocore.exceptions import ClientError

        default_storage.connection.meta.client.head_bucket(Bucket=default_storage.bucket_name)  # type: ignore[attr-defined]
    except ClientError as exc:
        return str(exc.response.get("Error", {}).get("Code", ""))
    except Exception:
        return ""
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to keep retrying the database and Redis")
    args = parser.parse_args(argv)

    import django
    from django.core.exceptions import ImproperlyConfigured

    try:
        django.setup()
    except ImproperlyConfigured as exc:
        print(f"emorate: configuration error: {exc}", file=sys.stderr)
        return 2

    import os

    from django.conf import settings

    from .health import check_database, check_redis, check_storage

    deadline = time.monotonic() + args.wait
    s3 = getattr(settings, "EMORATE_STORAGE", "local") == "s3"
    checks = {"DATABASE_URL": check_database, "REDIS_URL": check_redis,
              ("AWS_S3_ENDPOINT_URL" if s3 else "MEDIA_ROOT"): check_storage}
    while True:
        failures: dict[str, str] = {}
        for variable, check in checks.items():
            try:
                check()
            except RuntimeError:
                pass  # pending migrations: the readiness probe reports them; the migrate service applies them
            except Exception as exc:
                failures[variable] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not failures or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    for variable, reason in failures.items():
        if variable == "DATABASE_URL":
            where = f"cannot reach PostgreSQL at {_where(os.environ.get(variable, ''))}"
        elif variable == "REDIS_URL":
            where = f"cannot reach Redis at {_where(os.environ.get(variable, ''))}"
        elif variable == "MEDIA_ROOT":
            where = f"cannot write media files under {settings.MEDIA_ROOT}"
        else:
            bucket = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
            endpoint = os.environ.get(variable, "") or "AWS S3"
            code = _bucket_status()
            if code in {"404", "NoSuchBucket", "NotFound"}:
                variable, where = "AWS_STORAGE_BUCKET_NAME", f"no bucket {bucket!r} at {endpoint}"
            elif code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                variable = "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
                where = f"access to bucket {bucket!r} at {endpoint} refused"
            else:
                where = f"cannot use bucket {bucket!r} at {endpoint}"
        print(f"emorate: {variable}: {where}: {reason}", file=sys.stderr)
    if failures:
        return 2
    print(f"emorate: preflight ok ({settings.SETTINGS_MODULE})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
