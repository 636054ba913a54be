"""Plot and track importers, one per format (see base.py and registry.py)."""

from plots.importers.base import ImportFileError, Limits, SourceRecord, TrackPoint

__all__ = ["ImportFileError", "Limits", "SourceRecord", "TrackPoint"]
