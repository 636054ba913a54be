# RasterTile now belongs to the screening app (screening 0001 takes over the model
# state). Only the state changes here: the table plots_rastertile and its rows stay.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('plots', '0010_rastertile'),
        ('screening', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name='RasterTile')],
        ),
    ]
