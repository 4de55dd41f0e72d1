"""The lead's coverage tallies (#21): annotation.models.ImageTally, kept by statement-level triggers on
annotation_image (annotation/db/postgres.py: emorate_image_tally), filled from the images as they are."""

import django.db.models.deletion
from django.db import migrations, models

from ._postgres import postgres_sql

# As it stands after this migration (annotation/db/postgres.py keeps the latest text).
FORWARD = """
CREATE FUNCTION emorate_image_tally() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE TRIGGER image_tally_insert AFTER INSERT ON annotation_image
    REFERENCING NEW TABLE AS new_images FOR EACH STATEMENT EXECUTE FUNCTION emorate_image_tally();
CREATE TRIGGER image_tally_update AFTER UPDATE ON annotation_image
    REFERENCING OLD TABLE AS old_images NEW TABLE AS new_images FOR EACH STATEMENT EXECUTE FUNCTION emorate_image_tally();
CREATE TRIGGER image_tally_delete AFTER DELETE ON annotation_image
    REFERENCING OLD TABLE AS old_images FOR EACH STATEMENT EXECUTE FUNCTION emorate_image_tally();

INSERT INTO annotation_imagetally (project_id, n_ratings, ethnicity, age, gender, sent_back, images)
SELECT project_id, n_ratings, ethnicity, age, gender, adjudication = 'more_ratings', count(*)
  FROM annotation_image WHERE NOT flagged GROUP BY 1, 2, 3, 4, 5, 6;
"""
BACKWARD = """
DROP TRIGGER image_tally_insert ON annotation_image;
DROP TRIGGER image_tally_update ON annotation_image;
DROP TRIGGER image_tally_delete ON annotation_image;
DROP FUNCTION emorate_image_tally();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0024_batches'),
    ]

    operations = [
        migrations.CreateModel(
            name='ImageTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('n_ratings', models.PositiveIntegerField()),
                ('ethnicity', models.CharField(blank=True, max_length=100)),
                ('age', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('gender', models.CharField(blank=True, max_length=50)),
                ('sent_back', models.BooleanField(default=False)),
                ('images', models.IntegerField(help_text='Change in the number of images (negative: images left)')),
                ('project', models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='annotation.project')),
            ],
        ),
        postgres_sql(FORWARD, BACKWARD),
    ]
