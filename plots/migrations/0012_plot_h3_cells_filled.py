# Reads no longer fill missing H3 cells (the concentration grid used to call
# h3cells.refresh() first): every write path sets them now. This fills, once, the
# cells of plots written before that (the old demo generator left them empty), so
# the grid of an existing database still counts every located plot.

from django.db import migrations


def fill(apps, schema_editor):
    from plots import h3cells  # the same rule the write paths use (point on surface, resolution 9)

    h3cells.refresh()


class Migration(migrations.Migration):

    dependencies = [
        ('plots', '0011_rastertile_moved_to_screening'),
    ]

    operations = [
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
