"""Unit tests for airflow_sms_provider.recipients."""

from __future__ import annotations

import csv
import itertools
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.recipients import (
    GSM7_BASIC,
    GSM7_EXTENDED,
    InvalidPhone,
    Recipient,
    RejectReport,
    check_template,
    chunked,
    fill_placeholders,
    fill_problem,
    iter_recipients,
    normalize_phone,
    placeholders,
    require_nonempty,
    sms_parts,
)

N1, N2, N3 = "77011234567", "77019876543", "77025550000"


def numbers(source: Any, **kwargs: Any) -> list[str]:
    return [r.number for r in iter_recipients(source, **kwargs)]


# --------------------------------------------------------------------------- normalize_phone


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("77011234567", "77011234567"),
        ("+77011234567", "77011234567"),
        ("+7 701 123 45 67", "77011234567"),
        ("7-701-123-45-67", "77011234567"),
        ("+7 (701) 123-45-67", "77011234567"),
        ("7.701.123.45.67", "77011234567"),
        ("\u00a0+7\u00a0701 1234567 ", "77011234567"),  # Excel's no-break spaces
        (77011234567, "77011234567"),
        (77011234567.0, "77011234567"),
        ("1234567890", "1234567890"),  # exactly min_digits
        ("123456789012345", "123456789012345"),  # exactly max_digits
    ],
)
def test_normalize_phone_accepts(value: Any, expected: str) -> None:
    assert normalize_phone(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("123456789", "too short"),
        ("1234567890123456", "too long"),
        ("+7 701 ABC 45 67", "other than digits"),
        ("7701123456x", "other than digits"),
        ("++77011234567", "other than digits"),
        ("7701+1234567", "other than digits"),
        ("07011234567", "starts with 0"),
        ("0077011234567", "starts with 0"),
        ("", "empty"),
        ("  - ", "empty"),
        (None, "empty"),
        (True, "boolean"),
        (-77011234567, "negative"),
        (7701123456.5, "whole number"),
        ("٧٧٠١١٢٣٤٥٦٧", "other than digits"),  # Arabic-Indic digits are not ASCII digits
        (b"77011234567", "unsupported type"),
    ],
)
def test_normalize_phone_rejects(value: Any, reason: str) -> None:
    with pytest.raises(InvalidPhone) as info:
        normalize_phone(value)
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_normalize_phone_custom_bounds() -> None:
    assert normalize_phone("12345", min_digits=5, max_digits=5) == "12345"
    with pytest.raises(InvalidPhone, match="too long"):
        normalize_phone("123456", min_digits=5, max_digits=5)


# --------------------------------------------------------------------------- iterables


def test_iterable_of_str_and_int() -> None:
    result = list(iter_recipients(["+7 701 123 45 67", 77019876543]))
    assert result == [
        Recipient(number=N1, params={}, row=1, raw="+7 701 123 45 67"),
        Recipient(number=N2, params={}, row=2, raw=77019876543),
    ]


def test_iterable_of_dicts_params_as_str() -> None:
    rows = [
        {"recipient": N1, "name": "Ann", "amount": 12.5, "note": None},
        {"recipient": N2, "name": "Bob", "amount": 3, "note": "x"},
    ]
    result = list(iter_recipients(rows))
    assert result[0].params == {"name": "Ann", "amount": "12.5", "note": ""}
    assert result[1].params == {"name": "Bob", "amount": "3", "note": "x"}
    assert [r.number for r in result] == [N1, N2]


def test_dict_custom_number_field_and_default_aliases() -> None:
    assert numbers([{"tel": N1, "name": "A"}], number_field="tel") == [N1]
    assert numbers([{"phone": N1}, {"msisdn": N2}, {"number": N3}]) == [N1, N2, N3]
    # An explicit number_field is meant literally: aliases no longer apply.
    with pytest.raises(SmsValidationError, match=r"row 1.*no 'tel' value"):
        list(iter_recipients([{"phone": N1}], number_field="tel"))


def test_dict_without_number_is_an_invalid_row() -> None:
    report = RejectReport()
    result = list(iter_recipients([{"name": "A"}, {"recipient": N1}], on_invalid="skip", report=report))
    assert [r.row for r in result] == [2]
    assert report.summary()["examples"] == [{"row": 1, "value": "", "reason": "no 'recipient' value"}]


