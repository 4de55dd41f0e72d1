"""PostgreSQL-only: the audit history is append-only (UPDATE and DELETE are refused)."""

from django.db import migrations

from annotation.migrations._postgres import postgres_sql

FORWARD = """
CREATE FUNCTION emorate_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit history is append-only' USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON annotation_auditevent
    FOR EACH ROW EXECUTE FUNCTION emorate_audit_append_only();
"""
BACKWARD = """
DROP TRIGGER IF EXISTS audit_append_only ON annotation_auditevent;
DROP FUNCTION IF EXISTS emorate_audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("annotation", "0008_audit")]
    operations = [postgres_sql(FORWARD, BACKWARD)]
