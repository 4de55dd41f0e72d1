"""PostgreSQL-only guards the ORM cannot express portably.

- every rating value lies in 0..scale_max, with no NULL element, and the vector has the
  length of its mode (40 taxonomy emotions, or 1 in binary mode);
- ratings and their revisions are never deleted (expert ratings are expensive; a change keeps its
  history in RatingRevision). TRUNCATE (test teardown) is not affected.

The SQLite demo database relies on the service-layer validation alone.
"""

from django.db import migrations

from annotation.migrations._postgres import postgres_sql

from annotation.taxonomy import N_EMOTIONS

FORWARD = f"""
ALTER TABLE annotation_rating ADD CONSTRAINT rating_values_valid CHECK (
    array_ndims("values") = 1
    AND array_position("values", NULL) IS NULL
    AND 0 <= ALL("values")
    AND scale_max >= ALL("values")
    AND array_length("values", 1) = CASE WHEN emotion IS NULL THEN {N_EMOTIONS} ELSE 1 END
);
ALTER TABLE annotation_ratingrevision ADD CONSTRAINT ratingrevision_values_valid CHECK (
    array_ndims("values") = 1 AND array_position("values", NULL) IS NULL AND 0 <= ALL("values")
);
CREATE FUNCTION emorate_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'rows of % are never deleted (expert ratings are kept for good)', TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER rating_never_deleted BEFORE DELETE ON annotation_rating
    FOR EACH ROW EXECUTE FUNCTION emorate_refuse_delete();
CREATE TRIGGER ratingrevision_never_deleted BEFORE DELETE ON annotation_ratingrevision
    FOR EACH ROW EXECUTE FUNCTION emorate_refuse_delete();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS rating_never_deleted ON annotation_rating;
DROP TRIGGER IF EXISTS ratingrevision_never_deleted ON annotation_ratingrevision;
DROP FUNCTION IF EXISTS emorate_refuse_delete();
ALTER TABLE annotation_rating DROP CONSTRAINT IF EXISTS rating_values_valid;
ALTER TABLE annotation_ratingrevision DROP CONSTRAINT IF EXISTS ratingrevision_values_valid;
"""


class Migration(migrations.Migration):
    dependencies = [("annotation", "0001_initial")]
    operations = [postgres_sql(FORWARD, BACKWARD)]
