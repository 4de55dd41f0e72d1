"""A cap on request bodies, enforced before anything reads them.

Caddy refuses bodies over EMORATE_MAX_UPLOAD in a deployment; this is the same cap inside the app,
for a gunicorn reached without the proxy (a misconfigured deployment, an internal network): a
request announcing a larger body is answered 413 before Django parses a byte of it, so no upload
can fill memory or the temporary folder. Per-file limits (EMORATE_IMAGE_MAX_BYTES) are checked
from each file's size before it is read.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = int(settings.EMORATE_MAX_REQUEST_BYTES)
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0 or length > limit:
            message = (f"request body of {raw} bytes refused: the limit is {limit:,} bytes (EMORATE_MAX_REQUEST_BYTES)"
                       if length >= 0 else f"invalid Content-Length {raw[:40]!r}")
            status = 413 if length >= 0 else 400
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=status)
            return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
