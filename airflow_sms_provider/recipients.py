"""Streaming SMS audiences, shared by every provider's operators.

An audience may hold millions of rows, so nothing here materialises it: files are
read row by row, iterables are consumed lazily, and :func:`chunked` builds each
batch only when the caller asks for it. The only state that grows with the audience
is the optional ``dedupe`` set (see :func:`iter_recipients`).

Two kinds of bad input are told apart:

* a bad *row* (unparseable or missing phone number) follows ``on_invalid``: ``"fail"``
  raises at once, ``"skip"`` records it in a :class:`RejectReport` and goes on;
* a bad *source* (unknown file type, undecodable bytes, unlabelled extra columns,
  items of an unsupported type) always raises, because skipping cannot make sense
  of a file whose shape is wrong.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from typing import IO, Any, TypeVar

from airflow_sms_provider.exceptions import SmsValidationError

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENDED",
    "CsvSpool",
    "DuplicateReport",
    "InvalidPhone",
    "Recipient",
    "RejectReport",
    "check_filled_length",
    "check_template",
    "chunked",
    "fill_placeholders",
    "fill_problem",
    "iter_recipient_batches",
    "iter_recipients",
    "no_value_reason",
    "normalize_phone",
    "placeholders",
    "regroup",
    "require_nonempty",
    "sms_parts",
    "unused_values_reason",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# GSM 03.38 default alphabet in code-point order. ESC (0x1B) is left out: it only
# introduces an extension character and is never meaningful in a user's text.
GSM7_BASIC: str = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Extension table: each costs two septets (ESC + code) on the air.
GSM7_EXTENDED: str = "\f^{}\\[~]|€"

_GSM7_BASIC_SET = frozenset(GSM7_BASIC)
_GSM7_EXTENDED_SET = frozenset(GSM7_EXTENDED)

_DEFAULT_NUMBER_FIELD = "recipient"
# Accepted only while number_field is left at its default: an explicit name is meant literally.
_NUMBER_ALIASES = ("number", "phone", "msisdn")
_ON_INVALID = ("fail", "skip")
_FORMATS = ("csv", "xlsx")
_EXTENSIONS = {".csv": "csv", ".txt": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx"}

# Spaces (any Unicode whitespace, e.g. the no-break space Excel likes), ASCII and
# typographic dashes, dots and parentheses are formatting, not part of the number.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212.()]+")
# ASCII only: str.isdigit() would also accept e.g. Arabic-Indic or superscript digits.
_ASCII_DIGITS = re.compile(r"[0-9]+")
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_-]+)\}")
# A file extension starts with a letter, so "7701.123.4567" is a number, not a file.
_FILE_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")
_TEXT_SEPARATORS = re.compile(r"[,\n]")
_MAX_SHOWN = 100  # characters of an offending value quoted in messages and examples


# --------------------------------------------------------------------------- numbers


class InvalidPhone(ValueError):
    """A value that is not a usable phone number; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalize_phone(value: Any, *, min_digits: int = 10, max_digits: int = 15) -> str:
    """Return ``value`` as digits only (international format without '+').

    Spaces, dashes, dots and parentheses are removed, then one leading '+'. What is
    left must be ASCII digits, ``min_digits``..``max_digits`` long, not starting with
    '0' (a national trunk prefix means the country code is missing). ``int`` input is
    accepted, and so is a whole ``float`` (Excel may store numbers that way).

    :raises InvalidPhone: with a human-readable ``reason``.
    """
    # Fast path for an already clean number, the bulk of a big audience: no regex, no copies.
    if (
        type(value) is str
        and value.isdigit()
        and value.isascii()
        and value[0] != "0"
        and min_digits <= len(value) <= max_digits
    ):
        return value
    if value is None:
        raise InvalidPhone("empty")
    # bool is an int subclass; True is never a phone number.
    if isinstance(value, bool):
        raise InvalidPhone("not a phone number (boolean)")
    if isinstance(value, int):
        if value < 0:
            raise InvalidPhone("negative number")
        text = str(value)
    elif isinstance(value, float):
        if not value.is_integer() or value < 0:
            raise InvalidPhone("not a whole number")
        text = str(int(value))
    elif isinstance(value, str):
        # Fast path for the common already-clean cell; the regex costs more than the check.
        text = value if value.isdigit() and value.isascii() else _SEPARATORS.sub("", value)
        if text.startswith("+"):
            text = text[1:]
    else:
        raise InvalidPhone(f"unsupported type {type(value).__name__}")
    if not text:
        raise InvalidPhone("empty")
    if not _ASCII_DIGITS.fullmatch(text):
        raise InvalidPhone("contains characters other than digits")
    if text[0] == "0":
        raise InvalidPhone("starts with 0 (international format with a country code expected)")
    if len(text) < min_digits:
        raise InvalidPhone(f"too short: {len(text)} digits, at least {min_digits} expected")
    if len(text) > max_digits:
        raise InvalidPhone(f"too long: {len(text)} digits, at most {max_digits} expected")
    return text


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Recipient:
    """One validated audience member."""

    number: str  # normalised: digits only, no '+'
    params: Mapping[str, str]  # template placeholder values ({} for plain numbers)
    row: int  # 1-based data row in the source (after the header for files)
    raw: Any = None  # the original number value, for reports


def _recipient(number: str, params: Mapping[str, str], row: int, raw: Any) -> Recipient:
    """``Recipient(number, params, row, raw)`` without the frozen dataclass's four
    ``object.__setattr__`` calls: a third of the per-row cost of a million-row stream."""
    recipient = object.__new__(Recipient)
    recipient.__dict__.update(number=number, params=params, row=row, raw=raw)
    return recipient