def test_iterable_of_tuples() -> None:
    result = list(iter_recipients([(N1, {"name": "Ann", "n": 1}), (N2,), [N3, None]]))
    assert [(r.number, dict(r.params)) for r in result] == [
        (N1, {"name": "Ann", "n": "1"}),
        (N2, {}),
        (N3, {}),
    ]


@pytest.mark.parametrize("item", [(N1, "not a dict"), (N1, {}, "extra"), (), object(), b"77011234567"])
def test_malformed_items_always_raise(item: Any) -> None:
    # Structural errors are not skippable bad numbers.
    with pytest.raises(SmsValidationError, match="row 2") as info:
        list(iter_recipients([N1, item], on_invalid="skip"))
    assert info.value.field == "recipients"


def test_generator_source_is_consumed_lazily() -> None:
    pulled: list[int] = []

    def gen() -> Iterator[str]:
        for i in range(10):
            pulled.append(i)
            yield f"7701000{i:04d}"

    it = iter_recipients(gen())
    assert pulled == []  # nothing read before the first next()
    next(it)
    assert pulled == [0]


# --------------------------------------------------------------------------- strings


def test_string_list_of_numbers() -> None:
    result = list(iter_recipients(f" {N1}, +7 701 987 65 43\n\n{N3},"))
    assert [(r.number, r.row) for r in result] == [(N1, 1), (N2, 2), (N3, 3)]


def test_single_number_string() -> None:
    assert numbers("+7 (701) 123-45-67") == [N1]
    assert numbers("7701.123.4567") == ["77011234567"]  # digits after a dot are not an extension


