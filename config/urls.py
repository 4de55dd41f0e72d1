from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from annotation.views import media_file

urlpatterns = [
    # Liveness, readiness, metrics (answered early by core.health.ProbeMiddleware; named here for reverse()).
    path("", include("core.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("accounts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("annotation.api_urls")),
    # Uploaded images, to the members of their project only (in every environment).
    path("media/<path:path>", media_file, name="media"),
    path("", include("annotation.urls")),
]

handler500 = "config.errors.server_error"
