"""Batches (rounds, #22): Batch, BatchImage, Assignment.batch, and the trigger that keeps a batch's
images in step with their image (annotation/db/postgres.py: emorate_batch_image_sync)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from ._postgres import postgres_sql

# As it stands after this migration (annotation/db/postgres.py keeps the latest text).
FORWARD = """
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
        ('annotation', '0023_allocation_provenance'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='BatchImage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('priority', models.FloatField(default=0.0)),
                ('open', models.BooleanField(default=True)),
                ('added_at', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name='Batch',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('state', models.CharField(choices=[('draft', 'Draft (planned, not served)'), ('open', 'Open (served)'), ('paused', 'Paused (not served)'), ('closed', 'Closed')], default='draft', max_length=10)),
                ('target_ratings', models.PositiveSmallIntegerField(help_text='Ratings wanted per image in this batch')),
                ('priority', models.IntegerField(default=0, help_text="Higher = served before the project's other batches")),
                ('due_on', models.DateField(blank=True, null=True)),
                ('all_raters', models.BooleanField(default=True, help_text='Every rater of the project may rate it')),
                ('source', models.CharField(choices=[('manual', 'Chosen images'), ('import', 'An import'), ('filter', 'A filter'), ('sample', 'A stratified random sample'), ('disputed', 'Disputed images sent back')], default='manual', max_length=10)),
                ('source_spec', models.JSONField(blank=True, default=dict)),
                ('n_images', models.PositiveIntegerField(default=0, help_text='Images in the batch (kept by the services)')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('opened_at', models.DateTimeField(blank=True, null=True)),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('completed_alert_at', models.DateTimeField(blank=True, null=True)),
                ('behind_alert_at', models.DateTimeField(blank=True, null=True)),
                ('agreement', models.JSONField(blank=True, null=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('project', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='batches', to='annotation.project')),
                ('raters', models.ManyToManyField(blank=True, help_text='Who may rate it when not all raters may', related_name='batches_assigned', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-priority', 'id'],
            },
        ),
        migrations.AddField(
            model_name='assignment',
            name='batch',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='assignments', to='annotation.batch'),
        ),
        migrations.AddIndex(
            model_name='assignment',
            index=models.Index(condition=models.Q(('batch__isnull', False)), fields=['batch', 'rater', 'status'], name='assignment_batch_rater'),
        ),
        migrations.AddField(
            model_name='batchimage',
            name='batch',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='members', to='annotation.batch'),
        ),
        migrations.AddField(
            model_name='batchimage',
            name='image',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='batch_memberships', to='annotation.image'),
        ),
        migrations.AddIndex(
            model_name='batch',
            index=models.Index(fields=['project', 'state'], name='batch_project_state'),
        ),
        migrations.AddConstraint(
            model_name='batch',
            constraint=models.UniqueConstraint(fields=('project', 'name'), name='batch_name_unique_in_project'),
        ),
        migrations.AddConstraint(
            model_name='batch',
            constraint=models.CheckConstraint(condition=models.Q(('state__in', ['draft', 'open', 'paused', 'closed'])), name='batch_state_valid'),
        ),
        migrations.AddConstraint(
            model_name='batch',
            constraint=models.CheckConstraint(condition=models.Q(('target_ratings__gte', 1)), name='batch_target_positive'),
        ),
        migrations.AddIndex(
            model_name='batchimage',
            index=models.Index(fields=['image'], name='batch_image_image'),
        ),
        migrations.AddIndex(
            model_name='batchimage',
            index=models.Index(condition=models.Q(('open', True)), fields=['batch', '-priority', 'image'], name='batch_image_open'),
        ),
        migrations.AddConstraint(
            model_name='batchimage',
            constraint=models.UniqueConstraint(fields=('batch', 'image'), name='batch_image_unique'),
        ),
        postgres_sql(FORWARD,
                 "DROP TRIGGER IF EXISTS image_syncs_batches ON annotation_image; "
                 "DROP FUNCTION IF EXISTS emorate_batch_image_sync();"),
    ]
