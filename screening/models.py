from django.contrib.gis.db import models
from django.db.models import Q


class RasterTile(models.Model):
    """One registered satellite tile (GeoTIFF/COG) of a product edition.

    The file stays where it is (``path``); the catalog keeps what screening needs
    without opening it: its CRS, grid, bands, and its footprint in WGS 84 (the
    raster's bounds, edges densified before reprojection, so a UTM or Mercator
    tile's footprint follows its curved edges in lon/lat).
    """

    class Product(models.TextChoices):
        HANSEN_LOSSYEAR = "hansen-lossyear", "Hansen GFC year of loss (0 none, 1–23 = 2001–2023)"
        HANSEN_TREECOVER2000 = "hansen-treecover2000", "Hansen GFC tree cover in 2000 (%)"
        JRC_TMF = "jrc-tmf", "JRC Tropical Moist Forest cover (1 forest, 0 non-forest) in the acquired year"
        MULTISPECTRAL = "multispectral", "Multispectral scene (Sentinel-2, Landsat …) with red and NIR bands"

    product = models.CharField(max_length=30, choices=Product.choices)
    version = models.CharField(max_length=60, help_text="Product edition, e.g. v1.11 for Hansen GFC-2023.")
    path = models.CharField(max_length=1000, help_text="Absolute file location, as the screening workers see it.")
    acquired = models.DateField(null=True, blank=True, help_text="Acquisition (or reference) date of the data.")
    crs_wkt = models.TextField(help_text="The raster's coordinate reference system (WKT).")
    srid = models.IntegerField(null=True, blank=True, help_text="EPSG code of the CRS when it has one.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    band_count = models.PositiveSmallIntegerField()
    dtype = models.CharField(max_length=20)
    nodata = models.FloatField(null=True, blank=True)
    transform = models.JSONField(help_text="GDAL geotransform-style affine (a, b, c, d, e, f) in CRS units.")
    resolution_x = models.FloatField(help_text="Cell width in CRS units (degrees or metres).")
    resolution_y = models.FloatField(help_text="Cell height in CRS units (degrees or metres).")
    bands = models.JSONField(default=dict, help_text="Band meanings by name, e.g. {\"red\": 1, \"nir\": 4}.")
    footprint = models.PolygonField(srid=4326)
    file_size = models.BigIntegerField(help_text="Bytes, when registered.")
    file_mtime = models.FloatField(help_text="Modification time (Unix seconds), when registered.")
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The table keeps the name it had when the model lived in plots (moved by
        # screening 0001 and plots 0011 without touching the database).
        db_table = "plots_rastertile"
        ordering = ["product", "version", "path"]
        constraints = [
            models.UniqueConstraint(fields=["product", "version", "path"], name="rastertile_unique_file"),
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0) & Q(band_count__gt=0),
                                   name="rastertile_positive_size"),
        ]

    def __str__(self) -> str:
        return f"{self.product} {self.version}: {self.path}"
