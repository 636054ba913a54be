# The result in force for a plot and a kind is its latest: newest checked_at, and of
# two results with one timestamp the higher id. Defined here once, in the database,
# and used by every path that asks (tiles, the plot lists' filters, the concentration
# grid, lot origins, the check writer):
#
#   plots_latest_check             a view, for questions over many plots at once;
#   chacra_latest_check(plot, kind) a function, for one plot (an index probe on
#                                   (plot, kind, -checked_at) — a view is flattened by
#                                   the planner into a scan of every result of the kind).

from django.db import migrations

ORDER = "checked_at DESC, id DESC"

SQL = f"""
CREATE VIEW plots_latest_check AS
SELECT DISTINCT ON (plot_id, kind) * FROM plots_checkresult ORDER BY plot_id, kind, {ORDER};

CREATE FUNCTION chacra_latest_check(p_plot bigint, p_kind text) RETURNS SETOF plots_checkresult
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM plots_checkresult r WHERE r.plot_id = p_plot AND r.kind = p_kind ORDER BY {ORDER} LIMIT 1
$$;
"""

REVERSE = """
DROP FUNCTION IF EXISTS chacra_latest_check(bigint, text);
DROP VIEW IF EXISTS plots_latest_check;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("plots", "0012_plot_h3_cells_filled"),
    ]

    operations = [
        migrations.RunSQL(SQL, REVERSE),
    ]
