"""chacra screen: deforestation screening of plots against the registered satellite tiles."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

import screening
from plots.errors import DomainError
from plots.models import CheckResult, Organization, Plot

_T = screening.Thresholds


class Command(BaseCommand):
    help = (
        "Screen plots for forest loss after 31 Dec 2020 against the registered tiles (chacra load-raster) and "
        "store one 'deforestation' check result per plot: fail when the loss after the cut-off reaches "
        f"--min-loss-ha (default {_T.min_loss_ha} ha, about one Hansen cell) or --min-loss-share of the plot "
        f"(default {_T.min_loss_share}); insufficient_data when less than --coverage-min (default "
        f"{_T.coverage_min}) of the plot lies on valid cells of hansen-lossyear; pass otherwise. Zonal "
        "statistics by exactextract (exact cell coverage × geodesic cell area), tiles read raster-sequentially, "
        "in parallel local processes or on a Dask cluster. Results that did not change are not written again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--organization", metavar="CODE", help="only the active plots of this organization")
        parser.add_argument("--product", nargs="+", action="extend", metavar="PRODUCT[:VERSION]",
                            help="products to read (must include hansen-lossyear), optionally pinned to a "
                            "version; default: every product, its most recently registered version")
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, metavar="N",
                            help="local worker processes (default: %(default)s; 1 = in this process)")
        parser.add_argument("--dask", metavar="tcp://HOST:PORT",
                            help="run the tasks on this Dask scheduler instead (workers must see the tile files)")
        env = _T.from_environment()
        parser.add_argument("--min-loss-ha", type=float, default=env.min_loss_ha, metavar="HA",
                            help="hectares of post-2020 loss that fail a plot (default: %(default)s; "
                            "CHACRA_SCREEN_MIN_LOSS_HA)")
        parser.add_argument("--min-loss-share", type=float, default=env.min_loss_share, metavar="SHARE",
                            help="share of the plot lost after 2020 that fails it (default: %(default)s; "
                            "CHACRA_SCREEN_MIN_LOSS_SHARE)")
        parser.add_argument("--coverage-min", type=float, default=env.coverage_min, metavar="SHARE",
                            help="share of the plot the loss product must cover for a verdict (default: "
                            "%(default)s; CHACRA_SCREEN_COVERAGE_MIN)")

    def handle(self, *args, organization, product, workers, dask, min_loss_ha, min_loss_share, coverage_min,
               **options):
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        if dask and not dask.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
            raise CommandError(f"--dask wants a scheduler address such as tcp://host:8786 (got {dask!r})")
        plot_ids = None
        if organization:
            org = Organization.objects.filter(code=organization).first()
            if org is None:
                raise CommandError(f"organization {organization!r} does not exist")
            plot_ids = list(Plot.objects.filter(organization=org).active().values_list("id", flat=True))
        bar = tqdm(total=0, unit="plot×tile", desc="screening", disable=not self.stderr.isatty())

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        thresholds = screening.Thresholds(min_loss_ha=min_loss_ha, min_loss_share=min_loss_share,
                                          coverage_min=coverage_min)
        try:
            summary = screening.run_screening(plot_ids, products=product, thresholds=thresholds, workers=workers,
                                              dask=dask, progress=progress)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        finally:
            bar.close()
        self._print(summary)

    def _print(self, summary: screening.ScreeningSummary) -> None:
        products = ", ".join(f"{p} {v}" for p, v in summary.datasets.items()) or "no products registered"
        self.stdout.write(f"screened {summary.plots} plots over {summary.tiles} tiles ({summary.tasks} tasks) in "
                          f"{summary.seconds:.1f} s, method {summary.method_version}; {products}")
        for outcome in (CheckResult.Outcome.PASS, CheckResult.Outcome.FAIL, CheckResult.Outcome.INSUFFICIENT_DATA):
            self.stdout.write(f"  {outcome:<18}{summary.outcomes.get(outcome, 0):>8}")
        self.stdout.write(self.style.SUCCESS(f"{summary.written} results written, "
                                             f"{summary.plots - summary.written} unchanged"))
