"""The format readers. Importing this package registers each of them (see ``registry``).

Modules starting with an underscore are shared helpers, not formats.
"""

from plots.importers.formats import csv_points, geojson, gpkg, gpx, kml, kmz, odk, shapefile  # noqa: F401
