# The tile catalog moved from plots to screening (issue 13). The table stays
# plots_rastertile: only Django's model state moves (plots 0011 drops the model from
# plots' state; this creates it in screening's), so an existing database keeps its
# rows and a fresh one gets the table from plots 0010.

import django.contrib.gis.db.models.fields
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('plots', '0010_rastertile'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='RasterTile',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('product', models.CharField(choices=[('hansen-lossyear', 'Hansen GFC year of loss (0 none, 1–23 = 2001–2023)'), ('hansen-treecover2000', 'Hansen GFC tree cover in 2000 (%)'), ('jrc-tmf', 'JRC Tropical Moist Forest cover (1 forest, 0 non-forest) in the acquired year'), ('multispectral', 'Multispectral scene (Sentinel-2, Landsat …) with red and NIR bands')], max_length=30)),
                        ('version', models.CharField(help_text='Product edition, e.g. v1.11 for Hansen GFC-2023.', max_length=60)),
                        ('path', models.CharField(help_text='Absolute file location, as the screening workers see it.', max_length=1000)),
                        ('acquired', models.DateField(blank=True, help_text='Acquisition (or reference) date of the data.', null=True)),
                        ('crs_wkt', models.TextField(help_text="The raster's coordinate reference system (WKT).")),
                        ('srid', models.IntegerField(blank=True, help_text='EPSG code of the CRS when it has one.', null=True)),
                        ('width', models.PositiveIntegerField()),
                        ('height', models.PositiveIntegerField()),
                        ('band_count', models.PositiveSmallIntegerField()),
                        ('dtype', models.CharField(max_length=20)),
                        ('nodata', models.FloatField(blank=True, null=True)),
                        ('transform', models.JSONField(help_text='GDAL geotransform-style affine (a, b, c, d, e, f) in CRS units.')),
                        ('resolution_x', models.FloatField(help_text='Cell width in CRS units (degrees or metres).')),
                        ('resolution_y', models.FloatField(help_text='Cell height in CRS units (degrees or metres).')),
                        ('bands', models.JSONField(default=dict, help_text='Band meanings by name, e.g. {"red": 1, "nir": 4}.')),
                        ('footprint', django.contrib.gis.db.models.fields.PolygonField(srid=4326)),
                        ('file_size', models.BigIntegerField(help_text='Bytes, when registered.')),
                        ('file_mtime', models.FloatField(help_text='Modification time (Unix seconds), when registered.')),
                        ('loaded_at', models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        'db_table': 'plots_rastertile',
                        'ordering': ['product', 'version', 'path'],
                        'constraints': [models.UniqueConstraint(fields=('product', 'version', 'path'), name='rastertile_unique_file'), models.CheckConstraint(condition=models.Q(('width__gt', 0), ('height__gt', 0), ('band_count__gt', 0)), name='rastertile_positive_size')],
                    },
                ),
            ],
        ),
    ]
