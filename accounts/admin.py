from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from .models import AccessChange, ApiToken, EmailSent, Invitation, User


def _site_login(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    """The admin signs in through the site's login page: one throttle, second factor and single
    sign-on for every way in (the admin's own password form would bypass them)."""
    return redirect_to_login(request.GET.get("next") or "/admin/", login_url="/accounts/login/")


admin.site.login = _site_login  # type: ignore[method-assign]


class EmailUserCreationForm(AdminUserCreationForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = ("email", "role")


class EmailUserChangeForm(UserChangeForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin):  # type: ignore[type-arg]
    add_form = EmailUserCreationForm
    form = EmailUserChangeForm
    ordering = ["email"]
    list_display = ["email", "display_name", "role", "is_active", "imported", "date_joined"]
    list_filter = ["role", "is_active", "imported"]
    search_fields = ["email", "display_name"]
    # Staff and superuser follow the role (User.save); shown, never edited.
    readonly_fields = ["is_staff", "is_superuser", "last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("display_name", "role", "imported", "email_digest")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "role", "usable_password", "password1", "password2")}),)


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ["email", "role", "created_at", "expires_at", "emailed_at", "reminded_at", "accepted_at"]
    readonly_fields = ["token", "accepted_at", "emailed_at", "reminded_at"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Tokens are listed by prefix; the key itself is stored nowhere."""

    list_display = ["prefix", "user", "name", "scope", "created_at", "expires_at", "last_used_at", "revoked_at"]
    list_filter = ["scope"]
    fields = ["user", "name", "prefix", "scope", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = ["user", "prefix", "scope", "created_at", "expires_at", "last_used_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AccessChange)
class AccessChangeAdmin(_ReadOnly):
    list_display = ["created_at", "user", "field", "old", "new", "actor", "via"]
    list_filter = ["field"]
    search_fields = ["user__email", "actor__email"]


@admin.register(EmailSent)
class EmailSentAdmin(_ReadOnly):
    list_display = ["sent_at", "key", "to"]
    search_fields = ["key", "to"]
