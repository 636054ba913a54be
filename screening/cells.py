"""Ground area of raster cells, in square metres on the CRS's ellipsoid.

Cells of a geographic raster (EPSG:4326) are lon/lat rectangles whose area shrinks
with latitude; cells of a projected raster cover ``|dx·dy| / k`` of ground, k being
the projection's areal scale factor at the cell (1 in an equal-area projection,
sec²φ-ish in Mercator, ~0.9992–1.0008 in UTM). Nominal "30 m" never means 900 m².

Geographic: the exact area of the ellipsoidal zone between the cell's parallels,
times the cell's share of 360° of longitude:

    A = Δλ · b²/2 · [f(φ₂) − f(φ₁)],   f(φ) = sinφ/(1 − e²sin²φ) + artanh(e·sinφ)/e

(the authalic-latitude integral; b the semi-minor axis, e the eccentricity). This
is exact for a lon/lat rectangle, vectorised per row of cells.

Projected: pyproj's ``Proj.get_factors(...).areal_scale`` at the cell centre. The
factor varies by less than 1e-9 across a 30 m cell, well below the 1e-6 the figures
are rounded to.
"""

from __future__ import annotations

import numpy as np
from pyproj import CRS, Proj, Transformer


def _zone_integral(phi: np.ndarray, e: float) -> np.ndarray:
    s = np.sin(phi)
    return s / (1.0 - e * e * s * s) + np.arctanh(e * s) / e


def geographic_cell_areas_m2(crs: CRS, center_y: np.ndarray, res_x_deg: float, res_y_deg: float) -> np.ndarray:
    """Areas (m²) of lon/lat cells of ``res_x_deg`` × ``res_y_deg`` degrees centred at latitudes ``center_y``."""
    ellipsoid = crs.ellipsoid
    a, b = ellipsoid.semi_major_metre, ellipsoid.semi_minor_metre
    e = np.sqrt(1.0 - (b * b) / (a * a))
    half = np.radians(abs(res_y_deg)) / 2.0
    phi = np.radians(np.asarray(center_y, dtype=float))
    zone = _zone_integral(phi + half, e) - _zone_integral(phi - half, e)
    return np.radians(abs(res_x_deg)) * b * b / 2.0 * zone


def projected_cell_areas_m2(crs: CRS, center_x: np.ndarray, center_y: np.ndarray, res_x: float,
                            res_y: float) -> np.ndarray:
    """Ground areas (m²) of ``res_x`` × ``res_y`` cells of the projected ``crs`` centred at (x, y).

    The units of ``res_x``/``res_y`` are the CRS's linear unit (metres for every
    CRS the satellite products use; others are converted by its unit factor).
    """
    to_geographic = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    lon, lat = to_geographic.transform(np.asarray(center_x, dtype=float), np.asarray(center_y, dtype=float))
    factors = Proj(crs).get_factors(lon, lat)
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return abs(res_x * res_y) * unit * unit / np.asarray(factors.areal_scale)


def cell_areas_m2(crs: CRS, center_x: np.ndarray, center_y: np.ndarray, res_x: float, res_y: float) -> np.ndarray:
    """Ground area (m²) of each cell given by its centre, in whichever kind of CRS."""
    if crs.is_geographic:
        return geographic_cell_areas_m2(crs, center_y, res_x, res_y)
    return projected_cell_areas_m2(crs, center_x, center_y, res_x, res_y)
