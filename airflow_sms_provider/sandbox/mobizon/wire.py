"""Wire format: PHP-style form parsing, small value codecs, the answer envelope."""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any
from urllib.parse import unquote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# ---------------------------------------------------------------- codes (mobizon/_other-apiCode.md)

OK, VALIDATION, NOT_FOUND = 0, 1, 2
BAD_MODULE, BAD_METHOD, BAD_FORMAT = 4, 5, 6
AUTH, DATA_UPDATE, MISSING_PARAM, INCORRECT_PARAM = 8, 10, 11, 12
WRONG_DOMAIN, BLOCKED, RATE_LIMITED = 13, 14, 30
PARTIALLY_DONE, NOTHING_DONE, BACKGROUND = 98, 99, 100

TS_FORMAT = "%Y-%m-%d %H:%M:%S"

_PHP_INT = re.compile(r"-?[1-9][0-9]*|0")
_SPLIT = re.compile(r"[,\r\n]+")

# ---------------------------------------------------------------- PHP request parsing


def _php_name(name: str) -> str:
    # PHP turns ' ' and '.' in a top-level variable name into '_'.
    return name.lstrip(" ").replace(" ", "_").replace(".", "_")


@functools.lru_cache(maxsize=8192)  # keys repeat on every call: recipients[0] .. recipients[499]
def _php_key(key: str) -> tuple[str, tuple[str, ...]]:
    """``a[b][]`` -> ("a", ("b", "")), with PHP's quirks for odd brackets."""
    start = key.find("[")
    if start <= 0:
        return _php_name(key), ()
    subs: list[str] = []
    base, pos = key[:start], start
    while pos < len(key) and key[pos] == "[":
        end = key.find("]", pos)
        if end == -1:
            if not subs:  # an unclosed first '[' becomes '_' and stays in the name
                return _php_name(base) + "_" + key[start + 1 :], ()
            break
        subs.append(key[pos + 1 : end])
        pos = end + 1  # anything after a ']' that is not '[' is ignored, as in PHP
    return _php_name(base), tuple(subs)


@functools.lru_cache(maxsize=8192)
def _php_sub(sub: str) -> int | str:
    return int(sub) if _PHP_INT.fullmatch(sub) else sub


def _php_index(node: dict[Any, Any], sub: str) -> Any:
    if sub == "":
        ints = [k for k in node if isinstance(k, int)]
        return max(ints) + 1 if ints else 0
    return _php_sub(sub)


def _unquote(text: str) -> str:
    """``unquote(text.replace("+", " "))`` as parse_qsl does, fast for the common bracketed key."""
    if "%" not in text and "+" not in text:
        return text
    if "+" not in text:
        brackets = text.replace("%5B", "[").replace("%5D", "]")
        if "%" not in brackets:
            return brackets
    return unquote(text.replace("+", " "), errors="replace")


def parse_form(body: str) -> list[tuple[str, str]]:
    """``parse_qsl(body, keep_blank_values=True)``, with a short cut for keys like ``recipients%5B7%5D``."""
    pairs = []
    for piece in body.split("&"):
        if piece:
            name, _, value = piece.partition("=")
            pairs.append((_unquote(name), _unquote(value)))
    return pairs


def _listify(value: Any) -> Any:
    """PHP arrays with keys 0..n-1 in order become lists; other arrays stay dicts."""
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v) for k, v in value.items()}
    return list(items.values()) if list(items) == list(range(len(items))) else items


