"""chacra demo-data: generate and load the deterministic synthetic demo.

It lives in chacra because it composes every app's demo (plots, nurseries,
traceability, screening): imports point down from here, never up from an app."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rest_framework.authtoken.models import Token
from tqdm import tqdm

from nurseries import demo as nursery_demo
from plots import demo
from plots.models import Organization, UserProfile
from screening import demo as raster_demo
from traceability import demo as traceability_demo

DEMO_PASSWORD = "chacra-demo"
DEMO_USERS = [
    # username, role, organization code (cooperative users only)
    ("demo-admin", "admin", None),
    ("demo-technician", "technician", None),
    ("demo-coop", "cooperative", f"{demo.DEMO_PREFIX}coop-tocache"),
    ("demo-buyer", "buyer", traceability_demo.BUYER_CODE),
    ("demo-investor", "investor", None),
]


class Command(BaseCommand):
    help = ("Generate the synthetic demo: ~2,000 producers in a dozen cooperatives and 3,000 plots around "
            "Tocache, Juanjuí, Chazuta, Aucayacu, Tingo María, Aguaytía, Campo Verde, Curimaná and Neshuya; "
            "loads the real INEI districts and SERNANP protected areas from the shared data folder when it "
            "exists (CHACRA_SHARED_DATA), synthetic stand-ins otherwise; creates one demo user per role.")

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="remove existing demo data first")
        parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
        parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 3,000 plots (default 1)")
        parser.add_argument("--no-shared", action="store_true",
                            help="ignore the shared data folder and generate synthetic reference layers")
        parser.add_argument("--tokens-file", type=Path, help="write 'role token' lines for the demo users here")

    def handle(self, *args, seed, scale, reset, no_shared, tokens_file, **options):
        if scale <= 0 or scale > 10:
            raise CommandError("--scale must be in (0, 10]")
        if reset:
            self.stdout.write(f"removed {nursery_demo.reset()} demo nursery lots")
            self.stdout.write(f"removed {traceability_demo.reset()} demo harvest lots")
            self.stdout.write(f"unregistered {raster_demo.reset()} demo loss tiles")
            removed = demo.reset()
            self.stdout.write(f"removed {removed} demo plots")
        shared = None if no_shared else Path(settings.CHACRA_SHARED_DATA)
        if shared is not None and not shared.exists():
            self.stdout.write(f"{shared} not found: generating synthetic reference layers")
            shared = None
        if Organization.objects.filter(code__startswith=demo.DEMO_PREFIX).exists():
            self.stdout.write("demo data already loaded (use --reset to regenerate)")
        else:
            # One transaction: an interrupted run leaves nothing half-made, and the next
            # run generates everything again.
            with transaction.atomic():
                towns = demo.read_towns()
                bar = tqdm(total=len(towns), desc="demo plots", unit="town", disable=not self.stdout.isatty())

                def progress(town, _n):
                    bar.set_postfix_str(town)
                    bar.update(1)

                summary = demo.generate(seed=seed, shared=shared, scale=scale, progress=progress)
                bar.close()
                for report in summary.reference:
                    self.stdout.write(f"  {report.summary()}")
                self.stdout.write(self.style.SUCCESS(
                    f"demo: {summary.organizations} organizations, {summary.producers} producers, {summary.plots} plots "
                    f"({summary.point_plots} surveyed as points, {summary.with_history} with an earlier survey, "
                    f"{summary.overlapping_pairs} overlapping a neighbour, {summary.across_protected_edge} across a "
                    f"protected-area edge)"))
                self.stdout.write(self.style.SUCCESS(nursery_demo.generate(seed=seed, scale=scale).line()))
                self.stdout.write(self.style.SUCCESS(traceability_demo.generate(seed=seed).line()))
                loss = raster_demo.generate(seed=seed, folder=Path(settings.CHACRA_DEMO_DATA_DIR))
                self.stdout.write(self.style.SUCCESS(loss.line()))
        lines = self._users()
        if tokens_file:
            tokens_file.write_text("".join(f"{role} {key}\n" for role, key in lines))
            tokens_file.chmod(0o600)
        for role, key in lines:
            self.stdout.write(f"  token for {role:<12} {key}")
        self.stdout.write(f"  web map /map/: sign in as demo-<role> (demo-technician …) with password {DEMO_PASSWORD}")

    @transaction.atomic
    def _users(self) -> list[tuple[str, str]]:
        out = []
        for username, role, org_code in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username, defaults={"is_staff": role == "admin"})
            if not user.password or not user.has_usable_password():  # never given one (get_or_create leaves "")
                # For the web map's session login on a local demo; never a real deployment's users.
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            org = Organization.objects.filter(code=org_code).first() if org_code else None
            UserProfile.objects.update_or_create(user=user, defaults={"role": role, "organization": org})
            token, _ = Token.objects.get_or_create(user=user)
            out.append((role, token.key))
        return out
