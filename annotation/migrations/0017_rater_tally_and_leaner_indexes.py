"""RaterTally, kept by the database, and fewer indexes for every lease and rating to maintain.

- annotation_ratertally: each rater's count of ratings + test-retest repeats per project (the rate
  page's "You have rated N"), read on every claim. It was counted on every claim, one heap row
  per rating the rater ever gave. PostgreSQL: statement-level AFTER INSERT triggers on
  annotation_rating and annotation_retestrating upsert each statement's counts, in (project,
  rater) order so that concurrent bulk imports lock tallies in one order. Backfilled here. SQLite
  (the demo): row-level triggers from annotation/db/sqlite.py.
- Indexes that another index already covers are dropped: rating(project) by rating_project_image,
  assignment(rater) by assignment_rater_image, membership(project) by membership_unique; the
  item index of assignments holds only leases that have an item (binary mode), not a NULL entry
  for every intensity lease. The partial open-lease indexes of migration 0016 go: the claim now
  counts an image's open leases through the image's own index (annotation.services.queue._OPEN_SQL),
  whatever the statistics say.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from ._postgres import postgres_sql

BACKFILL = """
INSERT INTO annotation_ratertally (project_id, rater_id, n_rated)
SELECT project_id, rater_id, count(*) FROM (
    SELECT project_id, rater_id FROM annotation_rating
    UNION ALL SELECT project_id, rater_id FROM annotation_retestrating
) r GROUP BY project_id, rater_id
"""

POSTGRES_FORWARD = """
CREATE FUNCTION emorate_rater_tally() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO annotation_ratertally AS t (project_id, rater_id, n_rated)
    SELECT project_id, rater_id, count(*) FROM new_rows
     GROUP BY project_id, rater_id ORDER BY project_id, rater_id
    ON CONFLICT (project_id, rater_id) DO UPDATE SET n_rated = t.n_rated + EXCLUDED.n_rated;
    RETURN NULL;
END $$;
CREATE TRIGGER rating_tallies_rater AFTER INSERT ON annotation_rating
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION emorate_rater_tally();
CREATE TRIGGER retest_tallies_rater AFTER INSERT ON annotation_retestrating
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION emorate_rater_tally();
"""

POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS rating_tallies_rater ON annotation_rating;
DROP TRIGGER IF EXISTS retest_tallies_rater ON annotation_retestrating;
DROP FUNCTION IF EXISTS emorate_rater_tally();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0016_open_lease_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RaterTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('n_rated', models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.RemoveIndex(
            model_name='assignment',
            name='assignment_image_open',
        ),
        migrations.RemoveIndex(
            model_name='assignment',
            name='assignment_item_open',
        ),
        migrations.AlterField(
            model_name='assignment',
            name='item',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to='annotation.binaryitem'),
        ),
        migrations.AlterField(
            model_name='assignment',
            name='rater',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='assignments', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='membership',
            name='project',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='memberships', to='annotation.project'),
        ),
        migrations.AlterField(
            model_name='rating',
            name='project',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='ratings', to='annotation.project'),
        ),
        migrations.AddIndex(
            model_name='assignment',
            index=models.Index(condition=models.Q(('item__isnull', False)), fields=['item'], name='assignment_item'),
        ),
        migrations.AddField(
            model_name='ratertally',
            name='project',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='annotation.project'),
        ),
        migrations.AddField(
            model_name='ratertally',
            name='rater',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddConstraint(
            model_name='ratertally',
            constraint=models.UniqueConstraint(fields=('project', 'rater'), name='rater_tally_unique'),
        ),
        # SQLite (the demo): annotation/db/sqlite.py creates the triggers and recounts after every migrate.
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        postgres_sql(POSTGRES_FORWARD, POSTGRES_BACKWARD),
    ]
