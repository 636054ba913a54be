"""The benchmarks behind ``scripts/bench NAME``: one harness (harness.py), one module per benchmark.

Each module ends in ``BENCHMARK = harness.Benchmark(...)`` declaring its load, floor, Chacra
path and peer; synthetic.py holds the synthetic data several of them share.
"""

from __future__ import annotations

import importlib

# scripts/bench NAME -> module of this package
MODULES = {"geojson": "geojson", "overlap": "overlap", "load": "load", "tiles": "tiles",
           "concentration": "concentration", "origin": "origin", "lineage": "lineage", "zonal": "zonal",
           "load-mix": "load_mix"}


def benchmark(name: str):
    """The Benchmark declared by ``name``'s module (importing it does no database work)."""
    return importlib.import_module(f"benchmarks.{MODULES[name]}").BENCHMARK


def main(argv: list[str]) -> int:
    from benchmarks.harness import run

    if not argv or argv[0] not in MODULES:
        print(f"scripts/bench: unknown benchmark (available: {', '.join(MODULES)}; see scripts/bench --help)",
              file=__import__("sys").stderr)
        return 2
    return run(benchmark(argv[0]), argv[1:])
