"""One base for every upload endpoint: plot files (/imports), nursery sheets
(/nursery-imports) and traceability records (/traceability/imports/{kind}).

What they share is written once here: the role check, the size limit (413 judged
from Content-Length before the body is read, then by the file's own size), the same
multipart fields for every importer (``file``, ``dry_run``, ``partial``, then the
importer's own), unknown fields refused, the file name the user knows (never the
server's temporary path), and the answer: the import's report, 201 when it was
written (nursery sheets: and something changed), 200 otherwise. A refused import
raises core.imports.ImportRefused, which api/errors.py answers once (400 with the
report inside the error body).

A subclass names its resource and its own fields, parses them (``parse_fields``) and runs
its importer (``run``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import QueryDict
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import error_body
from api.params import reject_unknown
from core import policy
from core.errors import Forbidden, ValidationFailed
from core.imports import ImportReport, parse_bool

FLAGS = ("dry_run", "partial")
COMMON_FIELDS = frozenset({"file", *FLAGS})

# What a multipart body adds around the file (boundaries, part headers, the form's
# small fields): a body larger than the limit by more than this cannot hold a file
# within it.
MULTIPART_OVERHEAD = 64 * 1024


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def _too_large(what: str, size: int) -> Response:
    message = f"{what} is {_size(size)}; the limit is {_size(settings.CHACRA_MAX_IMPORT_BYTES)}"
    return Response(error_body(413, "too_large", message), status=413)


def refuse_large_body(request) -> Response | None:
    """413 judged from Content-Length alone, before the body is read, parsed or
    spooled to disk (the request's transaction is then still empty)."""
    try:
        size = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        size = 0
    if size > settings.CHACRA_MAX_IMPORT_BYTES + MULTIPART_OVERHEAD:
        return _too_large("the upload", size)
    return None


def refuse_large_file(upload) -> Response | None:
    """413 for a file over the limit, by its size as received (the body check allows
    for the multipart overhead)."""
    if upload.size > settings.CHACRA_MAX_IMPORT_BYTES:
        return _too_large(display_name(upload), upload.size)
    return None


def display_name(upload) -> str:
    """The file's name as the user's machine gave it, without any folder."""
    return Path(upload.name).name


@contextmanager
def saved(upload) -> Iterator[Path]:
    """The upload as a file of its own in a temporary folder (importers read paths;
    GDAL picks its driver by the suffix), removed afterwards."""
    suffix = "".join(Path(display_name(upload)).suffixes[-2:])[-20:]
    with tempfile.TemporaryDirectory(prefix="chacra-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        yield path


def upload_request(own: dict[str, dict], *, required: tuple[str, ...] = ("file",)) -> dict:
    """The OpenAPI multipart body of an upload: the shared fields and the importer's own."""
    return {"multipart/form-data": {"type": "object", "required": list(required), "properties": {
        "file": {"type": "string", "format": "binary"}, **own,
        "dry_run": {"type": "boolean", "description": "run everything, report, write nothing"},
        "partial": {"type": "boolean", "description": "write the rows that pass, report the refused ones "
                    "(by default one refused row means nothing is written)"}}}}


class UploadView(APIView):
    parser_classes = [MultiPartParser]
    resource = ""  # what the import writes, as the access policy names it (core.policy)
    forbidden = "your role cannot import"  # the refusal of a role that writes no such record
    fields: frozenset[str] = frozenset()  # the importer's own multipart fields
    file_hint = "send the file as multipart field 'file'"
    # dry_run/partial also as query parameters: the traceability upload took them only
    # there before every upload shared these fields, and a JSON body has no fields.
    flags_in_query = False
    created_only_when_changed = False  # nursery sheets: 201 only when a row was created or updated

    def post(self, request, **kwargs):
        if not policy.may_write(request.user, self.resource):
            raise Forbidden(self.forbidden)
        self.check_path(**kwargs)
        in_query = self._query_flags(request)  # the query is read, the body not yet
        too_large = refuse_large_body(request)
        if too_large is not None:
            return too_large
        form = self._form(request)
        upload = request.FILES.get("file")
        if upload is None and not self.takes_body(request):
            raise ValidationFailed(self.file_hint, field="file")
        if upload is not None and (too_large := refuse_large_file(upload)) is not None:
            return too_large
        options = self.parse_fields(request, form)
        flags = {name: self._flag(name, form, in_query) for name in FLAGS}
        report = self.run(request, upload, **flags, **options, **kwargs)
        return Response(report.as_dict(), status=self.status_of(report))

    # ----------------------------------------------------------------- what a subclass says

    def check_path(self, **kwargs) -> None:
        """Refuse a bad path parameter before the body is read."""

    def takes_body(self, request) -> bool:
        """Whether the request body itself may stand for the file (no ``file`` field)."""
        return False

    def parse_fields(self, request, form) -> dict[str, Any]:
        """The importer's own fields, parsed."""
        return {}

    def run(self, request, upload, *, dry_run: bool, partial: bool, **options) -> ImportReport:
        raise NotImplementedError

    def status_of(self, report: ImportReport) -> int:
        changed = report.counts["created"] + report.counts["updated"]
        return 201 if report.written and (changed or not self.created_only_when_changed) else 200

    # ----------------------------------------------------------------- the shared fields

    def _query_flags(self, request) -> dict[str, bool]:
        if not self.flags_in_query:
            return {}
        reject_unknown(request.query_params, set(FLAGS))
        return {name: parse_bool(request.query_params[name], name) for name in FLAGS
                if name in request.query_params}

    def _form(self, request):
        data = request.data  # parses the body: 415 for a media type the view does not take
        if not isinstance(data, QueryDict):
            return {}  # a JSON body (traceability records) holds rows, not fields
        allowed = COMMON_FIELDS | self.fields
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}; send: {', '.join(sorted(allowed))}")
        return data

    @staticmethod
    def _flag(name: str, form, in_query: dict[str, bool]) -> bool:
        value = parse_bool(form.get(name), name) if form.get(name) is not None else None
        if name not in in_query:
            return bool(value)
        if value is not None and value != in_query[name]:
            raise ValidationFailed(f"{name} is given as a field and as a query parameter with different values",
                                   field=name)
        return in_query[name]