def php_parse(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Build ``$_GET``/``$_POST`` from flat ``(key, value)`` pairs: ``data[text]`` -> {"data": {"text"}}."""
    root: dict[Any, Any] = {}
    for key, value in pairs:
        base, subs = _php_key(key)
        if not base:
            continue
        if not subs:
            root[base] = value
            continue
        node = root.get(base)
        if not isinstance(node, dict):
            node = root[base] = {}
        for sub in subs[:-1]:
            index = _php_index(node, sub)
            child = node.get(index)
            if not isinstance(child, dict):
                child = node[index] = {}
            node = child
        node[_php_index(node, subs[-1])] = value
    return {str(k): _listify(v) for k, v in root.items()}


_INDEX = re.compile(r"\[\d+\]")


def _form_keys(pairs: Iterable[tuple[str, Any]], files: Iterable[str]) -> list[str]:
    # Numeric indices collapsed so 500 recipients log as one key.
    keys = {_INDEX.sub("[*]", key) if "[" in key else key for key, _ in pairs} | set(files)
    return sorted(keys)


# ---------------------------------------------------------------- small helpers


def _int(value: Any, default: int | None = None) -> int | None:
    """A PHP-ish integer from a form value; ``default`` when absent, None when not an integer."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip() if isinstance(value, str) else ""
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else None


def _values(value: Any) -> list[Any]:
    """An "array or comma/newline separated string" parameter as a list."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [part.strip() for part in _SPLIT.split(str(value)) if part.strip()]


def _ids(value: Any) -> list[int]:
    out = []
    for item in _values(value):
        number = _int(item)
        if number is not None:
            out.append(number)
    return out


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _ts(moment: datetime | None) -> str | None:
    return moment.strftime(TS_FORMAT) if moment else None


def _parse_ts(value: Any, zone: tzinfo = timezone.utc) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` as wall time in ``zone`` (the account's: ``mobizon_account_timezone``)."""
    try:
        return datetime.strptime(str(value), TS_FORMAT).replace(tzinfo=zone)
    except ValueError:
        return None


def _money(amount: float) -> str:
    return f"{amount:.4f}"


_NON_DIGITS = re.compile(r"\D")


def _digits(raw: Any) -> str:
    text = raw if isinstance(raw, str) else str(raw)
    return text if text.isdigit() and text.isascii() else _NON_DIGITS.sub("", text)


@dataclass
class Reply:
    code: int
    data: Any = None
    message: str = ""


@dataclass
class Upload:
    filename: str
    content: bytes


class Invalid(Exception):
    """A validation failure answered with ``code`` and ``{field: message}``."""

    def __init__(self, field_name: str, message: str, code: int = VALIDATION) -> None:
        super().__init__(message)
        self.reply = Reply(code, {field_name: message}, message)


class _Errors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.reply = Reply(VALIDATION, errors, "; ".join(f"{k}: {v}" for k, v in errors.items()))


OUTPUTS = ("json", "xml")
DEFAULT_OUTPUT = "json"  # the documents name no default; every example sends output=json
_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def output_format(query: Mapping[str, str]) -> str | None:
    """``json`` or ``xml`` as asked (absent: :data:`DEFAULT_OUTPUT`); None for a format code 6 refuses."""
    value = query.get("output")
    if value is None or value == "":
        return DEFAULT_OUTPUT
    return value if value in OUTPUTS else None


def _xml_fill(node: ET.Element, value: Any) -> None:
    """One value as XML: mappings as named children, lists as ``<item>``s, null as an empty element."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            child = ET.SubElement(node, name if _XML_NAME.fullmatch(name) else "item")
            if child.tag == "item":
                child.set("key", name)  # a key that is no XML name (e.g. "0") travels as an attribute
            _xml_fill(child, item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _xml_fill(ET.SubElement(node, "item"), item)
    elif value is None:
        return
    elif isinstance(value, bool):
        node.text = "1" if value else "0"
    else:
        node.text = str(value)


def xml_body(code: int, data: Any, message: str) -> bytes:
    """``<response><code/><data/><message/></response>``: the three answer fields as XML."""
    root = ET.Element("response")
    _xml_fill(root, {"code": code, "data": data, "message": message})
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _envelope(reply: Reply, request: Request) -> Response:
    request.scope["sandbox.code"] = reply.code
    if output_format(request.query_params) == "xml":
        return Response(xml_body(reply.code, reply.data, reply.message), media_type="application/xml")
    return JSONResponse({"code": reply.code, "data": reply.data, "message": reply.message})


async def _read_body(request: Request) -> tuple[list[tuple[str, Any]], dict[str, Upload]]:
    """Flat form pairs and uploaded files of the request body (urlencoded or multipart)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        pairs: list[tuple[str, Any]] = []
        files: dict[str, Upload] = {}
        form = await request.form(max_files=10, max_fields=100_000)
        try:
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[key] = Upload(value.filename or "", await value.read())
                else:
                    pairs.append((key, value))
        finally:
            await form.close()
        return pairs, files
    body = await request.body()
    return parse_form(body.decode("utf-8", "replace")), {}
