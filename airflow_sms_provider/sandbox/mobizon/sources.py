"""Recipient sources of campaign/addRecipients: lists, contact cards, groups, files."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from airflow_sms_provider.sandbox.mobizon.rules import (
    CONTACT_CARDS,
    CONTACT_GROUPS,
    FILE_ENCODINGS,
    R_NO_CARD,
    R_NO_CONTACT,
    R_NO_MOBILE,
)
from airflow_sms_provider.sandbox.mobizon.state import (
    Row,
)
from airflow_sms_provider.sandbox.mobizon.wire import (
    Invalid,
    Upload,
    _int,
    _values,
)

# ---------------------------------------------------------------- recipient sources


def _rows_from_recipients(value: Any) -> list[Row]:
    rows = []
    for item in _values(value):
        if isinstance(item, dict):
            values = {str(k): v for k, v in item.items() if k != "recipient" and isinstance(v, str)}
            rows.append(Row(item.get("recipient"), values))
        elif isinstance(item, list):
            rows.append(Row(None))  # an array without a 'recipient' key: no number found
        else:
            rows.append(Row(item))
    return rows


def _rows_from_contacts(value: Any) -> list[Row]:
    rows = []
    for item in _values(value):
        card_id, _, field_name = str(item).strip().partition(":")
        card = CONTACT_CARDS.get(card_id)
        values = {k: v for k, v in (card or {}).items() if v is not None}
        if card is None:
            rows.append(Row(None, contact=card_id, code=R_NO_CARD))
        elif field_name and field_name not in values:
            rows.append(Row(None, contact=card_id, code=R_NO_CONTACT))
        elif not values.get(field_name or "mobile"):
            rows.append(Row(None, contact=card_id, code=R_NO_MOBILE))
        else:
            rows.append(Row(values[field_name or "mobile"], values, contact=card_id))
    return rows


def _rows_from_groups(group_ids: list[str]) -> list[Row]:
    seen: dict[str, list[str]] = {}
    for group_id in group_ids:
        for card_id in CONTACT_GROUPS[group_id][1]:
            seen.setdefault(card_id, []).append(group_id)
    rows = []
    for card_id, groups in seen.items():
        card = {k: v for k, v in CONTACT_CARDS[card_id].items() if v is not None}
        if card.get("mobile"):  # cards without a mobile are not available for sending
            rows.append(Row(card["mobile"], card, contact=card_id, groups=",".join(groups)))
    return rows


def _file_options(params: Mapping[str, Any]) -> tuple[str, bool, str, str]:
    encoding_name = str(params.get("recipientsFileEncoding") or "UTF-8").upper()
    if encoding_name not in FILE_ENCODINGS:
        raise Invalid("recipientsFileEncoding", f"encoding must be one of {', '.join(FILE_ENCODINGS)}")
    skip = _int(params.get("recipientsFileSkipHeader"), 0)
    if skip not in (0, 1):
        raise Invalid("recipientsFileSkipHeader", "recipientsFileSkipHeader must be 0 or 1")
    delimiter = str(params.get("recipientsFileDelimiter") or ",")
    enclosure = str(params.get("recipientsFileEnclosure") or "'")
    if len(delimiter) != 1 or len(enclosure) != 1:
        raise Invalid("recipientsFileDelimiter", "delimiter and enclosure must be single characters")
    return FILE_ENCODINGS[encoding_name], bool(skip), delimiter, enclosure


_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # a legacy (BIFF) Excel file
_ZIP_MAGIC = b"PK\x03\x04"  # .xlsx and other Office Open XML files
FILE_FORMATS = "CSV or Excel (only XLS)"  # campaign-addRecipients.md, recipientsFile


def _file_kind(upload: Upload) -> str:
    """``csv`` or ``xls`` by the file's name (its content when the name has no extension)."""
    name = upload.filename.lower()
    extension = name.rsplit(".", 1)[1] if "." in name else ""
    if extension in ("csv", "xls"):
        return extension
    if not extension and not upload.content.startswith(_ZIP_MAGIC):
        return "xls" if upload.content.startswith(_OLE_MAGIC) else "csv"
    raise Invalid("recipientsFile", f"the recipients file must be {FILE_FORMATS}, not {upload.filename!r}")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed into Excel arrives as 7.701e10
    return str(value).strip()


def _read_xls(content: bytes) -> list[list[str]]:
    """The first sheet of a legacy .xls file, read by xlrd (raises ValueError when unreadable)."""
    try:
        import xlrd
    except ImportError:  # pragma: no cover - xlrd is the sandbox extra
        raise Invalid(
            "recipientsFile", "reading XLS needs xlrd on the sandbox (pip install 'airflow-sms-provider[sandbox]')"
        ) from None
    try:
        sheet = xlrd.open_workbook(file_contents=content).sheet_by_index(0)
    except Exception as exc:  # xlrd raises several types for a damaged file
        raise ValueError(f"not a readable XLS file ({exc})") from None
    return [[_cell(value) for value in sheet.row_values(row)] for row in range(sheet.nrows)]


def _read_csv(content: bytes, encoding: str, delimiter: str, enclosure: str) -> Iterator[list[str]]:
    """Rows of a CSV file, lazily (a million-row file is never a table in memory).

    Raises UnicodeError at once, csv.Error while iterating, when it cannot be read.
    """
    text = content.decode(encoding)
    for row in csv.reader(io.StringIO(text), delimiter=delimiter, quotechar=enclosure):
        yield [cell.strip() for cell in row]


def _template_rows(table: Iterable[list[str]]) -> list[Row]:
    records = iter(table)
    header = next(records, None)
    if header is None:
        raise Invalid("recipientsFile", "a template campaign file needs a header row")
    if "recipient" not in header:
        raise Invalid("recipientsFile", "the header row has no 'recipient' column")
    if len(set(header)) != len(header):
        raise Invalid("recipientsFile", "the header row has duplicate column names")
    index = header.index("recipient")
    rows = []
    for cells in records:
        if not any(cells):
            continue
        values = {name: cells[i] for i, name in enumerate(header) if i != index and i < len(cells) and name}
        rows.append(Row(cells[index] if index < len(cells) else None, values))
    return rows


def _number_rows(table: Iterable[list[str]], skip_header: bool) -> list[Row]:
    records = iter(table)
    if skip_header:
        next(records, None)
    return [Row(cells[0]) for cells in records if cells and cells[0]]


def rows_from_file(upload: Upload, params: Mapping[str, Any], template: bool) -> tuple[list[Row], str | None]:
    """(rows, error): ``Invalid`` for problems answered at once, ``error`` for a task that ends rejected."""
    encoding, skip_header, delimiter, enclosure = _file_options(params)
    try:
        if _file_kind(upload) == "xls":
            table: Iterable[list[str]] = _read_xls(upload.content)
        else:
            table = _read_csv(upload.content, encoding, delimiter, enclosure)
        return (_template_rows(table) if template else _number_rows(table, skip_header)), None
    except (UnicodeError, csv.Error, ValueError) as exc:
        return [], f"the file could not be read: {exc}"
