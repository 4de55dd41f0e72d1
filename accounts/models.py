"""Users log in with their email. Roles: rater, lead, admin.

The role is the one source of privilege: `is_staff` and `is_superuser` follow it on every save and a
database constraint refuses any other combination (a demoted admin loses the Django admin at once).
Every change of role, activation, staff/superuser flags, groups or permissions is written to
`AccessChange` with the acting user (see accounts/audit.py).

This app never imports `annotation`: project membership lives there.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any, ClassVar

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    RATER = "rater", "Rater"
    LEAD = "lead", "Project lead"
    ADMIN = "admin", "Administrator"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("an email address is required")
        user = self.model(email=canonical_email(email), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("role", Role.RATER)
        return self._create(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.update(role=Role.ADMIN)
        return self._create(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        # Exact match on the canonical form: no database case folding, which folds more
        # characters (U+017F, U+0131) than the throttle keys would.
        return self.get(email=canonical_email(username or ""))


def canonical_email(raw: str) -> str:
    from .throttle import canonical_email as canonical

    return canonical(raw)


# Fields whose changes the access audit records.
AUDITED_FIELDS = ("role", "is_active", "is_staff", "is_superuser")


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.RATER)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    # Accounts created by import_ratings for raters named in a file: they own ratings but cannot log in.
    imported = models.BooleanField(default=False)
    # Leads receive a weekly digest of their projects unless they turn it off.
    email_digest = models.BooleanField(default=True, help_text="Send me the weekly project digest")

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.CheckConstraint(condition=models.Q(role__in=Role.values), name="user_role_valid"),
            models.CheckConstraint(
                condition=models.Q(role=Role.ADMIN, is_staff=True, is_superuser=True)
                | (~models.Q(role=Role.ADMIN) & models.Q(is_staff=False, is_superuser=False)),
                name="user_flags_follow_role",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.email

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_lead(self) -> bool:
        return self.role == Role.LEAD

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The flags follow the role, here and nowhere else (the database checks it too).
        self.is_staff = self.is_superuser = self.role == Role.ADMIN
        self.email = canonical_email(self.email)
        update_fields = kwargs.get("update_fields")
        watched = self.pk is not None and (update_fields is None or bool(set(update_fields) & set(AUDITED_FIELDS)))
        old = (User.objects.filter(pk=self.pk).values(*AUDITED_FIELDS).first() if watched else None)
        if update_fields is not None and "role" in update_fields:
            kwargs["update_fields"] = {*update_fields, "is_staff", "is_superuser"}
        super().save(*args, **kwargs)
        from .audit import access_changes_record

        access_changes_record(self, old)


def _invitation_token() -> str:
    return secrets.token_urlsafe(32)


def _invitation_expiry():  # type: ignore[no-untyped-def]
    return timezone.now() + timedelta(days=14)


class AccessChange(models.Model):
    """One change of a user's access (role, activation, staff/superuser, groups, permissions) and who
    made it. `actor` is empty for changes made outside a request (commands, migrations)."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="access_changes")
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    field = models.CharField(max_length=40)
    old = models.TextField(blank=True)
    new = models.TextField(blank=True)
    via = models.CharField(max_length=200, blank=True, help_text="the request path, or empty outside a request")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.user}: {self.field} {self.old} -> {self.new} by {self.actor or 'system'}"


class TokenScope(models.TextChoices):
    READ = "read", "Read only"
    READ_WRITE = "read_write", "Read and write"


TOKEN_PREFIX = "emr_"


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """An API token. Only the SHA-256 of the key is stored; the key is shown once, at creation."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text="the key's first characters, to recognise it")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=10, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(scope__in=TokenScope.values), name="apitoken_scope_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}... ({self.user}, {self.scope})"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class EmailSent(models.Model):
    """One row per automatic email actually sent, keyed so the same email is never sent twice
    (a digest per project, lead and period; an invitation reminder)."""

    key = models.CharField(max_length=200, unique=True)
    to = models.EmailField()
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at"]

    def __str__(self) -> str:
        return self.key


class Invitation(models.Model):
    """An invitation to create an account. `projects` holds project slugs the app resolves on accept."""

    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.RATER)
    projects = models.JSONField(default=list, blank=True)
    token = models.CharField(max_length=64, unique=True, default=_invitation_token, editable=False)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=_invitation_expiry)
    accepted_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation for {self.email} ({self.role})"

    @property
    def is_usable(self) -> bool:
        return self.accepted_at is None and self.expires_at > timezone.now()


class Discipline(models.TextChoices):
    CLINICAL = "clinical_psychology", "Clinical psychology"
    AFFECTIVE = "affective_science", "Affective science / emotion research"
    SOCIAL = "social_psychology", "Social or personality psychology"
    DEVELOPMENTAL = "developmental_psychology", "Developmental psychology"
    NEURO = "neuroscience", "Cognitive or affective neuroscience"
    PSYCHIATRY = "psychiatry", "Psychiatry"
    OTHER = "other", "Other"


class RaterProfile(models.Model):
    """A rater's professional background, given by the rater with consent, editable by them only.

    Used only in aggregate: the release card describes the rater pool (groups of fewer than
    PROFILE_MIN_GROUP raters are folded into "other or not given") and the agreement
    snapshot can break agreement down by one field, never per person. Without consent nothing of
    it is used anywhere, and withdrawing consent removes it from what is computed next.
    Groups: profile_groups below.
    """

    user = models.OneToOneField("accounts.User", on_delete=models.CASCADE, related_name="rater_profile")
    consented = models.BooleanField(default=False)
    consented_at = models.DateTimeField(null=True, blank=True)
    discipline = models.CharField(max_length=40, choices=Discipline.choices, blank=True)
    years_experience = models.PositiveSmallIntegerField(null=True, blank=True)
    native_language = models.CharField(max_length=60, blank=True)
    training_country = models.CharField(max_length=60, blank=True)
    notes = models.TextField(blank=True, max_length=2000, help_text="Private: never shown to anyone else")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"profile of {self.user_id}"

    def field_value(self, field: str) -> str:
        """The group a consented profile falls into for `field` ("" when not given)."""
        if not self.consented:
            return ""
        if field == "years_experience":
            return experience_band(self.years_experience)
        if field == "discipline":
            return self.get_discipline_display() if self.discipline else ""
        return str(getattr(self, field) or "").strip()


PROFILE_FIELDS = ("discipline", "years_experience", "native_language", "training_country")
PROFILE_MIN_GROUP = 3  # raters: a smaller group would describe one or two people
PROFILE_OTHER = "other or not given"


def profile_groups(rater_ids: list[int], field: str) -> dict[int, str]:
    """Each rater's group by one field of their consented profile: their answer, or PROFILE_OTHER
    when they gave none (or no consent) or fewer than PROFILE_MIN_GROUP raters gave the same one.
    The one grouping behind the release card's rater pool and the snapshot's breakdown."""
    given = {p.user_id: p.field_value(field)
             for p in RaterProfile.objects.filter(user_id__in=rater_ids, consented=True)}
    label = {r: given.get(r) or PROFILE_OTHER for r in rater_ids}
    sizes: dict[str, int] = {}
    for value in label.values():
        sizes[value] = sizes.get(value, 0) + 1
    return {r: (v if sizes[v] >= PROFILE_MIN_GROUP else PROFILE_OTHER) for r, v in label.items()}


def experience_band(years: int | None) -> str:
    if years is None:
        return ""
    for upper, label in ((2, "under 3 years"), (9, "3-9 years"), (19, "10-19 years")):
        if years <= upper:
            return label
    return "20 years or more"
