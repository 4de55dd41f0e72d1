"""Operations routes: liveness, readiness, metrics (also answered early by core.health.ProbeMiddleware)."""

from django.urls import path

from .health import healthz, readyz
from .metrics import metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]
