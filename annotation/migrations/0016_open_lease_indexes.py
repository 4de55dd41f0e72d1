"""The open-lease indexes hold only open leases (partial on status = 'open'): the claim's capacity
count then always walks an index led by the image, however many raters hold a lease."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0015_calibration'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='assignment',
            name='assignment_image_open',
        ),
        migrations.RemoveIndex(
            model_name='assignment',
            name='assignment_item_open',
        ),
        migrations.AddIndex(
            model_name='assignment',
            index=models.Index(condition=models.Q(('status', 'open')), fields=['image', 'expires_at'], name='assignment_image_open'),
        ),
        migrations.AddIndex(
            model_name='assignment',
            index=models.Index(condition=models.Q(('status', 'open')), fields=['item', 'expires_at'], name='assignment_item_open'),
        ),
    ]
