"""The web map at /map/ (session login at /accounts/login/).

A MapLibre GL page over Chacra's own vector tiles (districts, protected areas,
plots by their latest verdicts) with no basemap from the internet: it works
offline. Clicking a plot opens its details, checks, genetics and harvest lots
from the REST API, with the same session.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from plots import roles


@login_required
def map_page(request):
    role = roles.role_of(request.user)
    return render(request, "map/map.html", {
        "role": role or "none",
        "sees_plots": role in roles.STAFF_ROLES | {roles.Role.COOPERATIVE},
    })
