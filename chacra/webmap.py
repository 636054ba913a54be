"""The web map at /map/ (session login at /accounts/login/).

A MapLibre GL page over Chacra's own vector tiles (districts, protected areas,
plots by their latest verdicts: boundaries from the layer plots, plots surveyed as
a point from plot-points) with no basemap from the internet: it works
offline. Clicking a plot opens its details, checks, genetics and harvest lots
from the REST API, with the same session.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from core import policy


@login_required
def map_page(request):
    user = request.user
    return render(request, "map/map.html", {
        "role": policy.role_of(user) if policy.has_role(user) else "none",
        # Plots on the map exactly when the plot tiles would answer (api.tiles.plot_scope).
        "sees_plots": policy.may_read(user, "plot"),
    })
