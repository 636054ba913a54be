"""The `chacra` command: Django's management commands plus `chacra db …`.

Subcommand names may be written with hyphens (`chacra demo-data`); they map to the
management command with underscores.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    if len(argv) > 1 and argv[1] == "db":
        from chacra import pgcluster

        sys.exit(pgcluster.main(argv[2:]))
    if len(argv) > 1 and not argv[1].startswith("-"):
        argv[1] = argv[1].replace("-", "_")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chacra.settings")
    from core.env import ImproperSetting

    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(argv)
    except ImproperSetting as exc:
        sys.exit(f"chacra: configuration error: {exc}")


if __name__ == "__main__":
    main()
