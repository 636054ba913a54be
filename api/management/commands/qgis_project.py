"""chacra qgis-project: Chacra as a QGIS project file (api.qgis_project).

In api, beside the generator it drives: a domain app may not import api."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from api import qgis_project
from core import policy


class Command(BaseCommand):
    help = (
        "Write a QGIS project (.qgz) that opens Chacra's layers from a running server: the vector tiles styled "
        "like the web map (plots coloured by their latest verdicts, plots surveyed as points as circles, protected "
        "areas hatched, districts outlined) and every OGC API Features collection, all signing in with the QGIS "
        f"authentication configuration whose Id is {qgis_project.AUTHCFG}. In QGIS (3.22 or later): Settings > "
        "Options > Authentication > add a configuration, method 'Basic authentication', your Chacra user name and "
        f"your API token as the password; click the padlock beside Id and type {qgis_project.AUTHCFG}; then open "
        "the file. The same file for a signed-in user: GET /api/v1/qgis-project.")

    def add_arguments(self, parser):
        parser.add_argument("--out", type=Path, default=Path(qgis_project.FILENAME),
                            help=f"the file to write (default {qgis_project.FILENAME}; replaced if it exists)")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                            help="the address QGIS reaches the server at, e.g. https://chacra.example.org "
                            "(default http://127.0.0.1:8000, scripts/demo's)")
        parser.add_argument("--user", help="only the layers this user's role may read (default: every layer, as "
                            "an administrator sees them)")
        parser.add_argument("--title", default="Chacra", help="the project title (default Chacra)")

    def handle(self, *args, out: Path, base_url: str, user: str | None, title: str, **options):
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise CommandError(f"--base-url must be an http(s) address such as https://chacra.example.org "
                               f"(got {base_url!r})")
        if out.suffix.lower() != ".qgz":
            raise CommandError(f"--out must end in .qgz (got {out})")
        actor = self._actor(user)
        out.write_bytes(qgis_project.project_qgz(actor, base_url, title))
        map_layers, data_layers = qgis_project.project_layers(actor, base_url)
        self.stdout.write(f"{out}: {len(map_layers)} vector tile layers "
                          f"({', '.join(entry.name for entry in map_layers)}) and {len(data_layers)} OGC layers "
                          f"({', '.join(entry.name for entry in data_layers)}) on {base_url.rstrip('/')}, "
                          f"authentication configuration {qgis_project.AUTHCFG}")

    def _actor(self, username: str | None):
        if username is None:
            from django.contrib.auth.models import AnonymousUser

            class Operator(AnonymousUser):
                """The command line runs with the operator's rights: every layer."""

                is_authenticated = True
                is_superuser = True

            return Operator()
        found = get_user_model().objects.select_related("chacra_profile").filter(username=username).first()
        if found is None:
            raise CommandError(f"no user {username!r}")
        if not policy.has_role(found):
            raise CommandError(f"{username} has no Chacra role: their project would hold no layer")
        return found
