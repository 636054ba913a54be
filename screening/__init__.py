"""Deforestation screening of plots against the registered satellite tiles.

    run_screening(plot_ids=None, *, products=None, thresholds=None, workers=None, dask=None,
                  progress=None) -> ScreeningSummary

For every plot and every tile it overlaps, screening.zonal measures with
exactextract (exact cell coverage × geodesic cell area) the plot's area on valid
cells and, by product, the forest loss after and up to 31 Dec 2020 (Hansen
lossyear), the tree cover of 2000 (Hansen treecover2000), the forest share (JRC
TMF) and the mean NDVI (multispectral red/NIR). Tiles of one product are summed
per plot, so a plot across several tiles is measured whole. The verdict is one
CheckResult of kind ``deforestation`` per plot (screening.verdicts).

Work is raster-sequential: tasks are (tile, plots over it); a tile with many plots
is split into chunks of plots sorted north to south, so each chunk reads its own
band of the file. Tasks run in local processes (``workers``; 1 = in this process)
or on a Dask cluster (``dask="tcp://host:port"``; workers need this project
installed and must see the tile files at the catalogued paths). Results are written in batches with the checks' own
skip-if-unchanged rule: re-running with unchanged inputs writes nothing.

The app: models (RasterTile, the tile catalog), catalog (validating and
registering tiles: raster_load), cells, zonal and verdicts (the measure, free of
Django), batch and writer (tasks and results), demo (the synthetic loss tiles).
"""

from __future__ import annotations

from importlib import import_module

# Spawned local workers and Dask workers unpickle tasks by importing
# screening.zonal, which runs this file first: it must not import Django
# models, so the public names are loaded on first use (PEP 562).
_EXPORTS = {"CHUNK_PLOTS": "batch", "ScreeningSummary": "batch", "run_screening": "batch", "select_tiles": "batch",
            "METHOD_VERSION": "verdicts", "Thresholds": "verdicts"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
