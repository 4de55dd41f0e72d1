"""The images' rounds kept by the image's statement-level UPDATE trigger (#21 goal 6): the row trigger
image_syncs_batches (emorate_batch_image_sync, 0024) goes, and emorate_image_tally's UPDATE branch
syncs BatchImage from the transition table it already has (annotation/db/postgres.py). The same rule
for the same images; one trigger call per statement instead of one more per image changed."""

from django.db import migrations

from ._postgres import postgres_sql

# As it stands after this migration (annotation/db/postgres.py keeps the latest text).
FORWARD = """
DROP TRIGGER image_syncs_batches ON annotation_image;
DROP FUNCTION emorate_batch_image_sync();

CREATE OR REPLACE FUNCTION emorate_image_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
        SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings', count(*)
          FROM new_images WHERE NOT flagged GROUP BY 1, 2, 3, 4, 5, 6;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
        SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings', -count(*)
          FROM old_images WHERE NOT flagged GROUP BY 1, 2, 3, 4, 5, 6;
    ELSE
        INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
        SELECT project_id, n_ratings, ethnicity, age, gender, sent_back, sum(d)
          FROM (SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings' AS sent_back, -1 AS d
                  FROM old_images WHERE NOT flagged
                UNION ALL
                SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings', 1
                  FROM new_images WHERE NOT flagged) c
         GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0;
        UPDATE annotation_batchimage bi
           SET priority = n.priority,
               open = NOT n.flagged AND n.file <> '' AND n.n_ratings < b.target_ratings + n.extra_target
          FROM new_images n, annotation_batch b
         WHERE bi.image_id = n.id AND b.id = bi.batch_id
           AND (bi.priority IS DISTINCT FROM n.priority
                OR bi.open IS DISTINCT FROM (NOT n.flagged AND n.file <> ''
                                             AND n.n_ratings < b.target_ratings + n.extra_target));
    END IF;
    RETURN NULL;
END $$;
"""

# 0025's tally function and 0024's row trigger, as they were.
BACKWARD = """
CREATE OR REPLACE FUNCTION emorate_image_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
        SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings', count(*)
          FROM new_images WHERE NOT flagged GROUP BY 1, 2, 3, 4, 5, 6;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
        SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings', -count(*)
          FROM old_images WHERE NOT flagged GROUP BY 1, 2, 3, 4, 5, 6;
    ELSE
        INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
        SELECT project_id, n_ratings, ethnicity, age, gender, sent_back, sum(d)
          FROM (SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings' AS sent_back, -1 AS d
                  FROM old_images WHERE NOT flagged
                UNION ALL
                SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings', 1
                  FROM new_images WHERE NOT flagged) c
         GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(d) <> 0;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION emorate_batch_image_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE annotation_batchimage bi
       SET priority = NEW.priority,
           open = NOT NEW.flagged AND NEW.file <> '' AND NEW.n_ratings < b.target_ratings + NEW.extra_target
      FROM annotation_batch b
     WHERE bi.image_id = NEW.id AND b.id = bi.batch_id
       AND (bi.priority IS DISTINCT FROM NEW.priority
            OR bi.open IS DISTINCT FROM (NOT NEW.flagged AND NEW.file <> ''
                                         AND NEW.n_ratings < b.target_ratings + NEW.extra_target));
    RETURN NULL;
END $$;

CREATE TRIGGER image_syncs_batches AFTER UPDATE OF n_ratings, extra_target, priority, flagged, file ON annotation_image
    FOR EACH ROW WHEN (OLD.n_ratings IS DISTINCT FROM NEW.n_ratings OR OLD.extra_target IS DISTINCT FROM NEW.extra_target
                       OR OLD.priority IS DISTINCT FROM NEW.priority OR OLD.flagged IS DISTINCT FROM NEW.flagged
                       OR OLD.file IS DISTINCT FROM NEW.file)
    EXECUTE FUNCTION emorate_batch_image_sync();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0025_image_tally'),
    ]

    operations = [
        postgres_sql(FORWARD, BACKWARD),
    ]
