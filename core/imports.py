"""The import machinery every importer shares (DESIGN.md, "Layers": shared core).

Plot files (plots.imports, plots.bulk), nursery sheets (nurseries.imports) and
traceability records (traceability.imports) all work the same way, written here once:

* one report: each row (or feature) created / updated / unchanged / refused with its
  reason, the counts, whether anything was written (ImportReport, RowResult);
* one refusal, ImportRefused, carrying that report (api/errors.py answers it with the
  report inside the error body);
* one routine, run_import: the whole file in one transaction, each row in a savepoint
  (import_row), rolled back on a dry run, or when a row was refused unless ``partial``;
  an advisory lock against the same file imported twice at once and a bound on each
  statement's time (ImportLock);
* one set of cell parsers (parse_date, parse_int, parse_decimal, parse_bool) with one
  wording of their errors.

It imports no app: only Django, the stdlib and core.errors.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction

from core.errors import DomainError, ValidationFailed

OUTCOMES = ("created", "updated", "unchanged", "refused")

RACE_REASON = ("another import wrote the same record at the same moment; nothing of this row was kept: "
               "run the import again")


# The refusal of a code held by a record the user cannot see. Codes are unique across
# Chacra, so that such a code is taken cannot be hidden; which organization, producer
# or plot holds it is.
def code_in_use(what: str, code: str) -> ValidationFailed:
    return ValidationFailed(f"{what} code {code!r} is already in use; choose another code", code="code_in_use")


# --------------------------------------------------------------------------- the report


@dataclass
class RowResult:
    """What became of one row of a sheet or one feature of a file. The geometric
    figures (area, repairs applied, walked-track quality) are filled by importers whose
    rows carry a geometry; the others leave them empty."""

    number: int  # the row's line in the file (a sheet's header is line 1), or the feature's number
    label: str = ""
    status: str = "refused"  # one of OUTCOMES
    code: str | None = None
    reason: str | None = None
    area_ha: float | None = None
    repairs: list[str] = field(default_factory=list)
    quality: dict | None = None


@dataclass
class ImportReport:
    """The report of one import. ``layout`` keeps the two shapes clients have read
    since before the machinery was shared: "features" (plot files and traceability
    records: format, checks, mode, every figure of each row) and "rows" (nursery sheets:
    the sheet, and number / status / code / reason of each row)."""

    file: str
    dry_run: bool = False
    partial: bool = False
    format: str | None = None
    sheet: str | None = None
    layout: str = "features"
    rows: list[RowResult] = field(default_factory=list)
    written: bool = False
    error: str | None = None  # a whole-file problem
    checks: dict | None = None  # what the checks run after a plot import found
    mode: str = "per-feature"  # or "bulk" (plots.bulk, the set-based path for large layers)

    # The rows under the name the "features" layout gives them.
    @property
    def features(self) -> list[RowResult]:
        return self.rows

    @features.setter
    def features(self, rows: list[RowResult]) -> None:
        self.rows = rows

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(OUTCOMES, 0)
        for row in self.rows:
            out[row.status] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        if self.layout == "rows":
            return {"file": self.file, "sheet": self.sheet, "dry_run": self.dry_run, "partial": self.partial,
                    "written": self.written, "error": self.error, "counts": self.counts,
                    "rows": [{"number": r.number, "status": r.status, "code": r.code, "reason": r.reason}
                             for r in self.rows]}
        return {"file": self.file, "format": self.format, "dry_run": self.dry_run, "partial": self.partial,
                "written": self.written, "error": self.error, "counts": self.counts, "checks": self.checks,
                "mode": self.mode, "features": [asdict(r) for r in self.rows]}


class ImportRefused(DomainError):
    """Nothing was written; carries the report (api/errors.py puts it in the error body)."""

    status = 400
    code = "import_refused"

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


def refuse_file(report: ImportReport, reason: str) -> NoReturn:
    """Refuse the file as a whole (unreadable, too long, timed out, raced): the report
    then holds no rows, whatever was read before."""
    report.rows, report.written, report.checks, report.mode = [], False, None, "per-feature"
    report.error = reason
    raise ImportRefused(f"{report.file}: {reason}", report) from None


# --------------------------------------------------------------------------- the guard


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class AlreadyImporting(DomainError):
    status = 409
    code = "import_in_progress"


@dataclass(frozen=True)
class ImportLock:
    """The same file (same bytes: ``digest``) of one kind (``what``) for one
    organization is imported once at a time; ``name`` is the file as the user knows it."""

    what: str
    digest: str
    organization_id: int | None
    name: str

    def take(self) -> None:
        """Within the caller's transaction: bound each statement's time, and refuse the
        file while another import of it runs.

        A transaction-level advisory lock, tried without waiting: the second import of a
        file would otherwise wait on the first one's rows and end in a unique violation.
        Released by PostgreSQL at commit or rollback, so a crashed import never leaves
        it behind."""
        key = int.from_bytes(hashlib.sha256(f"{self.what}:{self.digest}:{self.organization_id}".encode()).digest()[:8],
                             "big", signed=True)
        with connection.cursor() as cur:
            # A hostile or huge file then ends in a clear refusal instead of holding the
            # transaction for many minutes (set_config(..., true) is SET LOCAL with a parameter).
            cur.execute("SELECT set_config('statement_timeout', %s, true)", [f"{int(_timeout_s() * 1000)}ms"])
            cur.execute("SELECT pg_try_advisory_xact_lock(%s)", [key])
            if cur.fetchone()[0]:
                return
            cur.execute("SELECT min(a.xact_start) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                        "AND l.classid::bigint = %s AND l.objid::bigint = %s",
                        [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF])
            started = cur.fetchone()[0]
        when = f" (started {started:%Y-%m-%d %H:%M:%S %Z})" if started else ""
        raise AlreadyImporting(f"{self.name}: this file is already being imported{when}; wait for it to finish, "
                               "then run it again to see what is left to do")


def _timeout_s() -> float:
    return float(getattr(settings, "CHACRA_IMPORT_STATEMENT_TIMEOUT_S", 300))


def timed_out(exc: OperationalError) -> bool:
    """Whether the statement was cancelled by the statement_timeout ImportLock set."""
    return getattr(exc.__cause__, "pgcode", None) == "57014"  # query_canceled


def timeout_reason() -> str:
    return (f"a step of the import ran longer than {_timeout_s():g} s and was stopped; nothing was written "
            "(split the file into smaller ones)")


def public_reason(reason: str, path: Path, name: str) -> str:
    """``reason`` with the server's path of the file (an upload's temporary copy, which
    GDAL's messages quote) replaced by the name the user knows it by."""
    for shown in {str(Path(path).resolve()), str(path)}:
        reason = reason.replace(shown, name)
    return reason.replace(str(Path(path).resolve().parent) + "/", "").replace(str(Path(path).parent) + "/", "")


