"""REST API v1 (DRF). Thin: parse, call a selector or service, serialise."""

from __future__ import annotations

from rest_framework import generics, serializers

from . import selectors
from .models import Project


class ProjectSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = Project
        fields = ["slug", "name", "mode", "scale_max", "target_ratings", "guidelines", "taxonomy_version"]


class ProjectListView(generics.ListAPIView):  # type: ignore[type-arg]
    """Projects the caller belongs to (admins: all)."""

    serializer_class = ProjectSerializer

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.project_list_for(self.request.user)
