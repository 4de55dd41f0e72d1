"""A lead's decision on a rater's flag (#16 finding 5): ImageFlag.resolution.

Existing data: a resolved flag is "confirmed" when its image is flagged now, else "dismissed". An
image that only raters flagged (an open flag, and no lead's "flag" decision) was taken out of the
data by one rater's word: it comes back (Image.flagged = False) and waits in the lead's review.
"""

from django.conf import settings
from django.db import migrations, models


def forward(apps, schema_editor):
    ImageFlag = apps.get_model("annotation", "ImageFlag")
    Image = apps.get_model("annotation", "Image")
    resolved = ImageFlag.objects.filter(resolved_at__isnull=False)
    resolved.filter(image__flagged=True).update(resolution="confirmed")
    resolved.filter(image__flagged=False).update(resolution="dismissed")
    waiting = ImageFlag.objects.filter(resolved_at__isnull=True).values("image_id")
    Image.objects.filter(flagged=True, pk__in=waiting).exclude(adjudication="flagged").update(flagged=False)


def backward(apps, schema_editor):
    pass  # the column goes; images stay as they are


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0018_postgres_claim_room'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='imageflag',
            name='resolution',
            field=models.CharField(blank=True, choices=[('confirmed', 'Confirmed by a lead: the image is left out'), ('dismissed', 'Dismissed by a lead: the image stays')], db_default='', default='', help_text="The lead's decision; empty while the flag is open", max_length=10),
        ),
        migrations.RunPython(forward, backward),
        migrations.AddIndex(
            model_name='imageflag',
            index=models.Index(condition=models.Q(('resolved_at__isnull', True)), fields=['project'], name='image_flag_open'),
        ),
        migrations.AddConstraint(
            model_name='imageflag',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('resolution', ''), ('resolved_at__isnull', True)), models.Q(('resolution__in', ['confirmed', 'dismissed']), ('resolved_at__isnull', False)), _connector='OR'), name='image_flag_resolution_valid'),
        ),
    ]
