"""The audit history: one append-only row per consequential action."""

from __future__ import annotations

from typing import Any

from django.db import models

from annotation.models import AuditEvent, Project


def audit_record(*, actor: Any, action: str, project: Project | None = None, obj: models.Model | None = None,
                 **data: Any) -> AuditEvent:
    """Record an action. Call it inside the transaction that makes the change, so both or neither stay."""
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None, action=action, project=project,
        object_type=(obj._meta.model_name or "") if obj is not None else "", object_id=str(obj.pk) if obj is not None else "",
        data=data,
    )
