"""The media storage backend for S3-compatible object storage.

Media files are never public: every image and release file is served by the app after its
permission check (annotation.views.media_file, the release views). So url() names that view
(MEDIA_URL + name), exactly as the filesystem backend does, and every page, fragment and API field
that links a file links through the check; the bucket itself stays private and may live on an
internal network only (docs/decisions/0007-object-storage.md).

Uploads of files below the multipart threshold (every image and release file in practice) are one
PutObject request, not a trip through boto3's transfer manager, which costs about as much CPU as
the request itself for files of this size.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urljoin

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.encoding import filepath_to_uri
from storages.backends.s3 import S3Storage
from storages.utils import clean_name


class PrivateS3Storage(S3Storage):
    def url(self, name: str, parameters: Any = None, expire: Any = None, http_method: Any = None) -> str:
        return urljoin(str(settings.MEDIA_URL), filepath_to_uri(name))

    def _save(self, name: str, content: Any) -> str:
        size = getattr(content, "size", None)
        if self.gzip or size is None or size >= self.transfer_config.multipart_threshold:
            return str(super()._save(name, content))
        if hasattr(content, "seek"):
            content.seek(0, os.SEEK_SET)
        data = content.read()
        cleaned = clean_name(name)
        self.put_exact(cleaned, data if isinstance(data, bytes) else data.encode())
        return str(cleaned)

    def put_exact(self, name: str, data: bytes) -> None:
        """Store `data` under exactly `name` in one request, replacing an object of that name.
        No existence check: for callers that own the name (content-addressed, under a lock)."""
        key = self._normalize_name(clean_name(name))
        params = self._get_write_parameters(key, ContentFile(data))
        self.connection.meta.client.put_object(Bucket=self.bucket_name, Key=key, Body=data, **params)
