"""The rate loop's submit pays for one statement where a new rating's count is kept (#21 goal 6).

Before, a rating's INSERT updated its image (emorate_image_count_ratings), and that UPDATE fired the
rounds' row trigger (image_syncs_batches: a PL/pgSQL call and an UPDATE per image) and the coverage
tallies' statement trigger (image_tally_update: a PL/pgSQL call and its own INSERT ... SELECT over the
transition tables). Now the count trigger does all three in one statement (the image UPDATE ...
RETURNING feeding the batch sync and the tally rows), and the two image triggers skip updates made
inside a trigger (WHEN ... pg_trigger_depth() = 0; the other trigger that updates images,
emorate_image_queue_target, changes only queue_full, which neither looks at). Every other update of
an image (a lead's flag, send-back, relabel, priority, a raw UPDATE of n_ratings) goes through the
triggers as before. The same rows, the same counts (tests/annotation/test_tally_triggers.py).
"""

from django.db import migrations

from ._postgres import postgres_sql

# As it stands after this migration (annotation/db/postgres.py keeps the latest text).
FORWARD = """
CREATE OR REPLACE FUNCTION emorate_image_count_ratings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH counted AS (
        UPDATE annotation_image i
           SET n_ratings = i.n_ratings + c.n, queue_full = i.n_ratings + c.n >= p.target_ratings + i.extra_target
          FROM (SELECT image_id, count(*) AS n FROM new_ratings WHERE emotion IS NULL GROUP BY image_id) c,
               annotation_project p
         WHERE i.id = c.image_id AND p.id = i.project_id
        RETURNING i.id, i.project_id, i.n_ratings, c.n, i.ethnicity, i.age, i.gender,
                  i.adjudication = 'more_ratings' AS sent_back, i.flagged, i.file, i.priority, i.extra_target
    ), synced AS (
        UPDATE annotation_batchimage bi
           SET priority = u.priority,
               open = NOT u.flagged AND u.file <> '' AND u.n_ratings < b.target_ratings + u.extra_target
          FROM counted u, annotation_batch b
         WHERE bi.image_id = u.id AND b.id = bi.batch_id
           AND (bi.priority IS DISTINCT FROM u.priority
                OR bi.open IS DISTINCT FROM (NOT u.flagged AND u.file <> ''
                                             AND u.n_ratings < b.target_ratings + u.extra_target))
    )
    INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
    SELECT u.project_id, m.n_ratings, u.ethnicity, u.age, u.gender, u.sent_back, sum(m.d)
      FROM counted u CROSS JOIN LATERAL (VALUES (u.n_ratings - u.n, -1), (u.n_ratings, 1)) m (n_ratings, d)
     WHERE NOT u.flagged
     GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(m.d) <> 0;
    RETURN NULL;
END $$;

DROP TRIGGER image_syncs_batches ON annotation_image;
CREATE TRIGGER image_syncs_batches AFTER UPDATE OF n_ratings, extra_target, priority, flagged, file ON annotation_image
    FOR EACH ROW WHEN ((OLD.n_ratings IS DISTINCT FROM NEW.n_ratings AND pg_trigger_depth() = 0)
                       OR OLD.extra_target IS DISTINCT FROM NEW.extra_target
                       OR OLD.priority IS DISTINCT FROM NEW.priority OR OLD.flagged IS DISTINCT FROM NEW.flagged
                       OR OLD.file IS DISTINCT FROM NEW.file)
    EXECUTE FUNCTION emorate_batch_image_sync();

DROP TRIGGER image_tally_update ON annotation_image;
CREATE TRIGGER image_tally_update AFTER UPDATE ON annotation_image
    REFERENCING OLD TABLE AS old_images NEW TABLE AS new_images FOR EACH STATEMENT WHEN (pg_trigger_depth() = 0)
    EXECUTE FUNCTION emorate_image_tally();
"""

BACKWARD = """
CREATE OR REPLACE FUNCTION emorate_image_count_ratings() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE annotation_image i
       SET n_ratings = i.n_ratings + c.n, queue_full = i.n_ratings + c.n >= p.target_ratings + i.extra_target
      FROM (SELECT image_id, count(*) AS n FROM new_ratings WHERE emotion IS NULL GROUP BY image_id) c,
           annotation_project p
     WHERE i.id = c.image_id AND p.id = i.project_id;
    RETURN NULL;
END $$;

DROP TRIGGER image_syncs_batches ON annotation_image;
CREATE TRIGGER image_syncs_batches AFTER UPDATE OF n_ratings, extra_target, priority, flagged, file ON annotation_image
    FOR EACH ROW WHEN (OLD.n_ratings IS DISTINCT FROM NEW.n_ratings OR OLD.extra_target IS DISTINCT FROM NEW.extra_target
                       OR OLD.priority IS DISTINCT FROM NEW.priority OR OLD.flagged IS DISTINCT FROM NEW.flagged
                       OR OLD.file IS DISTINCT FROM NEW.file)
    EXECUTE FUNCTION emorate_batch_image_sync();

DROP TRIGGER image_tally_update ON annotation_image;
CREATE TRIGGER image_tally_update AFTER UPDATE ON annotation_image
    REFERENCING OLD TABLE AS old_images NEW TABLE AS new_images FOR EACH STATEMENT EXECUTE FUNCTION emorate_image_tally();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0025_image_tally'),
    ]

    operations = [
        postgres_sql(FORWARD, BACKWARD),
    ]
