"""Data for 0002: flags follow the role, canonical emails, hashed tokens (own transaction, so the
constraint in 0004 is added with no pending row checks)."""

from django.db import migrations


def flags_follow_role(apps, schema_editor):
    """is_staff/is_superuser follow the role from now on (the constraint below): users whose flags
    disagree lose (or gain) them, and each change is written to the access audit."""
    User = apps.get_model("accounts", "User")
    AccessChange = apps.get_model("accounts", "AccessChange")
    for user in User.objects.all():
        admin = user.role == "admin"
        for field in ("is_staff", "is_superuser"):
            if getattr(user, field) != admin:
                AccessChange.objects.create(user=user, field=field, old=str(not admin), new=str(admin),
                                            via="migration accounts 0002")
        if user.is_staff != admin or user.is_superuser != admin:
            User.objects.filter(pk=user.pk).update(is_staff=admin, is_superuser=admin)


def emails_canonical(apps, schema_editor):
    """Emails in their canonical form (NFKC + casefold), the one form lookups use; an address whose
    canonical form another account already holds is left as it is (an admin must merge them)."""
    import unicodedata

    User = apps.get_model("accounts", "User")
    taken = set(User.objects.values_list("email", flat=True))
    for pk, email in User.objects.values_list("pk", "email"):
        canonical = unicodedata.normalize("NFKC", email).strip().casefold()
        if canonical != email and canonical not in taken:
            User.objects.filter(pk=pk).update(email=canonical)
            taken.add(canonical)


def hash_existing_tokens(apps, schema_editor):
    """DRF authtoken keys (plain text) become hashed read-write tokens (what they could do before)
    that expire in 90 days; the plain-text rows are deleted."""
    import hashlib
    from datetime import timedelta

    from django.utils import timezone

    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id FROM authtoken_token")
        rows = cursor.fetchall()
        for key, user_id in rows:
            ApiToken.objects.create(user_id=user_id, name="migrated DRF token", prefix=key[:8],
                                    digest=hashlib.sha256(key.encode()).hexdigest(), scope="read_write",
                                    expires_at=timezone.now() + timedelta(days=90))
        cursor.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):

    dependencies = [("accounts", "0002_access_audit_tokens_flags")]

    operations = [
        migrations.RunPython(flags_follow_role, migrations.RunPython.noop),
        migrations.RunPython(emails_canonical, migrations.RunPython.noop),
        migrations.RunPython(hash_existing_tokens, migrations.RunPython.noop),
    ]
