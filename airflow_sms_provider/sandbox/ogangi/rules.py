"""Ogangi request rules: uploaded files, broadcast recipients, short codes, signatures, accounts."""

from __future__ import annotations

import csv
import hmac
import io
import json
from typing import Any

from airflow_sms_provider.sandbox.ogangi.state import OgangiState
from airflow_sms_provider.sandbox.ogangi.wire import (
    _NUMBER,
    _OLE2_MAGIC,
    BAD_SIGNATURE,
    BAD_SIGNATURE_TEXT,
    SANDBOX_OGANGI_INSTANCE_ID,
    SANDBOX_OGANGI_SHORTCODES,
    SANDBOX_OGANGI_USER,
    Failure,
    signature,
)


def _read_rows(name: str, content: bytes) -> list[list[str]]:
    if content.startswith(b"PK") or name.lower().endswith((".xlsx", ".xlsm")):
        table = _read_xlsx(content)
    elif content.startswith(_OLE2_MAGIC) or name.lower().endswith(".xls"):
        table = _read_xls(content)
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise Failure("Invalid file: not UTF-8 text or an Excel workbook") from None
        table = [row for row in csv.reader(io.StringIO(text))]
    table = [row for row in table if any(cell.strip() for cell in row)]
    if table and table[0] and table[0][0].strip().lower() == "number":
        table = table[1:]
    return table


def _read_xlsx(content: bytes) -> list[list[str]]:
    try:
        import openpyxl
    except ImportError:  # pragma: no cover - openpyxl is an optional extra
        raise Failure("Invalid file: Excel files need openpyxl on the sandbox") from None
    try:
        book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:
        raise Failure("Invalid file: not a readable Excel workbook") from None
    try:
        rows = []
        for record in book.worksheets[0].iter_rows(values_only=True):
            cells = []
            for cell in record:
                if isinstance(cell, float) and cell.is_integer():
                    cell = int(cell)
                cells.append("" if cell is None else str(cell))
            rows.append(cells)
        return rows
    finally:
        book.close()


def _read_xls(content: bytes) -> list[list[str]]:
    """A legacy Excel 97-2003 workbook (BIFF in an OLE2 container), first sheet."""
    try:
        import xlrd
    except ImportError:  # pragma: no cover - xlrd comes with the sandbox and test extras
        raise Failure("Invalid file: .xls files need xlrd on the sandbox") from None
    try:
        sheet = xlrd.open_workbook(file_contents=content).sheet_by_index(0)
    except Exception:
        raise Failure("Invalid file: not a readable Excel workbook") from None
    rows = []
    for index in range(sheet.nrows):
        cells = []
        for cell in sheet.row_values(index):
            if isinstance(cell, float) and cell.is_integer():
                cell = int(cell)
            cells.append(str(cell))
        rows.append(cells)
    return rows


def _recipients(raw: str) -> list[dict[str, Any]]:
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Failure(f"Invalid JSON in 'to': {exc.msg} at position {exc.pos}") from None
    if not isinstance(items, list) or not items:
        raise Failure("Invalid 'to': a non-empty JSON array of recipients is required")
    out = []
    for position, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise Failure(f"Invalid recipient at position {position}: an object is required")
        number, text, params = item.get("to"), item.get("text"), item.get("params") or {}
        if not isinstance(number, str) or not _NUMBER.fullmatch(number):
            raise Failure(f"Invalid recipient at position {position}: 'to' must be 10-15 digits")
        if not isinstance(text, str) or not text.strip():
            raise Failure(f"Invalid recipient at position {position}: 'text' is required")
        if not isinstance(params, dict):
            raise Failure(f"Invalid recipient at position {position}: 'params' must be an object")
        # Sent as written: nothing in the document says the server fills params into the text.
        out.append({"to": number, "text": text, "params": params, "rendered": text})
    return out


def _shortcode(value: str, ignore: str) -> str:
    # As documented: "if false the shortcode parameter will be ignored".
    if ignore == "false":
        return SANDBOX_OGANGI_SHORTCODES[0]
    if ignore != "true":
        raise Failure(f"Invalid shortcodeIgnore {ignore!r}: true or false is required")
    if value not in SANDBOX_OGANGI_SHORTCODES:
        raise Failure(f"Invalid shortcode {value!r} for instance {SANDBOX_OGANGI_INSTANCE_ID}")
    return value


def _check_signature(st: OgangiState, values: list[str], public_key: str, given: str) -> None:
    expected = signature(str(st.cfg["ogangi_private_key"]), values)
    if public_key != str(st.cfg["ogangi_public_key"]) or not hmac.compare_digest(given, expected):
        st.bad_signatures += 1
        raise Failure(BAD_SIGNATURE_TEXT, BAD_SIGNATURE)


def _check_account(params: dict[str, str]) -> None:
    if params["instanceId"] != str(SANDBOX_OGANGI_INSTANCE_ID):
        raise Failure(f"Instance {params['instanceId']} not found")
    user = params.get("userName")
    if user is not None and user != SANDBOX_OGANGI_USER:
        raise Failure(f"User {user!r} not found in instance {params['instanceId']}")
