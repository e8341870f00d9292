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


def _is_spreadsheet(upload: Upload) -> bool:
    name = upload.filename.lower()
    return name.endswith((".xls", ".xlsx")) or upload.content[:4] in (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone number typed into Excel arrives as 7.701e10
    return str(value).strip()


def _read_spreadsheet(content: bytes) -> list[list[str]]:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - openpyxl is a test dependency
        raise Invalid("recipientsFile", "Excel files need openpyxl on the sandbox; send CSV") from None
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:
        raise Invalid(
            "recipientsFile", "the sandbox reads Excel files only in the .xlsx format (openpyxl); send .xlsx or CSV"
        ) from None
    try:
        sheet = book.worksheets[0]
        return [[_cell(value) for value in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


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
        if _is_spreadsheet(upload):
            table: Iterable[list[str]] = _read_spreadsheet(upload.content)
        else:
            table = _read_csv(upload.content, encoding, delimiter, enclosure)
        return (_template_rows(table) if template else _number_rows(table, skip_header)), None
    except (UnicodeError, csv.Error) as exc:
        return [], f"the file could not be read: {exc}"
