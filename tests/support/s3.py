"""The real S3 server `make test` starts (SeaweedFS, .ci/services.sh start_s3): fresh buckets and
the settings that put the media storage in one."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest


def s3_endpoint() -> str:
    endpoint = os.environ.get("AWS_S3_ENDPOINT_URL", "")
    if not endpoint:
        pytest.fail("AWS_S3_ENDPOINT_URL is not set: run the tests with `make test` (it starts SeaweedFS)")
    return endpoint


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=s3_endpoint(), aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "x"),
                        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "x"), region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def make_bucket(prefix: str = "emorate") -> str:
    """A new, empty bucket. SeaweedFS's filer needs a few seconds after start: retry until it answers."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    client = s3_client()
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket=name)
            return name
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def bucket_keys(bucket: str, prefix: str = "") -> list[str]:
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


def s3_env(bucket: str) -> dict[str, str]:
    """The environment of a process whose media storage is this bucket."""
    return {"EMORATE_STORAGE": "s3", "AWS_STORAGE_BUCKET_NAME": bucket, "AWS_S3_ENDPOINT_URL": s3_endpoint(),
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "x"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "x"), "AWS_S3_REGION_NAME": "us-east-1"}


def s3_storages(bucket: str) -> dict[str, Any]:
    """STORAGES with the default storage in this bucket (for override_settings)."""
    from django.conf import settings

    options = {"bucket_name": bucket, "endpoint_url": s3_endpoint(), "access_key": os.environ.get("AWS_ACCESS_KEY_ID"),
               "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY"), "region_name": "us-east-1",
               "addressing_style": "path", "signature_version": "s3v4", "default_acl": None, "file_overwrite": False,
               "use_threads": False}
    s3 = {"BACKEND": "core.storage.PrivateS3Storage", "OPTIONS": options}
    return {**settings.STORAGES, "default": s3, "s3": s3}
