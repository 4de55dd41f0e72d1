import time

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = ("Make sure the media storage can be used: with EMORATE_STORAGE=s3, create the bucket when it does not "
            "exist (self-hosted S3 servers start empty). Idempotent; run by deploy/migrate.sh.")
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--wait", type=float, default=0.0, help="seconds to keep retrying an unreachable server")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        if settings.EMORATE_STORAGE != "s3":
            self.stdout.write(f"media storage: local folder {settings.MEDIA_ROOT}")
            return
        from botocore.exceptions import BotoCoreError, ClientError

        bucket = default_storage.bucket_name  # type: ignore[attr-defined]
        client = default_storage.connection.meta.client  # type: ignore[attr-defined]
        deadline = time.monotonic() + opts["wait"]
        while True:
            try:
                try:
                    client.head_bucket(Bucket=bucket)
                    self.stdout.write(f"media storage: bucket {bucket!r} is there")
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
                        raise
                    client.create_bucket(Bucket=bucket)
                    self.stdout.write(f"media storage: created bucket {bucket!r}")
                return
            except (BotoCoreError, ClientError) as exc:
                if time.monotonic() >= deadline:
                    raise CommandError(f"AWS_S3_ENDPOINT_URL: cannot use bucket {bucket!r} at "
                                       f"{settings.EMORATE_S3_OPTIONS and settings.EMORATE_S3_OPTIONS['endpoint_url']}: "
                                       f"{exc}") from None
                time.sleep(1.0)
