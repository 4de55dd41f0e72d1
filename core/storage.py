"""The media storage backend for S3-compatible object storage.

Media files are never public: every image and release file is served by the app after its
permission check (annotation.views.media_file, the release views). So url() names that view
(MEDIA_URL + name), exactly as the filesystem backend does, and every page, fragment and API field
that links a file links through the check; the bucket itself stays private and may live on an
internal network only (docs/decisions/0007-object-storage.md).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from django.conf import settings
from django.utils.encoding import filepath_to_uri
from storages.backends.s3 import S3Storage


class PrivateS3Storage(S3Storage):
    def url(self, name: str, parameters: Any = None, expire: Any = None, http_method: Any = None) -> str:
        return urljoin(str(settings.MEDIA_URL), filepath_to_uri(name))