def test_string_that_looks_like_a_path_is_a_path(tmp_path: Path) -> None:
    with pytest.raises(SmsValidationError, match="not found") as info:
        list(iter_recipients(str(tmp_path / "missing.csv")))
    assert info.value.field == "source"
    with pytest.raises(SmsValidationError, match="not found"):
        list(iter_recipients("audience.csv"))  # no '/', but an extension


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "audience.json"
    path.write_text("[]")
    with pytest.raises(SmsValidationError, match=r"audience\.json") as info:
        iter_recipients(str(path))  # checked eagerly, before iteration
    assert info.value.field == "source"
    assert str(path) in info.value.value
    # file_format overrides the extension.
    path.write_text(f"{N1}\n")
    assert numbers(path, file_format="csv") == [N1]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"on_invalid": "ignore"}, "on_invalid"),
        ({"file_format": "xls"}, "file_format"),
        ({"min_digits": 12, "max_digits": 10}, "min_digits"),
        ({"delimiter": ";;"}, "delimiter"),
        ({"encoding": "no-such-codec"}, "encoding"),
        ({"number_field": ""}, "number_field"),
    ],
)
def test_bad_arguments_raise_eagerly(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(SmsValidationError) as info:
        iter_recipients([N1], **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("source", [None, b"77011234567", {"recipient": N1}, 77011234567])
def test_unsupported_sources(source: Any) -> None:
    with pytest.raises(SmsValidationError) as info:
        iter_recipients(source)
    assert info.value.field == "source"


# --------------------------------------------------------------------------- CSV


def test_csv_without_header(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"{N1}\n\n+7 701 987 65 43\n{N3},\n")
    result = list(iter_recipients(path))
    # Blank line 2 is skipped but counted; a trailing empty column is tolerated.
    assert [(r.number, r.row, dict(r.params)) for r in result] == [(N1, 1, {}), (N2, 3, {}), (N3, 4, {})]


def test_csv_with_detected_header(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"Name,Recipient,City\nAnn,{N1},Almaty\nBob,{N2}\n")
    result = list(iter_recipients(str(path)))
    assert [(r.number, r.row, dict(r.params)) for r in result] == [
        (N1, 1, {"Name": "Ann", "City": "Almaty"}),
        (N2, 2, {"Name": "Bob"}),  # short row: the missing param is absent, not ""
    ]


@pytest.mark.parametrize("title", ["phone", "MSISDN", " Number "])
def test_csv_header_aliases(tmp_path: Path, title: str) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"{title},name\n{N1},Ann\n")
    assert [(r.number, dict(r.params)) for r in iter_recipients(path)] == [(N1, {"name": "Ann"})]


def test_csv_utf8_bom_header(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(f"\ufeffrecipient,name\n{N1},Ann\n".encode())
    assert [dict(r.params) for r in iter_recipients(path)] == [{"name": "Ann"}]


def test_csv_forced_header_without_number_column(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"tel,name\n{N1},Ann\n")
    with pytest.raises(SmsValidationError, match="'recipient'") as info:
        list(iter_recipients(path, has_header=True))
    assert info.value.field == "number_field"
    assert numbers(path, has_header=True, number_field="tel") == [N1]


def test_csv_has_header_false_reads_first_row_as_data(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"phone\n{N1}\n")
    with pytest.raises(SmsValidationError, match=r"row 1.*'phone'"):
        list(iter_recipients(path, has_header=False))


def test_csv_extra_columns_without_header_raise(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"{N1}\n{N2},Ann\n")
    with pytest.raises(SmsValidationError, match="row 2") as info:
        list(iter_recipients(path, on_invalid="skip"))
    assert info.value.field == "recipients"


def test_csv_row_wider_than_header_raises(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"recipient,name\n{N1},Ann\n{N2},Ivanov, Ivan\n")
    with pytest.raises(SmsValidationError, match=r"row 2 .*3 columns"):
        list(iter_recipients(path))


def test_csv_duplicate_header_raises(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"recipient,name,name\n{N1},A,B\n")
    with pytest.raises(SmsValidationError, match="'name' appears twice"):
        list(iter_recipients(path))


def test_csv_custom_delimiter_and_quoting(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text(f'recipient;name\n{N1};"Ivanov; Ivan"\n{N2};"multi\nline"\n')
    result = list(iter_recipients(path, delimiter=";"))
    assert [dict(r.params) for r in result] == [{"name": "Ivanov; Ivan"}, {"name": "multi\nline"}]


def test_csv_cp1251(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(f"recipient,имя\n{N1},Анна\n".encode("cp1251"))
    result = list(iter_recipients(path, encoding="cp1251"))
    assert dict(result[0].params) == {"имя": "Анна"}


def test_csv_undecodable_bytes_names_encoding_and_row(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(f"recipient,name\n{N1},Ann\n{N2},".encode() + "Анна\n".encode("cp1251"))
    result = iter_recipients(path)  # utf-8 by default
    assert next(result).number == N1
    with pytest.raises(SmsValidationError) as info:
        next(result)
    message = str(info.value)
    assert "'utf-8'" in message
    assert "row 2" in message
    assert "line 3" in message
    assert info.value.field == "encoding"


def test_csv_utf16_is_supported(tmp_path: Path) -> None:
    # Excel's "Unicode text" export: UTF-16 with a BOM, tab separated.
    path = tmp_path / "a.txt"
    path.write_bytes(f"recipient\tимя\n{N1}\tАнна\n".encode("utf-16"))  # noqa: RUF001
    result = list(iter_recipients(path, encoding="utf-16", delimiter="\t"))
    assert [(r.number, dict(r.params)) for r in result] == [(N1, {"имя": "Анна"})]


def test_csv_utf16_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(f"recipient\n{N1}\n".encode("utf-16") + b"\x00\xd8A\x00")  # a lone surrogate
    with pytest.raises(SmsValidationError, match="'utf-16'") as info:
        list(iter_recipients(path, encoding="utf-16"))
    assert "row" in str(info.value)
    assert info.value.field == "encoding"


def test_object_with_open_and_suffix(tmp_path: Path) -> None:
    class FakeStoragePath:
        """Duck-types Airflow's ObjectStoragePath: .open() and .suffix, not os.PathLike."""

        def __init__(self, path: Path) -> None:
            self._path = path
            self.suffix = path.suffix
            self.modes: list[str] = []

        def open(self, mode: str = "r") -> Any:
            self.modes.append(mode)
            return open(self._path, mode)

        def __str__(self) -> str:
            return f"s3://bucket/{self._path.name}"

    path = tmp_path / "a.csv"
    path.write_text(f"{N1}\n{N2}\n")
    fake = FakeStoragePath(path)
    assert numbers(fake) == [N1, N2]
    assert fake.modes == ["rb"]

    missing = FakeStoragePath(tmp_path / "none.csv")
    with pytest.raises(SmsValidationError, match=r"s3://bucket/none\.csv"):
        list(iter_recipients(missing))


def test_airflow_object_storage_path(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    path = tmp_path / "a.csv"
    path.write_text(f"recipient,name\n{N1},Ann\n")
    url = f"file://{path}"
    assert numbers(ObjectStoragePath(url)) == [N1]
    assert numbers(url) == [N1]  # a "://" string is opened as an ObjectStoragePath


# --------------------------------------------------------------------------- xlsx


def test_xlsx(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Phone", "name", "amount"])
    sheet.append([77011234567, "Ann", 10])
    sheet.append([None, None, None])  # blank row: skipped, still counted
    sheet.append([77019876543.0, "Bob", 2.5])  # a number stored as float
    sheet.append(["+7 702 555 00 00"])  # empty cells are empty values, not missing ones
    path = tmp_path / "a.xlsx"
    workbook.save(path)

    result = list(iter_recipients(path))
    assert [(r.number, r.row, dict(r.params)) for r in result] == [
        (N1, 1, {"name": "Ann", "amount": "10"}),
        (N2, 3, {"name": "Bob", "amount": "2.5"}),
        (N3, 4, {"name": "", "amount": ""}),
    ]


def test_xlsx_bad_number_names_row(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    workbook.active.append(["recipient"])
    workbook.active.append([N1])
    workbook.active.append(["12345"])
    path = tmp_path / "a.xlsx"
    workbook.save(path)
    with pytest.raises(SmsValidationError, match=r"row 2 of .*a\.xlsx.*'12345'"):
        list(iter_recipients(str(path)))


def test_xlsx_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    path.write_text("not a zip")
    with pytest.raises(SmsValidationError, match=r"not a readable \.xlsx") as info:
        list(iter_recipients(path))
    assert info.value.field == "source"


def test_xlsx_without_openpyxl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.xlsx"
    path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # makes "import openpyxl" fail
    with pytest.raises(SmsValidationError, match="openpyxl"):
        list(iter_recipients(path))


# --------------------------------------------------------------------------- invalid rows


def test_fail_mode_names_row_and_value() -> None:
    with pytest.raises(SmsValidationError) as info:
        list(iter_recipients([N1, N2, "12-34"]))
    assert "row 3" in str(info.value)
    assert "'12-34'" in str(info.value)
    assert "too short" in str(info.value)
    assert info.value.field == "recipients"
    assert info.value.value == "12-34"


def test_skip_mode_with_report_file_and_cap(tmp_path: Path) -> None:
    bad = [f"bad{i}" for i in range(5)]
    source = [N1, *bad, N2]
    report_path = tmp_path / "rejects.csv"
    with RejectReport(cap=2, path=report_path) as report:
        result = list(iter_recipients(source, on_invalid="skip", report=report))
    assert [r.number for r in result] == [N1, N2]
    summary = report.summary()
    assert summary["rejected"] == report.count == 5
    assert summary["report_path"] == str(report_path)
    assert summary["examples"] == [
        {"row": 2, "value": "bad0", "reason": "contains characters other than digits"},
        {"row": 3, "value": "bad1", "reason": "contains characters other than digits"},
    ]
    with report_path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["row", "value", "reason"]
    assert [(r[0], r[1]) for r in rows[1:]] == [(str(i + 2), f"bad{i}") for i in range(5)]


def test_report_file_is_created_lazily(tmp_path: Path) -> None:
    report_path = tmp_path / "rejects.csv"
    report = RejectReport(path=report_path)
    assert list(iter_recipients([N1], on_invalid="skip", report=report))
    report.close()
    assert not report_path.exists()
    assert report.summary() == {"rejected": 0, "examples": [], "report_path": None}


def test_report_to_object_with_open(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    target = tmp_path / "rejects.csv"
    report = RejectReport(path=ObjectStoragePath(f"file://{target}"))
    report.add(7, 123, "too short")
    report.close()
    report.close()  # idempotent
    assert target.read_text() == "row,value,reason\n7,123,too short\n"
    with pytest.raises(RuntimeError, match="closed"):
        report.add(8, "x", "y")


def test_report_to_a_url_string_in_a_folder_not_yet_there(tmp_path: Path) -> None:
    # docs/deployment.md: a string with "://" is opened as an ObjectStoragePath, like an audience;
    # a file:// one gets its folder (a per-run folder of a shared mount does not exist yet).
    target = tmp_path / "example" / "manual__2026-11-30T22:16:49+00:00" / "rejected.csv"
    report = RejectReport(path=f"file://{target}")
    report.add(3, "x1", "contains characters other than digits")
    report.close()
    assert target.read_text() == "row,value,reason\n3,x1,contains characters other than digits\n"
    assert report.summary()["report_path"] == f"file://{target}"
    assert not (Path.cwd() / "file:").exists()


def test_report_examples_truncate_long_values() -> None:
    report = RejectReport()
    report.add(1, "9" * 1000, "too long")
    assert len(report.summary()["examples"][0]["value"]) <= 100


def test_skip_without_report_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        assert numbers(["x", N1], on_invalid="skip") == [N1]
    assert "Skipped 1 invalid" in caplog.text


def test_dedupe_keeps_first() -> None:
    source = [(N1, {"v": "first"}), "+7 701 123 45 67", N2, (N1, {"v": "third"})]
    result = list(iter_recipients(source, dedupe=True))
    assert [(r.number, r.row, dict(r.params)) for r in result] == [(N1, 1, {"v": "first"}), (N2, 3, {})]
    assert len(list(iter_recipients(source))) == 4  # off by default


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("n", "size", "expected"),
    [(0, 3, []), (6, 3, [3, 3]), (7, 3, [3, 3, 1]), (2, 5, [2]), (3, 1, [1, 1, 1])],
)
def test_chunked_sizes(n: int, size: int, expected: list[int]) -> None:
    chunks = list(chunked(range(n), size))
    assert [len(c) for c in chunks] == expected
    assert [x for c in chunks for x in c] == list(range(n))
    assert all(isinstance(c, list) for c in chunks)


@pytest.mark.parametrize("size", [0, -1, True, 2.0])
def test_chunked_bad_size(size: Any) -> None:
    with pytest.raises(SmsValidationError):
        chunked([1], size)


def test_require_nonempty() -> None:
    with pytest.raises(SmsValidationError, match="recipients is empty") as info:
        list(require_nonempty(iter_recipients([])))
    assert info.value.field == "recipients"
    assert list(require_nonempty(iter([1, 2, 3]))) == [1, 2, 3]


def test_require_nonempty_is_lazy() -> None:
    it = require_nonempty(itertools.count())
    assert list(itertools.islice(it, 3)) == [0, 1, 2]


def test_streaming_infinite_generator() -> None:
    infinite = (f"7701{i:07d}" for i in itertools.count())
    chunks = list(itertools.islice(chunked(require_nonempty(iter_recipients(infinite)), 1000), 3))
    assert [len(c) for c in chunks] == [1000, 1000, 1000]
    assert chunks[2][-1].number == "77010002999"
    assert chunks[2][-1].row == 3000


def test_large_csv_streams_in_bounded_memory(tmp_path: Path) -> None:
    rows = 200_000
    path = tmp_path / "big.csv"
    with path.open("w") as fh:
        fh.write("recipient,name\n")
        for i in range(rows):
            fh.write(f"7701{i:07d},name{i}\n")
    # Holding all 200k Recipients (number, params dict, raw) would take roughly 80 MB.

    tracemalloc.start()
    try:
        count = 0
        last = None
        for chunk in chunked(iter_recipients(path), 1000):
            count += len(chunk)
            last = chunk[-1]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == rows
    assert last is not None and last.row == rows and last.params == {"name": f"name{rows - 1}"}
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


# --------------------------------------------------------------------------- templates


def test_placeholders() -> None:
    assert placeholders("Hi {name}, code {otp_1} {a-b} {not valid} {} {{x}}") == {"name", "otp_1", "a-b", "x"}
    assert placeholders("no placeholders") == set()
    found = placeholders("{a}")
    found.add("mutated")
    assert placeholders("{a}") == {"a"}  # the cached result is not shared


def test_check_template() -> None:
    check_template("Hi {name}", {"name": "Ann"}, row=1)
    check_template("Hi", [], row=1)
    with pytest.raises(SmsValidationError) as info:
        check_template("Hi {name}, {city}", ["city"], row=7)
    assert str(info.value) == "row 7: placeholder {name} has no value"
    assert info.value.field == "recipients"
    with pytest.raises(SmsValidationError, match=r"row 2: placeholders \{a\}, \{b\} have no value"):
        check_template("{b}{a}", [], row=2)


def test_check_template_with_csv_short_row(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(f"recipient,name\n{N1},Ann\n{N2}\n")
    result = list(iter_recipients(path))
    check_template("Hi {name}", result[0].params, result[0].row)
    with pytest.raises(SmsValidationError, match=r"row 2: placeholder \{name\}"):
        check_template("Hi {name}", result[1].params, result[1].row)


# --------------------------------------------------------------------------- sms_parts


def test_gsm7_tables() -> None:
    assert len(GSM7_BASIC) == 127  # 128 code points minus ESC
    assert len(set(GSM7_BASIC)) == 127
    assert set(GSM7_EXTENDED) == set("\f^{}\\[~]|€")
    assert not set(GSM7_BASIC) & set(GSM7_EXTENDED)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 0, 0)),
        ("Hello @ £5!", ("GSM-7", 11, 1)),
        ("a" * 160, ("GSM-7", 160, 1)),
        ("a" * 161, ("GSM-7", 161, 2)),
        ("a" * 306, ("GSM-7", 306, 2)),
        ("a" * 307, ("GSM-7", 307, 3)),
        ("€" * 80, ("GSM-7", 160, 1)),
        ("€" + "a" * 159, ("GSM-7", 161, 2)),
        ("{}[]~^|\\", ("GSM-7", 16, 1)),
        # 306 septets fit two parts, but the '€' after 152 septets cannot be split: it opens part 2.
        ("a" * 152 + "€" + "a" * 152, ("GSM-7", 306, 3)),
        ("a" * 151 + "€" + "a" * 153, ("GSM-7", 306, 2)),
        ("Привет", ("UCS-2", 6, 1)),
        ("я" * 70, ("UCS-2", 70, 1)),
        ("я" * 71, ("UCS-2", 71, 2)),
        ("я" * 134, ("UCS-2", 134, 2)),
        ("я" * 135, ("UCS-2", 135, 3)),
        ("a" * 69 + "я", ("UCS-2", 70, 1)),  # one non-GSM char switches the whole text
        ("😀" * 35, ("UCS-2", 70, 1)),  # outside the BMP: two UTF-16 units each
        ("ç", ("UCS-2", 1, 1)),  # GSM has only the capital Ç
    ],
)
def test_sms_parts(text: str, expected: tuple[str, int, int]) -> None:
    assert sms_parts(text) == expected


# --------------------------------------------------------------------------- fill_problem (one per-row rule)


def _at_most_ten(filled: str) -> str | None:
    return None if len(filled) <= 10 else f"{len(filled)} characters, at most 10"


@pytest.mark.parametrize(
    ("text", "params", "missing_allowed", "expected"),
    [
        ("Hi", {}, False, None),  # no placeholder: nothing to fill
        ("Hi {name}", {"name": "Ana"}, False, None),
        ("Hi {name}", {}, False, "no value for {name}"),
        ("{b} {a}", {"x": "1"}, False, "no value for {a}, {b}"),
        ("Hi {name}", {}, True, None),  # Mobizon placeholders_flag 1/2: the provider keeps or removes it
        ("{name}", {"name": ""}, False, "the text filled with this row's values is empty"),
        ("Hi {name}", {"name": "x" * 20}, False,
         "the text filled with this row's values is 23 characters, at most 10; its longest value, 'name', "
         "is 20 characters"),
    ],
)
def test_fill_problem_is_the_estimate_s_reason(text: str, params: dict[str, str], missing_allowed: bool,
                                               expected: str | None) -> None:
    assert fill_problem(text, params, _at_most_ten, missing_allowed=missing_allowed) == expected


@pytest.mark.parametrize(
    ("text", "params", "options", "expected"),
    [
        # Values for a text without placeholders would be dropped unsaid: refused by every send (#11).
        ("Hi", {"name": "Ana"}, {},
         "values for name but the text has no placeholders to put them in; add them to the text or leave those "
         "columns out"),
        ("Hi", {"reference_id": "7"}, {"own_columns": ("reference_id",)}, None),  # BSG reads it itself
        ("Hi", {"reference_id": "7", "b": "1"}, {"own_columns": ("reference_id",)},
         "values for b but the text has no placeholders to put them in; add them to the text or leave those "
         "columns out"),
        # Mobizon placeholders_flag=2: the missing placeholder is removed, and the rest is what counts.
        ("{name}", {}, {"missing_allowed": True, "remove_missing": True},
         "the text filled with this row's values is empty"),
        ("{name}{x}", {"x": "y" * 9}, {"missing_allowed": True, "remove_missing": True}, None),
        ("{name}{x}", {"x": "y" * 9}, {"missing_allowed": True},  # kept: 6 + 9 characters
         "the text filled with this row's values is 15 characters, at most 10"),
    ],
)
def test_fill_problem_follows_the_send_s_options(text: str, params: dict[str, str], options: dict[str, Any],
                                                 expected: str | None) -> None:
    assert fill_problem(text, params, _at_most_ten, **options) == expected


def test_fill_placeholders_removes_missing_ones_as_mobizon_flag_2_does() -> None:
    assert fill_placeholders("Hi {name}, {code}", {"code": "7"}, remove_missing=True) == "Hi , 7"
    assert fill_placeholders("Hi {name}, {code}", {"code": "7"}) == "Hi {name}, 7"
