from typing import Any

from django.dispatch import receiver

from accounts.signals import invitation_accepted

from .models import Membership, Project


@receiver(invitation_accepted)
def add_invited_memberships(sender: Any, user: Any, invitation: Any, **kwargs: Any) -> None:
    for project in Project.objects.filter(slug__in=invitation.projects or []):
        Membership.objects.get_or_create(project=project, user=user)
