"""Adjudication by a lead: Image.adjudication / adjudicated_at, and Image.extra_target ("send back for
more ratings"), which the queue counters of migration 0007 now honour.

`queue_full` = n_ratings >= project.target_ratings + image.extra_target. The two trigger functions
of 0007 are replaced with that comparison, and a third trigger recomputes queue_full when
extra_target changes (PostgreSQL: BEFORE UPDATE on the row; the SQLite demo: annotation/db/sqlite.py).
"""

from django.db import migrations, models

from annotation.migrations._postgres import postgres_sql

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION emorate_image_count_ratings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE annotation_image i
       SET n_ratings = i.n_ratings + c.n, queue_full = i.n_ratings + c.n >= p.target_ratings + i.extra_target
      FROM (SELECT image_id, count(*) AS n FROM new_ratings WHERE emotion IS NULL GROUP BY image_id) c,
           annotation_project p
     WHERE i.id = c.image_id AND p.id = i.project_id;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION emorate_image_queue_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE annotation_image SET queue_full = n_ratings >= NEW.target_ratings + extra_target
     WHERE project_id = NEW.id AND queue_full <> (n_ratings >= NEW.target_ratings + extra_target);
    RETURN NULL;
END $$;
CREATE FUNCTION emorate_image_extra_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.queue_full := NEW.n_ratings >= (SELECT target_ratings FROM annotation_project WHERE id = NEW.project_id)
                                       + NEW.extra_target;
    RETURN NEW;
END $$;
CREATE TRIGGER image_extra_target_requeues BEFORE UPDATE OF extra_target ON annotation_image
    FOR EACH ROW WHEN (OLD.extra_target IS DISTINCT FROM NEW.extra_target)
    EXECUTE FUNCTION emorate_image_extra_target();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS image_extra_target_requeues ON annotation_image;
DROP FUNCTION IF EXISTS emorate_image_extra_target();
CREATE OR REPLACE FUNCTION emorate_image_count_ratings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE annotation_image i
       SET n_ratings = i.n_ratings + c.n, queue_full = i.n_ratings + c.n >= p.target_ratings
      FROM (SELECT image_id, count(*) AS n FROM new_ratings WHERE emotion IS NULL GROUP BY image_id) c,
           annotation_project p
     WHERE i.id = c.image_id AND p.id = i.project_id;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION emorate_image_queue_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE annotation_image SET queue_full = n_ratings >= NEW.target_ratings
     WHERE project_id = NEW.id AND queue_full <> (n_ratings >= NEW.target_ratings);
    RETURN NULL;
END $$;
"""


# SQLite (the demo): annotation/db/sqlite.py creates the triggers after every migrate.


class Migration(migrations.Migration):
    dependencies = [("annotation", "0009_postgres_audit_append_only")]
    operations = [
        migrations.AddField(
            model_name="image",
            name="adjudicated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="image",
            name="adjudication",
            field=models.CharField(blank=True, db_default="", default="", help_text="confirmed, flagged or more_ratings; empty = not adjudicated", max_length=20),
        ),
        migrations.AddField(
            model_name="image",
            name="extra_target",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        postgres_sql(POSTGRES_FORWARD, POSTGRES_BACKWARD),
    ]
