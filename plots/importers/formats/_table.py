"""Reading a CSV as people export it from Excel, LibreOffice or KoboToolbox.

* Encoding: UTF-8 (a BOM is dropped); UTF-16 with a BOM (Excel's "Unicode text");
  if the file is not UTF-8, Windows-1252, which is what Excel writes for "CSV" on a
  Spanish-language Windows (and which reads Latin-1 text the same). UTF-16 without
  a BOM is refused with that reason rather than shown as a garbled header.
* Content: text only; XML, JSON or binary data sent as CSV is refused by name.
* Delimiter: sniffed among ``,`` ``;`` and tab (Excel uses ``;`` where the decimal
  separator is a comma, as in Peru), ``,`` when the sniffer cannot tell.
* Rows are numbered as a spreadsheet shows them: the header is row 1, so the first
  data row is "row 2" — the number a person finds when they open the file.
* The rows are counted in a first pass, so an oversized file is refused before
  any record is produced.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from plots.importers import sniff
from plots.importers.base import ImportFileError, Limits
from plots.importers.safety import check_file_size

_SNIFF_BYTES = 64 * 1024
_ENCODINGS = ("utf-8-sig", "cp1252")
# An ODK geotrace of a few thousand points exceeds the csv module's default 128 kB
# per field; the file-size limit bounds the memory used anyway.
csv.field_size_limit(max(csv.field_size_limit(), min(sys.maxsize, 64 * 1024 * 1024)))


@dataclass
class Table:
    path: Path
    encoding: str
    delimiter: str
    header: list[str]
    row_count: int

    def rows(self) -> Iterator[tuple[int, dict[str, str | None]]]:
        """(spreadsheet row number, {column: value or None when empty}) for each data row."""
        with open(self.path, newline="", encoding=self.encoding) as handle:
            reader = csv.reader(handle, delimiter=self.delimiter)
            next(reader, None)
            for number, values in enumerate(reader, start=2):
                if not any(v.strip() for v in values):
                    continue  # blank lines at the end of Excel exports
                yield number, self._row(values)

    def _row(self, values: list[str]) -> dict[str, str | None]:
        row: dict[str, str | None] = {}
        for i, value in enumerate(values):
            name = self.header[i] if i < len(self.header) else f"column {i + 1}"
            row[name] = value.strip() or None
        for name in self.header[len(values):]:
            row[name] = None
        return row


def open_table(path: Path, limits: Limits, label: str = "CSV") -> Table:
    path = Path(path)
    check_file_size(path, limits)
    data = sniff.head(path)
    if sniff.bom_encoding(data) == "UTF-16":
        try:
            return _scan(path, "utf-16", limits)  # the codec reads the BOM for the byte order
        except UnicodeDecodeError:
            raise ImportFileError(path, "cannot decode the UTF-16 text: save it as UTF-8") from None
    if sniff.looks_utf16(data):
        raise ImportFileError(path, "the file is UTF-16 encoded (without a byte-order mark): save it as UTF-8")
    sniff.expect(path, "text", label, data)
    for encoding in _ENCODINGS:
        try:
            return _scan(path, encoding, limits)
        except UnicodeDecodeError:
            continue
    raise ImportFileError(path, "cannot decode the text: save it as UTF-8")  # cp1252 decodes almost anything


def _scan(path: Path, encoding: str, limits: Limits) -> Table:
    with open(path, newline="", encoding=encoding) as handle:
        sample = handle.read(_SNIFF_BYTES)
        delimiter = _sniff(sample)
        handle.seek(0)
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None or not any(h.strip() for h in header):
                raise ImportFileError(path, "the file is empty or has no header row")
            count = 0
            for values in reader:
                if any(v.strip() for v in values):
                    count += 1
                    if count > limits.max_features:
                        raise ImportFileError(path, f"the file holds more than {limits.max_features:,} rows; "
                                                    f"at most {limits.max_features:,} are allowed per import: split it")
        except csv.Error as exc:
            raise ImportFileError(path, f"not a readable CSV file (row {reader.line_num}): {exc}") from None
    return Table(path=path, encoding=encoding, delimiter=delimiter, header=_names(header), row_count=count)


def _sniff(sample: str) -> str:
    """The delimiter, checked against the header: with decimal commas ("-8,19;-76,51")
    the data rows alone are as consistent in "," as in ";", but headers hold no commas."""
    header = sample.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = None
    if delimiter is None or delimiter not in header:
        counts = {c: header.count(c) for c in ",;\t"}
        best = max(counts, key=lambda c: counts[c])
        delimiter = best if counts[best] else ","
    return delimiter


def _names(header: list[str]) -> list[str]:
    """Column names, blank ones named by position and repeats numbered, so none is lost."""
    names: list[str] = []
    for i, raw in enumerate(header):
        name = raw.strip() or f"column {i + 1}"
        base, n = name, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    return names


def parse_number(text: str) -> float:
    """A coordinate as written in a spreadsheet: ``-76.51`` or, with a decimal comma, ``-76,51``."""
    value = text.strip().replace("\u2212", "-")  # the Unicode minus sign some tools write
    if "," in value and "." not in value and value.count(",") == 1:
        value = value.replace(",", ".")
    number = float(value)  # ValueError for text
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(text)
    return number
