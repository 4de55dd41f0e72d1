"""Allocation provenance (#17): why each assignment was made. Leases made before this migration keep
an empty reason ("made before provenance was recorded"), except test-retest repeats, which were
always recorded as such (is_retest)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0022_project_agreement_by_profile'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='assignment',
            name='allocation_reason',
            field=models.CharField(blank=True, choices=[('coverage', 'Base coverage (ratings missing towards the target)'), ('disagreement', "Human disagreement (the experts' ratings spread)"), ('model_gap', 'Model gap (the model disagrees with the experts, or finds an unrated face expressive)'), ('quota', 'Stratum quota (a demographic stratum is under-covered)'), ('sent_back', 'Sent back by a lead for more ratings'), ('retest', 'Test-retest repeat'), ('', 'Made before provenance was recorded')], db_default='', default='', max_length=12),
        ),
        migrations.AddField(
            model_name='image',
            name='priority_reason',
            field=models.CharField(db_default='coverage', default='coverage', max_length=12),
        ),
        migrations.AddConstraint(
            model_name='assignment',
            constraint=models.CheckConstraint(condition=models.Q(('allocation_reason__in', ['coverage', 'disagreement', 'model_gap', 'quota', 'sent_back', 'retest', ''])), name='assignment_allocation_reason_valid'),
        ),
        migrations.RunSQL("UPDATE annotation_assignment SET allocation_reason = 'retest' WHERE is_retest",
                          migrations.RunSQL.noop),
    ]
