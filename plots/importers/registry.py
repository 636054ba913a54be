"""Importers by short name and by file extension."""

from __future__ import annotations

from pathlib import Path

from plots.importers.base import ImportFileError, Importer

_REGISTRY: dict[str, Importer] = {}


def register(importer: Importer) -> Importer:
    _REGISTRY[importer.name] = importer
    return importer


def names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def get(name: str) -> Importer:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ImportFileError(name, f"unknown format {name!r}; known: {', '.join(names())}") from None


def for_path(path: Path, fmt: str | None = None) -> Importer:
    """The importer named by ``fmt``, or the one whose extension the file has."""
    if fmt:
        return get(fmt)
    _load()
    suffixes = "".join(path.suffixes[-2:]).lower()
    for importer in _REGISTRY.values():
        if any(suffixes.endswith(ext) for ext in importer.extensions):
            return importer
    raise ImportFileError(path, f"cannot tell the format from the name; give one of: {', '.join(names())}")


def _load() -> None:
    if _REGISTRY:
        return
    # Importing the format modules registers them.
    from plots.importers import formats  # noqa: F401
