#!/usr/bin/env python
"""``scripts/bench NAME [options]`` runs ``.venv/bin/python scripts/benchmarks/run.py NAME [options]``."""

import sys
from pathlib import Path

# scripts/, not this folder, on the path: the benchmark modules (load, tiles, …) are not top-level names.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
