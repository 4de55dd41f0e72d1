"""Image.n_ratings / Image.queue_full, kept by the database, and the claim's partial index.

The claim used to count every image's ratings while walking the queue, so it got slower with
every image that was done (at 1,000,000 images a claim walked all full images first). Now:

- `n_ratings` = the image's intensity ratings (emotion IS NULL), raised by a trigger on every
  INSERT into annotation_rating, whatever wrote it (the rate page, import_ratings, the demo, raw
  SQL). Ratings are never deleted (migration 0002) and never change image or emotion, so inserts
  are all it needs to follow.
- `queue_full` = n_ratings >= the project's target_ratings; recomputed for the whole project when
  target_ratings changes.
- `image_queue_open`: (project, -priority, id) over images that are not full, not flagged and have
  a file: the claim's candidates, in serving order.

PostgreSQL: one statement-level trigger per INSERT statement (a transition table; a bulk import
updates each image once). SQLite (the demo): row-level triggers with the same effect, made by annotation/db/sqlite.py.
"""

from django.db import migrations, models

BACKFILL = [
    "UPDATE annotation_image SET n_ratings = (SELECT count(*) FROM annotation_rating r "
    "WHERE r.image_id = annotation_image.id AND r.emotion IS NULL)",
    "UPDATE annotation_image SET queue_full = n_ratings >= (SELECT p.target_ratings FROM annotation_project p "
    "WHERE p.id = annotation_image.project_id)",
]

POSTGRES_FORWARD = """
CREATE FUNCTION emorate_image_count_ratings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE annotation_image i
       SET n_ratings = i.n_ratings + c.n, queue_full = i.n_ratings + c.n >= p.target_ratings
      FROM (SELECT image_id, count(*) AS n FROM new_ratings WHERE emotion IS NULL GROUP BY image_id) c,
           annotation_project p
     WHERE i.id = c.image_id AND p.id = i.project_id;
    RETURN NULL;
END $$;
CREATE TRIGGER rating_counts_image AFTER INSERT ON annotation_rating
    REFERENCING NEW TABLE AS new_ratings FOR EACH STATEMENT EXECUTE FUNCTION emorate_image_count_ratings();
CREATE FUNCTION emorate_image_queue_target() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE annotation_image SET queue_full = n_ratings >= NEW.target_ratings
     WHERE project_id = NEW.id AND queue_full <> (n_ratings >= NEW.target_ratings);
    RETURN NULL;
END $$;
CREATE TRIGGER project_target_requeues AFTER UPDATE OF target_ratings ON annotation_project
    FOR EACH ROW WHEN (OLD.target_ratings IS DISTINCT FROM NEW.target_ratings)
    EXECUTE FUNCTION emorate_image_queue_target();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS rating_counts_image ON annotation_rating;
DROP TRIGGER IF EXISTS project_target_requeues ON annotation_project;
DROP FUNCTION IF EXISTS emorate_image_count_ratings();
DROP FUNCTION IF EXISTS emorate_image_queue_target();
"""

def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    for sql in BACKFILL:
        schema_editor.execute(sql, params=None)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    # SQLite (the demo): annotation/db/sqlite.py creates the triggers after every migrate.


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotation", "0006_postgres_release_guards")]
    operations = [
        migrations.AddField(
            model_name="image",
            name="n_ratings",
            field=models.PositiveIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name="image",
            name="queue_full",
            field=models.BooleanField(db_default=False, default=False, editable=False),
        ),
        migrations.AddIndex(
            model_name="image",
            index=models.Index(condition=models.Q(("flagged", False), ("queue_full", False),
                                                  models.Q(("file", ""), _negated=True)),
                               fields=["project", "-priority", "id"], name="image_queue_open"),
        ),
        migrations.RunPython(forward, backward),
    ]
