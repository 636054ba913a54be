"""Keep ProtectedAreaPiece in step with ProtectedArea.geom inside the database.

A trigger rather than a save() hook, so bulk loads through COPY or raw SQL, and
updates from psql, cannot leave the overlap index stale. 256 vertices per piece is
PostGIS's default and a good balance between index size and per-piece cost.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION plots_protectedarea_subdivide() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.geom IS NOT DISTINCT FROM OLD.geom THEN
        RETURN NEW;
    END IF;
    DELETE FROM plots_protectedareapiece WHERE area_id = NEW.id;
    INSERT INTO plots_protectedareapiece (area_id, geom)
    SELECT NEW.id, piece::geometry(Polygon, 4326)
    FROM (SELECT (ST_Dump(ST_Subdivide(NEW.geom, 256))).geom AS piece) s
    WHERE GeometryType(piece) = 'POLYGON';
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER plots_protectedarea_subdivide
AFTER INSERT OR UPDATE OF geom ON plots_protectedarea
FOR EACH ROW EXECUTE FUNCTION plots_protectedarea_subdivide();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS plots_protectedarea_subdivide ON plots_protectedarea;
DROP FUNCTION IF EXISTS plots_protectedarea_subdivide();
"""


class Migration(migrations.Migration):
    dependencies = [("plots", "0001_initial")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
