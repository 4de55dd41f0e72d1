from typing import Any

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from accounts.audit import acting_user
from accounts.models import User
from accounts.signals import invitation_accepted, invitation_projects_check

from .models import Membership, Project
from .services.audit import audit_record
from .services.tallies import image_tally_forget


@receiver(invitation_accepted)
def add_invited_memberships(sender: Any, user: Any, invitation: Any, **kwargs: Any) -> None:
    for project in Project.objects.filter(slug__in=invitation.projects or []):
        Membership.objects.get_or_create(project=project, user=user)


@receiver(invitation_projects_check)
def invitation_projects_managed(sender: Any, inviter: Any, slugs: list[str], **kwargs: Any) -> set[str]:
    """The invitation page (accounts) asks which of these projects the inviter manages."""
    from .selectors import can_manage

    return {p.slug for p in Project.objects.filter(slug__in=slugs) if can_manage(inviter, p)}


@receiver(pre_save, sender=User)
def remember_old_role(sender: Any, instance: User, **kwargs: Any) -> None:
    old = User.objects.filter(pk=instance.pk).values_list("role", "is_active").first() if instance.pk else None
    instance._audit_old = old  # type: ignore[attr-defined]


@receiver(post_save, sender=User)
def audit_role_change(sender: Any, instance: User, created: bool, **kwargs: Any) -> None:
    """Role and activation changes land in the audit history, whoever made them (admin, command, API)."""
    old = getattr(instance, "_audit_old", None)
    if created:
        audit_record(actor=None, action="user.created", obj=instance, email=instance.email, role=instance.role)
    elif old is not None and (old[0] != instance.role or old[1] != instance.is_active):
        audit_record(actor=acting_user(), action="user.role_changed", obj=instance, email=instance.email,
                     old_role=old[0], new_role=instance.role, old_active=old[1], new_active=instance.is_active)


@receiver(post_delete, sender=Project)
def forget_image_tallies(sender: Any, instance: Project, **kwargs: Any) -> None:
    """A deleted project's coverage tallies go with it (no foreign key holds them: #21)."""
    image_tally_forget(instance.pk)
