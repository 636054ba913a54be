from plots.models.areas import AdminArea, ProtectedArea, ProtectedAreaPiece
from plots.models.checks import CheckResult, LatestCheck
from plots.models.people import Organization, Producer, UserProfile
from plots.models.plots import AreaUnit, Plot, PlotBoundary
from plots.models.tracks import GpsTrack

__all__ = [
    "AdminArea", "AreaUnit", "CheckResult", "GpsTrack", "LatestCheck", "Organization", "Plot", "PlotBoundary", "Producer",
    "ProtectedArea", "ProtectedAreaPiece", "UserProfile",
]