# --------------------------------------------------------------------------- writing


def import_row(result: RowResult, step: Callable[[], tuple[str, str]]) -> RowResult:
    """Run ``step`` (which returns the row's code and created/updated/unchanged) in a
    savepoint, so that a refused row leaves nothing behind and the import goes on; a
    domain error, or another import writing the same record meanwhile, is its reason."""
    try:
        with transaction.atomic():
            result.code, result.status = step()
    except DomainError as exc:
        result.reason = exc.message
    except IntegrityError:  # the savepoint is gone with the row
        result.reason = RACE_REASON
    return result


def run_import(*, report: ImportReport, write: Callable[[ImportReport], None], lock: ImportLock | None = None,
               empty: str | None = None, when_written: Callable[[ImportReport], None] | None = None,
               unit: str = "rows", partial_option: str = "--partial") -> ImportReport:
    """``write(report)`` fills the report's rows (each through import_row) in one
    transaction, then: a dry run, a whole-file error (``report.error``, or ``empty``
    when no row was read) or a refused row (unless ``report.partial``) roll it all back;
    otherwise it is kept and ``when_written`` runs inside it. Raises ImportRefused with
    the report whenever nothing was written for a reason other than a dry run.

    ``lock``: taken first in the transaction (ImportLock.take); a statement then cut by
    its time bound refuses the file. ``unit`` and ``partial_option`` word the refusal
    ("2 of 4 features refused …, or import the others with --partial")."""
    try:
        with transaction.atomic():
            if lock is not None:
                lock.take()
            write(report)
            if empty and not report.rows and not report.error:
                report.error = empty
            if report.dry_run or report.error or (report.counts["refused"] and not report.partial):
                transaction.set_rollback(True)
            else:
                report.written = True
                if when_written is not None:
                    when_written(report)
    except OperationalError as exc:
        if not timed_out(exc):
            raise
        refuse_file(report, timeout_reason())
    except IntegrityError:  # a set-based write (plots.bulk) met another import's rows
        refuse_file(report, RACE_REASON)
    if report.error:
        raise ImportRefused(f"{report.file}: {report.error}", report)
    refused = report.counts["refused"]
    if refused and not report.partial and not report.dry_run:
        raise ImportRefused(f"{report.file}: {refused} of {len(report.rows)} {unit} refused; nothing was written "
                            f"(fix them, or import the others with {partial_option})", report)
    return report


