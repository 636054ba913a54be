"""chacra check: run the plot checks (protected areas, double claims, district, declared area)."""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.management.commands import check as django_check
from tqdm import tqdm

from plots import checks, h3cells
from plots.errors import DomainError
from plots.models import CheckResult, Organization, Plot


class Command(BaseCommand):
    help = (
        "Run the plot checks and store one result per plot and kind: protected_area_overlap (geodesic overlap "
        "hectares per protected area; distance to the nearest one when outside), plot_overlap (double claims: "
        f"overlap with other producers' plots, fail above {checks.overlap.DOUBLE_CLAIM_HA} ha), "
        "district_assignment (the district holding the largest share; sets the plot's district) and "
        "area_discrepancy (declared vs measured area, tolerance CHACRA_AREA_TOLERANCE). Results that did not "
        "change since the last run are not written again. Retired plots are not checked. "
        "(Django's own system checks: chacra check --system [--deploy].)"
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--all", action="store_true", help="every active plot")
        which.add_argument("--organization", metavar="CODE", help="the active plots of this organization")
        which.add_argument("--plot", metavar="CODE", nargs="+", action="extend", help="these plots (codes)")
        which.add_argument("--system", action="store_true",
                           help="run Django's system checks instead (what `manage.py check` does)")
        parser.add_argument("--kind", nargs="+", action="extend", choices=list(checks.CHECKS), metavar="KIND",
                            help=f"only these checks ({', '.join(checks.CHECKS)}); default: all")
        parser.add_argument("--batch-size", type=int, default=checks.BATCH_SIZE, metavar="N",
                            help="plots per batch and transaction (default: %(default)s)")
        parser.add_argument("--deploy", action="store_true", help="with --system: also the deployment checks")

    def handle(self, *args, **o):
        if o["system"]:
            call_command(django_check.Command(), deploy=o["deploy"], stdout=self.stdout, stderr=self.stderr)
            return
        if not (o["all"] or o["organization"] or o["plot"]):
            raise CommandError("say which plots: --all, --organization CODE or --plot CODE …")
        if o["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        plot_ids = self._plot_ids(o)
        # A write path: it fills the H3 cells a raw geometry write left empty (the
        # aggregates read them and never fill them themselves).
        h3cells.refresh(plot_ids)
        total = Plot.objects.filter(status=Plot.Status.ACTIVE).count() if plot_ids is None else len(plot_ids)
        bar = tqdm(total=total, unit="plot", desc="checks", disable=not self.stderr.isatty())

        def progress(done: int) -> None:
            bar.update(done - bar.n)

        try:
            summary = checks.run_checks(plot_ids, kinds=set(o["kind"]) if o["kind"] else None, progress=progress,
                                        batch_size=o["batch_size"])
        except DomainError as exc:
            raise CommandError(exc.message) from None
        finally:
            bar.close()
        self._print_summary(summary)

    def _plot_ids(self, o) -> list[int] | None:
        if o["all"]:
            return None
        if o["organization"]:
            org = Organization.objects.filter(code=o["organization"]).first()
            if org is None:
                raise CommandError(f"organization {o['organization']!r} does not exist")
            return list(Plot.objects.filter(organization=org).active().values_list("id", flat=True))
        found = dict(Plot.objects.filter(code__in=o["plot"]).values_list("code", "id"))
        missing = [code for code in o["plot"] if code not in found]
        if missing:
            raise CommandError(f"no plot with code(s): {', '.join(missing)}")
        return list(found.values())

    def _print_summary(self, summary: checks.CheckSummary) -> None:
        self.stdout.write(f"checked {summary.plots} plots in {summary.seconds:.1f} s (method {summary.method_version})"
                          + (f"; {summary.skipped} retired plots skipped" if summary.skipped else ""))
        outcomes = [o for o, _ in CheckResult.Outcome.choices]
        header = f"  {'check':<24}" + "".join(f"{o:>{len(o) + 2}}" for o in outcomes) + f"{'flagged':>9}{'written':>9}"
        self.stdout.write(header)
        for kind, result in summary.kinds.items():
            counts = "".join(f"{result.outcomes.get(o, 0):>{len(o) + 2}}" for o in outcomes)
            self.stdout.write(f"  {kind:<24}{counts}{result.flagged:>9}{result.written:>9}")
        unchanged = summary.plots * len(summary.kinds) - summary.written
        self.stdout.write(self.style.SUCCESS(f"{summary.written} results written, {unchanged} unchanged"))
