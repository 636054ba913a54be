"""The H3 cell of each plot (resolution 9), for the investors' concentration grid.

A plot's cell is the one holding its point on surface (a point inside the
polygon, or the surveyed point). It is stored as H3's 64-bit integer in
``Plot.h3_cell``; a coarser cell is ``chacra_h3_parent(h3_cell, res)`` in SQL (bit
arithmetic on the index, migration 0009). The h3 library computes the cells; the
write paths (services, the bulk import, the demo generator) set them, and the
database clears a cell whose geometry changed without it. Reads (the investors'
aggregates) never fill cells: a request must not write. ``refresh()`` fills the
cleared or missing ones from a write path: ``chacra check`` calls it, and so does
anything that writes geometry in raw SQL.
"""

from __future__ import annotations

import h3
import numpy as np
from django.db import connection

RESOLUTION = 9


def cells_for(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """H3 cells (resolution 9) as int64 for arrays of longitude and latitude."""
    return np.array([h3.str_to_int(h3.latlng_to_cell(y, x, RESOLUTION)) for x, y in zip(lon, lat)], dtype=np.int64)


def cell_for(lon: float, lat: float) -> int:
    return h3.str_to_int(h3.latlng_to_cell(lat, lon, RESOLUTION))


def refresh(plot_ids: list[int] | None = None, *, batch: int = 50_000) -> int:
    """Compute the cell of every plot (of ``plot_ids``) that has none. Returns how many.

    A write: call it from commands and write paths (``chacra check`` does), never
    from a read."""
    done = 0
    with connection.cursor() as cur:
        while True:
            where = "h3_cell IS NULL AND (boundary IS NOT NULL OR location IS NOT NULL)"
            params: list = []
            if plot_ids is not None:
                where += " AND id = ANY(%s)"
                params.append(list(plot_ids))
            cur.execute("SELECT id, ST_X(pt), ST_Y(pt) FROM (SELECT id, COALESCE(ST_PointOnSurface(boundary), "
                        f"location) AS pt FROM plots_plot WHERE {where} ORDER BY id LIMIT %s) s", params + [batch])
            rows = cur.fetchall()
            if not rows:
                return done
            ids = np.array([r[0] for r in rows], dtype=np.int64)
            cells = cells_for(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
            cur.execute("UPDATE plots_plot p SET h3_cell = c.cell FROM unnest(%s::bigint[], %s::bigint[]) AS c(id, cell) "
                        "WHERE p.id = c.id", [ids.tolist(), cells.tolist()])
            done += len(rows)
