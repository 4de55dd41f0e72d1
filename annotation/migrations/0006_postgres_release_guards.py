"""PostgreSQL-only: a published release, and its list of images, never change and are never deleted.

Any UPDATE or DELETE of a release row whose status is 'published' is refused, as is adding,
changing or removing ReleaseImage rows of a published release. A new version supersedes it.
"""

from django.db import migrations

from annotation.migrations._postgres import postgres_sql

FORWARD = """
CREATE FUNCTION emorate_release_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'published' THEN
        RAISE EXCEPTION 'release % is published and can never be changed; cut a new version', OLD.version
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER release_frozen BEFORE UPDATE OR DELETE ON annotation_release
    FOR EACH ROW EXECUTE FUNCTION emorate_release_frozen();

-- Statement-level with transition tables: one check per statement, not per row (a build inserts
-- 100,000 rows at once).
CREATE FUNCTION emorate_release_image_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed_rows c JOIN annotation_release r ON r.id = c.release_id
               WHERE r.status = 'published') THEN
        RAISE EXCEPTION 'the images of a published release can never be changed'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER release_image_frozen_insert AFTER INSERT ON annotation_releaseimage
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION emorate_release_image_frozen();
CREATE TRIGGER release_image_frozen_update AFTER UPDATE ON annotation_releaseimage
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION emorate_release_image_frozen();
CREATE TRIGGER release_image_frozen_delete AFTER DELETE ON annotation_releaseimage
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION emorate_release_image_frozen();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS release_frozen ON annotation_release;
DROP TRIGGER IF EXISTS release_image_frozen_insert ON annotation_releaseimage;
DROP TRIGGER IF EXISTS release_image_frozen_update ON annotation_releaseimage;
DROP TRIGGER IF EXISTS release_image_frozen_delete ON annotation_releaseimage;
DROP FUNCTION IF EXISTS emorate_release_frozen();
DROP FUNCTION IF EXISTS emorate_release_image_frozen();
"""


class Migration(migrations.Migration):
    dependencies = [("annotation", "0005_releases")]
    operations = [postgres_sql(FORWARD, BACKWARD)]