def _shown(value: Any) -> str:
    """``value`` as a short string for messages, reports and examples."""
    text = "" if value is None else str(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


@dataclass
class RejectReport:
    """Rejected rows: a count, the first ``cap`` examples, optionally every row as CSV.

    With ``path`` (a local path, an object with ``.open("w")`` such as Airflow's
    ``ObjectStoragePath``, or a string with ``://`` opened as one) every rejection is
    streamed as a ``row,value,reason`` CSV line under a header. The file is opened on the
    first rejection only, so a clean audience leaves no file behind; call :meth:`close`
    (or use ``with``) when done. A ``file://`` target's folder is created; object stores
    have none to create.
    """

    cap: int = 20
    path: str | os.PathLike[str] | Any | None = None
    _count: int = field(default=0, init=False, repr=False)
    _examples: list[dict[str, Any]] = field(default_factory=list, init=False, repr=False)
    _fh: IO[str] | None = field(default=None, init=False, repr=False)
    _writer: Any = field(default=None, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.cap < 0:
            raise SmsValidationError(f"cap must be >= 0, got {self.cap!r}", field="cap", value=self.cap)

    def add(self, row: int, value: Any, reason: str) -> None:
        """Record one rejected row."""
        self._count += 1
        if len(self._examples) < self.cap:
            self._examples.append({"row": row, "value": _shown(value), "reason": reason})
        if self.path is None:
            return
        if self._writer is None or self._closed:
            self._open()
        # The full value goes to the file: it is the complete record of what was dropped.
        self._writer.writerow([row, "" if value is None else str(value), reason])

    def _open(self) -> None:
        if self._closed:
            # Reopening with "w" would silently truncate what was already written.
            raise RuntimeError("RejectReport is closed; create a new one")
        target: Any = self.path
        if isinstance(target, str) and "://" in target:  # s3://, gs://, file://: as the audience is read
            target = _object_storage_path(target)
        if hasattr(target, "open"):
            if getattr(target, "protocol", None) in ("file", "local"):
                # A per-run folder (…/{{ run_id }}/rejected.csv) on a shared mount does not exist yet.
                target.parent.mkdir(parents=True, exist_ok=True)
            self._fh = target.open("w")
        else:
            self._fh = open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by close()
        # "\n" regardless of how the target was opened: object stores get what we write.
        self._writer = csv.writer(self._fh, lineterminator="\n")
        self._writer.writerow(["row", "value", "reason"])

    @property
    def count(self) -> int:
        """How many rows were rejected."""
        return self._count

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary; ``report_path`` is set only when a file was written."""
        return {
            "rejected": self._count,
            "examples": list(self._examples),
            "report_path": str(self.path) if self._fh is not None else None,
        }

    def close(self) -> None:
        """Flush and close the report file, if one was opened. Safe to call twice."""
        self._closed = True
        if self._fh is not None and not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> RejectReport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class DuplicateReport:
    """The one audience rule: a number is sent once per audience, its first row wins.

    Every provider's operator and the neutral operator pass one to :func:`iter_recipients`,
    which then drops a row whose normalised number an earlier row already had. ``count``
    is how many rows were dropped; ``examples`` (at most ``cap``) name the dropped row and
    the row that won (``first_row``), so a personalised audience says whose values were
    sent. Memory: a dict from number (an ``int``) to its first row, about 100 bytes per
    unique number (some 100 MB for a million): flat in the rows, linear in the numbers.
    """

    cap: int = 20
    count: int = 0
    examples: list[dict[str, int]] = field(default_factory=list)

    def add(self, row: int, first_row: int) -> None:
        self.count += 1
        if len(self.examples) < self.cap:
            self.examples.append({"row": row, "first_row": first_row})

    def summary(self) -> dict[str, Any]:
        """JSON-friendly: the count and a few (row, first_row) pairs; no numbers."""
        return {"count": self.count, "examples": list(self.examples)}

    def log_line(self, logger: Any, where: str = "") -> None:
        """``duplicates: N`` (always, so a clean audience says 0)."""
        if self.count:
            first = self.examples[0] if self.examples else None
            example = f"; e.g. row {first['row']} repeats row {first['first_row']}" if first else ""
            logger.info("Audience%s duplicates: %d (a number repeated within the audience is sent once, "
                        "its first row wins%s)", where, self.count, example)
        else:
            logger.info("Audience%s duplicates: 0", where)


# --------------------------------------------------------------------------- sources

_MISSING = object()  # a dict row without the number key
# (row, raw number value, template params) before the number is validated
_Candidate = tuple[int, Any, dict[str, str]]


class _DecodeFailure(Exception):
    """Raised inside a CSV reader; turned into SmsValidationError where the row is known."""

    def __init__(self, line: int | None, error: UnicodeDecodeError) -> None:
        super().__init__(str(error))
        self.line = line
        self.error = error


@dataclass(frozen=True)
class _FileSource:
    name: str
    fmt: str
    open_binary: Callable[[], IO[bytes]]


def iter_recipients(
    source: Any,
    *,
    number_field: str = _DEFAULT_NUMBER_FIELD,
    on_invalid: str = "fail",
    report: RejectReport | None = None,
    min_digits: int = 10,
    max_digits: int = 15,
    dedupe: bool = False,
    file_format: str | None = None,
    encoding: str = "utf-8",
    delimiter: str = ",",
    has_header: bool | None = None,
    duplicates: DuplicateReport | None = None,
) -> Iterator[Recipient]:
    """Stream validated recipients from ``source``, one row at a time.

    ``source`` may be:

    * a path (``str`` or ``os.PathLike``) to a ``.csv``/``.txt`` or ``.xlsx`` file, or an
      object with ``.open("rb")`` and a ``.name``/``.suffix`` such as Airflow's
      ``ObjectStoragePath``; a ``str`` containing ``://`` is opened as an
      ``ObjectStoragePath``. ``file_format`` overrides the extension.
    * a ``str`` that is not an existing file and does not look like a path (no '/' or
      '\\' and no letter-led extension such as ``.csv``): a list of numbers separated
      by commas and/or newlines; ``row`` is then the position among non-empty items.
    * any iterable of numbers (``str``/``int``), dicts (``number_field`` holds the
      number, every other key is a template parameter; values become ``str``, ``None``
      becomes ``""``), or ``(number,)`` / ``(number, params_dict)`` tuples.

    Files have a header when ``has_header`` is True, or when it is None and the first
    non-blank row contains ``number_field`` (case-insensitive; "number", "phone" and
    "msisdn" are accepted too while ``number_field`` is the default). Other header
    columns become template parameters. A CSV row shorter than the header lacks those
    parameters, so :func:`check_template` reports them (in .xlsx an empty cell is just
    ""). A row wider than the header is an error. Without a header a file
    must have one column of numbers. Blank rows are skipped but still counted, so
    ``row`` matches what a spreadsheet shows (minus the header row).

    ``dedupe=True`` drops repeated numbers, keeping the first. It holds every unique
    number seen in a set: memory grows as O(unique numbers), roughly 70 bytes each
    (about 700 MB for 10 million) — leave it off when the audience is known clean.
    ``duplicates`` (a :class:`DuplicateReport`) turns it on and counts what was dropped,
    with the row that won: the operators always pass one (the audience rule).

    An empty source yields nothing; wrap the result in :func:`require_nonempty` when
    that is an error. In ``"skip"`` mode rejected rows go to ``report`` (the caller
    closes it); without one they are only counted in a log line at the end.

    Arguments are checked when this is called; the source is opened on first ``next()``.
    """
    rules, candidates = _prepare(
        source, number_field=number_field, on_invalid=on_invalid, report=report, min_digits=min_digits,
        max_digits=max_digits, dedupe=dedupe, file_format=file_format, encoding=encoding, delimiter=delimiter,
        has_header=has_header, duplicates=duplicates,
    )  # fmt: skip
    assert candidates is not None  # only a batched read leaves an iterable to the caller
    return rules.rows(candidates, last=True)


# A run of clean rows from :func:`iter_recipient_batches`: (its first row, the numbers as given).
PlainRun = tuple[int, list[str]]


def iter_recipient_batches(
    source: Any,
    *,
    size: int = 500,
    number_field: str = _DEFAULT_NUMBER_FIELD,
    on_invalid: str = "fail",
    report: RejectReport | None = None,
    min_digits: int = 10,
    max_digits: int = 15,
    dedupe: bool = False,
    file_format: str | None = None,
    encoding: str = "utf-8",
    delimiter: str = ",",
    has_header: bool | None = None,
    duplicates: DuplicateReport | None = None,
) -> Iterator[Recipient | PlainRun]:
    """What :func:`iter_recipients` yields, with runs of clean rows checked ``size`` at a time.

    For an iterable source, items are read ``size`` at a time. When every item of such a
    batch is a ``str`` that is already a valid number (digits only, no leading 0, a valid
    length) and none was seen before (``dedupe``/``duplicates``), the batch is checked by a
    few passes in C and yielded as one :data:`PlainRun` ``(first_row, numbers)``: rows
    ``first_row``, ``first_row + 1``, ... each with ``number == raw`` and no params, as
    :func:`iter_recipients` would have yielded them one by one. Any other batch goes through
    the same per-row rules and yields :class:`Recipient` objects, so errors, row numbers,
    reports and duplicates are exactly those of :func:`iter_recipients`. Files and text
    are read row by row (Recipients only). A source that raises part-way has the rows it
    gave before the error checked (and yielded) first, as row by row.
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise SmsValidationError(f"batch size must be a positive integer, got {size!r}", field="size", value=size)
    rules, candidates = _prepare(
        source, number_field=number_field, on_invalid=on_invalid, report=report, min_digits=min_digits,
        max_digits=max_digits, dedupe=dedupe, file_format=file_format, encoding=encoding, delimiter=delimiter,
        has_header=has_header, duplicates=duplicates, batched=True,
    )  # fmt: skip
    if candidates is not None:
        return rules.rows(candidates, last=True)
    return _batched(source, _number_names(number_field), rules, size)


def _prepare(
    source: Any,
    *,
    number_field: str,
    on_invalid: str,
    report: RejectReport | None,
    min_digits: int,
    max_digits: int,
    dedupe: bool,
    file_format: str | None,
    encoding: str,
    delimiter: str,
    has_header: bool | None,
    duplicates: DuplicateReport | None,
    batched: bool = False,
) -> tuple[_Rules, Iterator[_Candidate] | None]:
    """Check the options; the row rules and the source's candidates (None: an iterable left to the batch reader)."""
    if on_invalid not in _ON_INVALID:
        raise SmsValidationError(
            f"on_invalid must be one of {_ON_INVALID}, got {on_invalid!r}",
            field="on_invalid",
            value=on_invalid,
        )
    if file_format is not None and file_format not in _FORMATS:
        raise SmsValidationError(
            f"file_format must be one of {_FORMATS} or None, got {file_format!r}",
            field="file_format",
            value=file_format,
        )
    if not isinstance(min_digits, int) or not isinstance(max_digits, int) or not 1 <= min_digits <= max_digits:
        raise SmsValidationError(
            f"need 1 <= min_digits <= max_digits, got min_digits={min_digits!r}, max_digits={max_digits!r}",
            field="min_digits",
            value=(min_digits, max_digits),
        )
    if not isinstance(number_field, str) or not number_field.strip():
        raise SmsValidationError(
            f"number_field must be a non-empty string, got {number_field!r}",
            field="number_field",
            value=number_field,
        )
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise SmsValidationError(
            f"delimiter must be a single character, got {delimiter!r}", field="delimiter", value=delimiter
        )
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise SmsValidationError(f"unknown encoding {encoding!r}", field="encoding", value=encoding) from None

    names = _number_names(number_field)
    file_source = _resolve_file(source, file_format)
    where = ""
    if file_source is not None:
        where = f" of {file_source.name}"
        candidates: Iterator[_Candidate] | None = _file_candidates(
            file_source, names=names, encoding=encoding, delimiter=delimiter, has_header=has_header
        )
    elif isinstance(source, str):
        candidates = _text_candidates(source)
    elif batched:
        candidates = None  # read by _batched(), a batch at a time
    else:
        candidates = _item_candidates(source, names)
    rules = _Rules(
        on_invalid=on_invalid, report=report, min_digits=min_digits, max_digits=max_digits, dedupe=dedupe,
        where=where, number_field=number_field, duplicates=duplicates,
    )  # fmt: skip
    return rules, candidates




def _number_names(number_field: str) -> tuple[str, ...]:
    """Column/key names that hold the number, most specific first."""
    if number_field == _DEFAULT_NUMBER_FIELD:
        return (number_field, *_NUMBER_ALIASES)
    return (number_field,)


def _looks_like_path(text: str) -> bool:
    stripped = text.strip()
    return "/" in stripped or "\\" in stripped or bool(_FILE_EXTENSION.search(stripped))


def _resolve_file(source: Any, file_format: str | None) -> _FileSource | None:
    """Describe ``source`` as a file to read, or return None when it is not a file."""
    if source is None:
        raise SmsValidationError("no recipients source given", field="source", value=None)
    if isinstance(source, (bytes, bytearray, memoryview)):
        raise SmsValidationError(
            "recipients source is bytes: decode it to text or pass a file path", field="source", value=None
        )
    if isinstance(source, Mapping):
        raise SmsValidationError(
            "recipients source is a single mapping: pass an iterable of dicts, one per recipient",
            field="source",
            value=_shown(source),
        )
    if isinstance(source, str):
        if "://" in source:
            source = _object_storage_path(source)
        elif os.path.isfile(source) or _looks_like_path(source):
            path = source
            return _FileSource(path, _file_format(path, os.path.splitext(path)[1], file_format), _local(path))
        else:
            return None
    if hasattr(source, "open") and (hasattr(source, "suffix") or hasattr(source, "name")):
        suffix = getattr(source, "suffix", None)
        if not isinstance(suffix, str):
            suffix = os.path.splitext(str(getattr(source, "name", "")))[1]
        name = str(source)
        return _FileSource(name, _file_format(name, suffix, file_format), lambda: source.open("rb"))
    if isinstance(source, os.PathLike):
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        return _FileSource(path, _file_format(path, os.path.splitext(path)[1], file_format), _local(path))
    if isinstance(source, Iterable):
        return None
    raise SmsValidationError(
        f"unsupported recipients source type {type(source).__name__}", field="source", value=_shown(source)
    )


def _object_storage_path(url: str) -> Any:
    try:
        from airflow.sdk import ObjectStoragePath
    except ImportError:  # pragma: no cover - Airflow 3 always has it
        raise SmsValidationError(
            f"cannot open {url!r}: airflow.sdk.ObjectStoragePath is not available", field="source", value=url
        ) from None
    return ObjectStoragePath(url)


def _local(path: str) -> Callable[[], IO[bytes]]:
    return lambda: open(path, "rb")


def _file_format(name: str, suffix: str, file_format: str | None) -> str:
    if file_format is not None:
        return file_format
    fmt = _EXTENSIONS.get(suffix.lower())
    if fmt is None:
        raise SmsValidationError(
            f"source {name!r}: unsupported file type {suffix or '(no extension)'!r}; "
            f"use {', '.join(sorted(_EXTENSIONS))} or pass file_format='csv'/'xlsx'",
            field="source",
            value=name,
        )
    return fmt


def _text_candidates(text: str) -> Iterator[_Candidate]:
    """Numbers separated by commas/newlines, scanned in place (no split() copy of a big string)."""
    pos = 0
    row = 0
    while True:
        match = _TEXT_SEPARATORS.search(text, pos)
        end = match.start() if match else len(text)
        piece = text[pos:end].strip()
        if piece:
            row += 1
            yield row, piece, {}
        if match is None:
            return
        pos = match.end()


def _param_str(value: Any) -> str:
    return "" if value is None else str(value)


def _item_candidates(items: Iterable[Any], names: tuple[str, ...], start: int = 1) -> Iterator[_Candidate]:
    for row, item in enumerate(items, start):
        if type(item) is str or isinstance(item, (str, int, float)) or item is None:  # exact str first: the bulk
            yield row, item, {}
        elif isinstance(item, Mapping):
            key = next((name for name in names if name in item), None)
            raw = _MISSING if key is None else item[key]
            params = {str(k): _param_str(v) for k, v in item.items() if k != key}
            yield row, raw, params
        elif isinstance(item, (tuple, list)) and len(item) in (1, 2):
            extra = item[1] if len(item) == 2 else None
            if extra is not None and not isinstance(extra, Mapping):
                raise SmsValidationError(
                    f"recipients row {row}: expected (number, params_dict), got params of type {type(extra).__name__}",
                    field="recipients",
                    value=_shown(item),
                )
            params = {str(k): _param_str(v) for k, v in (extra or {}).items()}
            yield row, item[0], params
        else:
            raise SmsValidationError(
                f"recipients row {row}: unsupported item {type(item).__name__}; expected a number, "
                "a dict or a (number, params) tuple",
                field="recipients",
                value=_shown(item),
            )


def _cell_str(value: Any) -> str:
    """A CSV/xlsx cell as text; whole floats lose their '.0' (Excel stores numbers as floats)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def _is_blank(cells: Sequence[str]) -> bool:
    return not "".join(cells).strip()


def _file_candidates(
    source: _FileSource,
    *,
    names: tuple[str, ...],
    encoding: str,
    delimiter: str,
    has_header: bool | None,
) -> Iterator[_Candidate]:
    try:
        fh = source.open_binary()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise SmsValidationError(
            f"recipients source file not found: {source.name}", field="source", value=source.name
        ) from None
    with fh:
        if source.fmt == "xlsx":
            records = _xlsx_records(fh, source.name)
        else:
            records = _csv_records(fh, encoding=encoding, delimiter=delimiter)
        try:
            yield from _table_candidates(
                records,
                name=source.name,
                names=names,
                has_header=has_header,
                encoding=encoding,
                pad_rows=source.fmt == "xlsx",
            )
        finally:
            close = getattr(records, "close", None)
            if close is not None:
                close()  # lets the xlsx reader close its workbook at once


def _is_ascii_compatible(encoding: str) -> bool:
    """True when ASCII bytes decode to themselves, so the file can be split on b"\\n" before decoding."""
    sample = bytes(range(0x20, 0x7F)) + b"\t\r\n"
    try:
        return sample.decode(encoding) == sample.decode("ascii")
    except UnicodeDecodeError:
        return False


def _csv_records(fh: IO[bytes], *, encoding: str, delimiter: str) -> Iterator[list[str]]:
    if _is_ascii_compatible(encoding):
        lines: Iterable[str] = _decoded_lines(fh, encoding)
    else:
        # UTF-16/32 cannot be split on b"\n"; let TextIOWrapper decode in blocks. A decoding
        # error then surfaces a little ahead of its row, so its row number is approximate.
        lines = _wrapped_lines(fh, encoding)
    yield from csv.reader(lines, delimiter=delimiter)


def _decoded_lines(fh: IO[bytes], encoding: str) -> Iterator[str]:
    """Decode one physical line at a time so a bad byte is pinned to its line."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    line_no = 0
    # readline() rather than iterating the handle: some fsspec file objects are not iterable.
    for line_no, raw in enumerate(iter(fh.readline, b""), 1):
        try:
            yield decoder.decode(raw)
        except UnicodeDecodeError as exc:
            raise _DecodeFailure(line_no, exc) from None
    try:
        tail = decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:  # a multi-byte sequence cut off at end of file
        raise _DecodeFailure(line_no, exc) from None
    if tail:
        yield tail


def _wrapped_lines(fh: IO[bytes], encoding: str) -> Iterator[str]:
    text = io.TextIOWrapper(fh, encoding=encoding, errors="strict", newline="")
    try:
        yield from text
    except UnicodeDecodeError as exc:
        raise _DecodeFailure(None, exc) from None
    finally:
        text.detach()  # the caller owns and closes fh


def _xlsx_records(fh: IO[bytes], name: str) -> Iterator[list[str]]:
    try:
        import openpyxl  # lazy: an optional extra, only needed for .xlsx audiences
    except ImportError:
        raise SmsValidationError(
            f"reading {name} needs openpyxl: pip install 'airflow-sms-provider[excel]'",
            field="source",
            value=name,
        ) from None
    try:
        workbook = openpyxl.load_workbook(fh, read_only=True, data_only=True)
    except Exception as exc:  # zipfile/XML errors: the file is not a readable workbook
        raise SmsValidationError(
            f"source {name} is not a readable .xlsx workbook: {exc}", field="source", value=name
        ) from None
    try:
        sheet = workbook.worksheets[0]
        # Some writers store a wrong dimension; resetting makes read-only mode read every
        # row instead of trusting it (and stops it padding rows to a huge width).
        sheet.reset_dimensions()
        for values in sheet.iter_rows(values_only=True):
            yield [_cell_str(value) for value in values]
    finally:
        workbook.close()


def _table_candidates(
    records: Iterator[list[str]],
    *,
    name: str,
    names: tuple[str, ...],
    has_header: bool | None,
    encoding: str,
    pad_rows: bool,
) -> Iterator[_Candidate]:
    """Turn file records into (row, number, params), handling the header and blank rows.

    ``pad_rows``: a spreadsheet has no short rows, only empty cells, so missing trailing
    cells become "" there; in CSV a short row lacks those parameters.
    """
    index = 0  # physical records read so far
    header_at = 0  # records up to and including the header; data row = index - header_at
    try:
        first: list[str] | None = None
        for record in records:
            index += 1
            cells = record
            if index == 1 and cells:
                cells[0] = cells[0].lstrip("\ufeff")  # a UTF-8 BOM read as plain utf-8
            if not _is_blank(cells):
                first = cells
                break
        if first is None:
            return

        column = _header_column(first, names, has_header, name)
        if column is None:
            header_at = 0
            yield from _plain_row(index, first, name, names)
            for record in records:
                index += 1
                yield from _plain_row(index, record, name, names)
            return

        header_at = index
        header = [cell.strip() for cell in first]
        param_columns = _param_columns(header, column, name)
        width = len(header)
        for record in records:
            index += 1
            cells = record
            if _is_blank(cells):
                continue
            row = index - header_at
            if len(cells) > width and not _is_blank(cells[width:]):
                raise SmsValidationError(
                    f"recipients row {row} of {name} has {len(cells)} columns but the header has {width}; "
                    "is a value with the delimiter in it missing its quotes?",
                    field="recipients",
                    value=_shown(cells),
                )
            number = cells[column] if column < len(cells) else ""
            if pad_rows:
                params = {header[i]: cells[i] if i < len(cells) else "" for i in param_columns}
            else:
                params = {header[i]: cells[i] for i in param_columns if i < len(cells)}
            yield row, number, params
    except _DecodeFailure as failure:
        row = index + 1 - header_at
        # Block-decoded files (UTF-16/32) fail when a block is read, possibly ahead of the bad row.
        line = f"line {failure.line}, " if failure.line is not None else "at or after "
        raise SmsValidationError(
            f"recipients source {name}: {line}row {row} cannot be decoded as {encoding!r} "
            f"({failure.error.reason} at byte {failure.error.start}); pass the file's encoding",
            field="encoding",
            value=encoding,
        ) from None
    except csv.Error as exc:
        raise SmsValidationError(
            f"recipients source {name}: row {index + 1 - header_at} is not valid CSV: {exc}",
            field="source",
            value=name,
        ) from None


def _header_column(first: list[str], names: tuple[str, ...], has_header: bool | None, name: str) -> int | None:
    """Index of the number column when ``first`` is a header row, else None."""
    if has_header is False:
        return None
    lowered = [cell.strip().lower() for cell in first]
    for candidate in names:
        if candidate.lower() in lowered:
            return lowered.index(candidate.lower())
    if has_header:
        raise SmsValidationError(
            f"recipients source {name}: the header has no {names[0]!r} column "
            f"(found {[cell.strip() for cell in first]}); set number_field",
            field="number_field",
            value=names[0],
        )
    return None


def _param_columns(header: list[str], column: int, name: str) -> list[int]:
    seen: set[str] = set()
    columns = []
    for i, title in enumerate(header):
        if i == column or not title:
            continue  # untitled columns cannot be referenced by a placeholder
        if title in seen:
            raise SmsValidationError(
                f"recipients source {name}: column {title!r} appears twice in the header",
                field="source",
                value=title,
            )
        seen.add(title)
        columns.append(i)
    return columns


def _plain_row(index: int, cells: list[str], name: str, names: tuple[str, ...]) -> Iterator[_Candidate]:
    if _is_blank(cells):
        return
    if len(cells) > 1 and not _is_blank(cells[1:]):
        raise SmsValidationError(
            f"recipients row {index} of {name} has several columns but the file has no header with a "
            f"{names[0]!r} column; add one (other columns become template parameters) or set number_field",
            field="recipients",
            value=_shown(cells),
        )
    yield index, cells[0], {}


class _Rules:
    """The per-row rules of :func:`iter_recipients` and their state (numbers seen, rows skipped).

    One object per stream, so :func:`iter_recipient_batches` can accept a clean batch at
    once (:meth:`plain`) and hand any other batch to the same per-row loop (:meth:`rows`)
    with the same duplicates and the same count of skipped rows.
    """

    def __init__(
        self,
        *,
        on_invalid: str,
        report: RejectReport | None,
        min_digits: int,
        max_digits: int,
        dedupe: bool,
        where: str,
        number_field: str,
        duplicates: DuplicateReport | None = None,
    ) -> None:
        self.on_invalid, self.report, self.where, self.number_field = on_invalid, report, where, number_field
        self.min_digits, self.max_digits, self.duplicates = min_digits, max_digits, duplicates
        # Numbers are kept as ints: half the memory of str, and lossless because
        # normalize_phone() never returns a leading zero.
        self.seen: set[int] | None = set() if dedupe and duplicates is None else None
        self.first_rows: dict[int, int] | None = {} if duplicates is not None else None
        self.skipped = 0

    def rows(self, candidates: Iterable[_Candidate], *, last: bool = False) -> Iterator[Recipient]:
        """Validate ``candidates`` row by row; ``last``: the stream ends with them (log the skipped count)."""
        on_invalid, report, where, number_field = self.on_invalid, self.report, self.where, self.number_field
        min_digits, max_digits, duplicates, seen = self.min_digits, self.max_digits, self.duplicates, self.seen
        first_row = self.first_rows.setdefault if self.first_rows is not None else None  # bound once: the hot path
        new_object = object.__new__  # bound once too: one Recipient per row
        for row, raw, params in candidates:
            try:
                if raw is _MISSING:
                    raise InvalidPhone(f"no {number_field!r} value")
                # normalize_phone's fast path inlined: a million clean rows save a million calls.
                if (
                    type(raw) is str
                    and raw.isdigit()
                    and raw.isascii()
                    and raw[0] != "0"
                    and min_digits <= len(raw) <= max_digits
                ):
                    number = raw
                else:
                    number = normalize_phone(raw, min_digits=min_digits, max_digits=max_digits)
            except InvalidPhone as exc:
                value = None if raw is _MISSING else raw
                if on_invalid == "fail":
                    hint = ""
                    if where and row == 1 and isinstance(raw, str) and not any(ch.isdigit() for ch in raw):
                        hint = " (if this is a header row, pass has_header=True and number_field=...)"
                    raise SmsValidationError(
                        f"recipients row {row}{where}: invalid phone number {_shown(value)!r}: {exc.reason}{hint}",
                        field="recipients",
                        value=value,
                    ) from None
                self.skipped += 1
                if report is not None:
                    report.add(row, value, exc.reason)
                continue
            if first_row is not None:
                first = first_row(int(number), row)
                if first != row:
                    duplicates.add(row, first)  # type: ignore[union-attr]
                    continue
            elif seen is not None:
                key = int(number)
                if key in seen:
                    continue
                seen.add(key)
            # _recipient() inlined (a call per row is ~0.1 µs of a ~1.5 µs row).
            recipient = new_object(Recipient)
            recipient.__dict__.update(number=number, params=params, row=row, raw=raw)
            yield recipient
        if last:
            self.finish()

    def plain(self, items: list[Any], first_row: int) -> bool:
        """Whether every item is a ``str`` that :meth:`rows` would take as it is, none seen before.

        When so, the numbers are recorded as seen (rows ``first_row`` on) and the batch needs
        no row-by-row pass: the same checks as the per-row fast path, a few passes in C.
        """
        if not items or set(map(type, items)) != _ONLY_STR:
            return False
        joined = "".join(items)
        # Per character, so the whole string passes exactly when every item does (none is empty: min_digits >= 1).
        if not (joined.isdigit() and joined.isascii()):
            return False
        if min(map(len, items)) < self.min_digits or max(map(len, items)) > self.max_digits:
            return False
        if "0" in map(_FIRST_CHAR, items):
            return False
        if self.first_rows is not None:
            batch = dict(zip(map(int, items), range(first_row, first_row + len(items)), strict=True))
            if len(batch) != len(items) or not self.first_rows.keys().isdisjoint(batch):
                return False  # a repeat: the per-row loop reports it with its first row
            self.first_rows.update(batch)
        elif self.seen is not None:
            keys = set(map(int, items))
            if len(keys) != len(items) or not self.seen.isdisjoint(keys):
                return False
            self.seen.update(keys)
        return True

    def finish(self) -> None:
        if self.skipped and self.report is None:
            log.warning("Skipped %d invalid recipient rows%s (pass a RejectReport to see them)", self.skipped,
                        self.where)  # fmt: skip


_ONLY_STR = {str}
_FIRST_CHAR = itemgetter(0)


def _batched(source: Iterable[Any], names: tuple[str, ...], rules: _Rules, size: int) -> Iterator[Recipient | PlainRun]:
    """An iterable source ``size`` items at a time: a clean batch as one run, any other row by row."""
    items = iter(source)
    row = 1
    while True:
        batch: list[Any] = []
        error: BaseException | None = None
        try:
            batch.extend(islice(items, size))  # extend keeps what was read before a failure
        except BaseException as exc:  # the source failed part-way: its earlier rows go first, as row by row
            error = exc
        if error is None and rules.plain(batch, row):
            yield row, batch
        else:
            yield from rules.rows(_item_candidates(batch, names, row))
        if error is not None:
            raise error
        if len(batch) < size:
            break
        row += size
    rules.finish()


def require_nonempty(iterator: Iterable[T], report: RejectReport | None = None) -> Iterator[T]:
    """Yield everything from ``iterator``; raise if it turns out to be empty.

    Only the first item is peeked, so the rest stays lazy. The check runs on the first
    ``next()``, i.e. when consumption starts. With the ``report`` of skipped rows the
    error tells "nothing valid" apart from "nothing at all".
    """
    it = iter(iterator)
    sentinel = object()
    first = next(it, sentinel)
    if first is sentinel:
        if report is not None and report.count:
            raise SmsValidationError(f"recipients: no valid row ({report.count} rejected)", field="recipients",
                                     value=0)
        raise SmsValidationError("recipients is empty: the audience has no rows", field="recipients", value=0)
    yield first  # type: ignore[misc]
    yield from it


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of at most ``size`` items, each built only when the caller asks for it."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise SmsValidationError(f"chunk size must be a positive integer, got {size!r}", field="size", value=size)
    return _chunks(iter(items), size)


def _chunks(it: Iterator[T], size: int) -> Iterator[list[T]]:
    while chunk := list(islice(it, size)):
        yield chunk


def regroup(pieces: Iterable[list[T]], size: int, skip: int = 0) -> Iterator[list[T]]:
    """The items of ``pieces`` (lists of any length) after the first ``skip``, as lists of ``size``.

    ``chunked(itertools.chain.from_iterable(pieces), size)`` after an ``islice`` of ``skip``,
    without a Python step per item: a piece that is already a whole list is passed on as it is.
    Every list but the last has ``size`` items; none is empty.
    """
    buffer: list[T] = []
    for piece in pieces:
        if skip:
            if len(piece) <= skip:
                skip -= len(piece)
                continue
            piece, skip = piece[skip:], 0
        if not buffer and len(piece) == size:
            yield piece
            continue
        buffer += piece
        while len(buffer) >= size:
            yield buffer[:size]
            del buffer[:size]
    if buffer:
        yield buffer


# --------------------------------------------------------------------------- spooling


class _LastLine:
    """A write target that keeps only the last string written: one CSV line at a time."""

    value = ""

    def write(self, text: str) -> int:
        self.value = text
        return len(text)


class CsvSpool:
    """Rows streamed into temporary CSV files, a new part before ``max_bytes`` would be passed.

    For uploads that take a file (Mobizon's ``recipientsFile``): memory stays flat
    whatever the audience size, the row count is known once the stream is spooled, and
    each part stays under the provider's size limit. Every part starts with ``header``
    (when given) and is UTF-8 with ``,`` delimiters, ``"`` enclosures and ``\n`` line
    ends. :meth:`close` (or leaving the ``with`` block) deletes the files.
    """

    def __init__(
        self, header: Sequence[str] | None = None, *, max_bytes: int | None = None, directory: str | None = None
    ) -> None:
        self._line = _LastLine()
        self._writer = csv.writer(self._line, lineterminator="\n")
        self.header = list(header) if header else None
        self._header_bytes = self._encode(self.header) if self.header else b""
        if max_bytes is not None and max_bytes <= len(self._header_bytes):
            raise SmsValidationError(
                f"max_bytes={max_bytes} leaves no room for rows after the header", field="max_bytes", value=max_bytes
            )
        self.max_bytes = max_bytes
        self._dir = tempfile.mkdtemp(prefix="sms-spool-", dir=directory)
        self.parts: list[str] = []
        self.part_rows: list[int] = []
        self.rows = 0
        self._fh: IO[bytes] | None = None
        self._size = 0

    def _encode(self, cells: Sequence[str]) -> bytes:
        if len(cells) == 1 and cells[0].isalnum() and cells[0].isascii():
            return f"{cells[0]}\n".encode("ascii")  # a bare number: what csv.writer writes, without it
        self._writer.writerow(cells)
        return self._line.value.encode("utf-8")

    def write(self, cells: Sequence[str]) -> None:
        """Append one row (its cells as text)."""
        data = self._encode(cells)
        if self._fh is None or (self.max_bytes and self.part_rows[-1] and self._size + len(data) > self.max_bytes):
            self._next_part()
        if self.max_bytes and self._size + len(data) > self.max_bytes:
            raise SmsValidationError(
                f"row {self.rows + 1} alone is {len(data)} bytes, over the {self.max_bytes}-byte file limit",
                field="recipients",
                value=self.rows + 1,
            )
        assert self._fh is not None
        self._fh.write(data)
        self._size += len(data)
        self.part_rows[-1] += 1
        self.rows += 1

    def _next_part(self) -> None:
        if self._fh is not None:
            self._fh.close()
        path = os.path.join(self._dir, f"part-{len(self.parts) + 1:04d}.csv")
        self._fh = open(path, "wb")  # noqa: SIM115 - closed by the next part or finish()
        self._fh.write(self._header_bytes)
        self._size = len(self._header_bytes)
        self.parts.append(path)
        self.part_rows.append(0)

    def finish(self) -> list[str]:
        """Close the part being written; the parts' paths, in order (none for an empty stream)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        return list(self.parts)

    def read(self) -> Iterator[list[str]]:
        """The spooled rows back, part after part, headers skipped."""
        self.finish()
        for path in self.parts:
            with open(path, encoding="utf-8", newline="") as fh:
                rows = csv.reader(fh)
                if self.header:
                    next(rows, None)
                yield from rows

    def close(self) -> None:
        """Delete the files (safe to call twice)."""
        self.finish()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> CsvSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------- templates


@functools.lru_cache(maxsize=256)
def _placeholders(text: str) -> frozenset[str]:
    # Cached: check_template runs once per recipient against the same few texts.
    return frozenset(_PLACEHOLDER.findall(text))


def placeholders(text: str) -> set[str]:
    """Names used as ``{name}`` placeholders in ``text`` (letters, digits, '_' and '-')."""
    return set(_placeholders(text))


def check_template(text: str, params_keys: Iterable[str], row: int) -> None:
    """Raise when a placeholder of ``text`` has no value among ``params_keys`` for ``row``."""
    needed = _placeholders(text)
    if not needed:
        return
    missing = sorted(needed.difference(params_keys))
    if not missing:
        return
    if len(missing) == 1:
        message = f"row {row}: placeholder {{{missing[0]}}} has no value"
    else:
        message = f"row {row}: placeholders {', '.join('{' + m + '}' for m in missing)} have no value"
    raise SmsValidationError(message, field="recipients", value=missing)


def fill_placeholders(text: str, values: Mapping[str, Any], *, remove_missing: bool = False) -> str:
    """``text`` with each ``{name}`` that has a value in ``values`` replaced by it (others kept,
    or removed with ``remove_missing``: Mobizon's ``placeholders_flag=2``)."""
    if not _placeholders(text):
        return text
    missing = "" if remove_missing else None

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values and values[name] is not None:
            return str(values[name])
        return match.group(0) if missing is None else missing

    return _PLACEHOLDER.sub(replace, text)


def check_filled_length(
    text: str, params: Mapping[str, Any], row: int | None, fits: Callable[[str], str | None]
) -> None:
    """Raise when ``text`` filled with a row's ``params`` is over the provider's limit.

    ``fits(filled)`` returns None when the filled text is allowed, else what is wrong
    ("1,600 GSM-7 characters, at most 1,530"). The message names the row (unless
    ``row`` is None) and the
    longest value used, and its length, so the user knows which cell to shorten.
    """
    used = [name for name in _placeholders(text) if name in params]
    if not used:
        return
    problem = fits(fill_placeholders(text, params))
    if problem is None:
        return
    longest = max(used, key=lambda name: len(str(params[name] or "")))
    where = f"row {row}: " if row is not None else ""  # None: the caller names the row
    raise SmsValidationError(
        f"{where}the text filled with this row's values is {problem}; its longest value, "
        f"{longest!r}, is {len(str(params[longest] or ''))} characters",
        field=longest,
        value=len(str(params[longest] or "")),
    )


NO_TEXT_REASON = "the text filled with this row's values is empty"


def no_value_reason(missing: Iterable[str]) -> str:
    """The reject reason for a row without a value for some placeholders: ``no value for {a}, {b}``."""
    return "no value for " + ", ".join("{" + name + "}" for name in sorted(missing))


def unused_values_reason(names: Iterable[str]) -> str:
    """The reject reason for a row bringing values to a text without placeholders (they would be dropped)."""
    shown = ", ".join(sorted(str(name) for name in names)[:5])
    return (f"values for {shown} but the text has no placeholders to put them in; add them to the text or leave "
            "those columns out")


def fill_problem(
    text: str, params: Mapping[str, Any], fits: Callable[[str], str | None] | None = None, *,
    missing_allowed: bool = False, remove_missing: bool = False, own_columns: Collection[str] = (),
) -> str | None:
    """Why one row's ``params`` cannot fill ``text``, or None: the one per-row rule of the estimate and the sends.

    In order: values brought to a text without placeholders (columns in ``own_columns``, which
    the provider reads itself, e.g. BSG's ``reference_id``, do not count), a placeholder
    without a value (unless ``missing_allowed``: the provider keeps it, or removes it with
    ``remove_missing``), an empty filled text, a filled text ``fits`` refuses (its
    :func:`check_filled_length` message without the row). The words are the reject reasons
    the estimate reports, so a send under ``on_invalid="skip"`` reports the same.
    """
    needed = _placeholders(text)
    if not needed:
        if not params:
            return None
        unused = [name for name in params if name not in own_columns]
        return unused_values_reason(unused) if unused else None
    missing = needed.difference(params)
    if missing and not missing_allowed:
        return no_value_reason(missing)
    # Once: this runs per row of a send. What the provider sends: a missing value kept or removed.
    filled = fill_placeholders(text, params, remove_missing=remove_missing)
    if not filled:  # "" is the only text of 0 parts
        return NO_TEXT_REASON
    if fits is not None and fits(filled) is not None:
        if missing:  # kept or removed placeholders: check_filled_length fills only the values given
            return f"the text filled with this row's values is {fits(filled)}"
        try:  # the rare refused row: its message names the longest value
            check_filled_length(text, params, None, fits)
        except SmsValidationError as err:
            return str(err)
    return None


def sms_parts(text: str) -> tuple[str, int, int]:
    """Return ``(encoding, characters, segments)`` for ``text`` as sent in one SMS.

    GSM-7 when every character is in the GSM 03.38 tables (extension characters count
    2), else UCS-2 counted in UTF-16 code units (emoji count 2). A single message holds
    160/70; a concatenated one 153/67 per part, and a two-unit character is never split
    across parts, just as handsets and gateways do. Empty text is 0 segments.
    """
    if all(ch in _GSM7_BASIC_SET or ch in _GSM7_EXTENDED_SET for ch in text):
        encoding, single, multi = "GSM-7", 160, 153
        units = [2 if ch in _GSM7_EXTENDED_SET else 1 for ch in text]
    else:
        encoding, single, multi = "UCS-2", 70, 67
        units = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
    total = sum(units)
    if total == 0:
        return encoding, 0, 0
    if total <= single:
        return encoding, total, 1
    segments, used = 1, 0
    for unit in units:
        if used + unit > multi:
            segments += 1
            used = 0
        used += unit
    return encoding, total, segments
