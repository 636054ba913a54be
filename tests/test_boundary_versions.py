"""Boundary versions that were in force: a same-day re-survey replaces that day's
version; the history never holds a version that ends the day it began."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from plots import services
from plots.models import Plot, PlotBoundary
from tests.conftest import square

URL = "/api/v1/plots"


def zero_length_versions() -> int:
    return PlotBoundary.objects.filter(valid_to=F("valid_from")).count()


def history(plot) -> list[tuple[date, date | None]]:
    return list(plot.boundaries.order_by("valid_from", "id").values_list("valid_from", "valid_to"))


def test_it_replaces_the_version_of_the_same_day_on_a_second_patch(owner, org_a, make_plot, make_producer):
    plot = make_plot(code="twice-1", producer=make_producer(organization=org_a), valid_from=date(2022, 1, 1))
    today = timezone.localdate()
    for size in (0.002, 0.003):
        r = owner.client.patch(f"{URL}/twice-1", {"type": "Feature", "geometry": square(-76.3, -8.3, size)},
                               format="json")
        assert r.status_code == 200, r.content
    assert history(plot) == [(date(2022, 1, 1), today), (today, None)]
    current = plot.boundaries.get(valid_to__isnull=True)
    plot.refresh_from_db()
    assert current.geom.equals_exact(plot.boundary, 1e-12)  # the second survey is the one in force
    assert current.geom.extent[2] == pytest.approx(-76.3 + 0.003)
    assert zero_length_versions() == 0


def test_it_replaces_a_first_boundary_resurveyed_on_its_own_day(make_plot):
    plot = make_plot(geometry_value=square(-76.5, -8.2, 0.001), valid_from=date(2024, 6, 1))
    services.plot_update_boundary(plot=plot, geometry_value=square(-76.5, -8.2, 0.002), valid_from=date(2024, 6, 1))
    services.plot_update_boundary(plot=plot, geometry_value=square(-76.5, -8.2, 0.003), valid_from=date(2024, 6, 1))
    assert history(plot) == [(date(2024, 6, 1), None)]
    assert plot.boundaries.get().source == "api"
    assert zero_length_versions() == 0


def test_it_still_appends_a_survey_of_a_later_day(make_plot):
    plot = make_plot(geometry_value=square(-76.5, -8.2, 0.001), valid_from=date(2024, 6, 1))
    services.plot_update_boundary(plot=plot, geometry_value=square(-76.5, -8.2, 0.002), valid_from=date(2024, 6, 2))
    services.plot_update_boundary(plot=plot, geometry_value=square(-76.5, -8.2, 0.003), valid_from=date(2024, 6, 2))
    assert history(plot) == [(date(2024, 6, 1), date(2024, 6, 2)), (date(2024, 6, 2), None)]


@pytest.mark.django_db(transaction=True)
def test_it_takes_concurrent_same_day_resurveys_in_turn(make_plot):
    plot = make_plot(geometry_value=square(-76.5, -8.2, 0.001), valid_from=date(2024, 1, 1))
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def resurvey(size: float) -> None:
        try:
            start.wait()
            services.plot_update_boundary(plot=Plot.objects.get(pk=plot.pk), valid_from=date(2024, 6, 1),
                                          geometry_value=square(-76.5, -8.2, size))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=resurvey, args=(size,)) for size in (0.002, 0.003)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert history(plot) == [(date(2024, 1, 1), date(2024, 6, 1)), (date(2024, 6, 1), None)]
    plot.refresh_from_db()
    assert plot.boundaries.get(valid_to__isnull=True).geom.equals_exact(plot.boundary, 1e-12)
    assert zero_length_versions() == 0