# --------------------------------------------------------------------------- cell parsers
# Every parser takes the cell as read (text, or a JSON number or boolean), returns None
# for an empty cell, and refuses anything else it cannot read with one wording.

DATE_FORMS = ("%Y-%m-%d", "%d/%m/%Y")  # ISO, and the day-first form of Latin American sheets
_THOUSANDS = re.compile(r"[+-]?\d{1,3}([, ]\d{3})+")  # 1,000 or 12 500


def cell_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_date(value: Any, name: str) -> date | None:
    """YYYY-MM-DD (a longer ISO date-time is read by its date) or DD/MM/YYYY."""
    text = cell_text(value)
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        pass
    for form in DATE_FORMS:  # strptime also takes one-digit days and months (2024-1-5, 5/1/2024)
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    raise ValidationFailed(f"{name} must be a date written YYYY-MM-DD or DD/MM/YYYY (got {text!r})")


def parse_int(value: Any, name: str, *, negative: bool = True) -> int | None:
    """A whole number; thousands may be grouped with commas or spaces (1,000 or 1 000)."""
    text = cell_text(value)
    if not text:
        return None
    digits = re.sub(r"[, ]", "", text) if _THOUSANDS.fullmatch(text) else text
    try:
        number = int(digits)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number (got {text!r})") from None
    if not negative and number < 0:
        raise ValidationFailed(f"{name} cannot be negative (got {number})")
    return number


def parse_decimal(value: Any, name: str, *, what: str = "a number", places: int | None = None) -> Decimal | None:
    """A number with a decimal point or a decimal comma (0.25 or 0,25), exact;
    ``places``: rounded to that many decimals. ``what`` words the refusal."""
    text = cell_text(value).replace(",", ".")
    if not text:
        return None
    try:
        number = Decimal(text)
        if not number.is_finite():
            raise InvalidOperation
        return number.quantize(Decimal(1).scaleb(-places)) if places is not None else number
    except InvalidOperation:
        raise ValidationFailed(f"{name} must be {what} (got {text!r})") from None


TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def parse_bool(value: Any, name: str) -> bool:
    """true/false, 1/0, yes/no in any case; an empty cell is false."""
    text = cell_text(value).lower()
    if text and text not in TRUE + FALSE:
        raise ValidationFailed(f"{name} must be true or false (got {text!r})", field=name)
    return text in TRUE
