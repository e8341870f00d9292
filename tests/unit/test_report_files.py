"""FileSink: exact bytes per format, replace-on-commit, and the watermark sidecar."""

from __future__ import annotations

import builtins
import datetime as dt
import json
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.reports import files
from airflow_sms_provider.reports.files import SIDECAR, FileSink
from airflow_sms_provider.reports.record import COLUMNS, DeliveryRecord

UTC = dt.timezone.utc
FULL = DeliveryRecord(
    provider="mobizon", campaign_id="42", message_id="7", recipient="77010000001", status="delivered",
    provider_status="DELIVRD", parts=2, cost=Decimal("0.10"), created_at=dt.datetime(2026, 5, 1, 5, 0, tzinfo=UTC),
    updated_at=dt.datetime(2026, 5, 1, 5, 0, 7, tzinfo=UTC), error_code=None,
)
BARE = DeliveryRecord(provider="mobizon", campaign_id="42", message_id="8", recipient="7701, \"x\"", status="pending",
                      provider_status="NEW")  # fmt: skip


def test_csv_bytes(tmp_path: Path) -> None:
    sink = FileSink(str(tmp_path / "out" / "report.csv"))
    writer = sink.open("dag/task/run1", incremental=False)
    writer.write([FULL])
    writer.write([BARE])
    assert writer.commit() == 2
    assert (tmp_path / "out" / "report.csv").read_bytes() == (
        b"provider,campaign_id,message_id,recipient,status,provider_status,parts,cost,created_at,updated_at,"
        b"error_code\r\n"
        b"mobizon,42,7,77010000001,delivered,DELIVRD,2,0.10,2026-05-01T05:00:00+00:00,2026-05-01T05:00:07+00:00,\r\n"
        b'mobizon,42,8,"7701, ""x""",pending,NEW,,,,,\r\n'
    )
    assert sink.describe() == f"file://{tmp_path}/out/report.csv (csv)"


class _CountingHandle:
    """A byte handle that counts every attribute asked of it, as the storage wrapper's ``__getattr__`` sees."""

    def __init__(self) -> None:
        self.data, self.asked = bytearray(), 0

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        return len(chunk)

    def __getattribute__(self, name: str) -> Any:
        if name not in ("data", "asked", "__dict__", "__class__"):
            object.__setattr__(self, "asked", object.__getattribute__(self, "asked") + 1)
        return object.__getattribute__(self, name)


def test_csv_touches_the_handle_once_per_batch_not_once_per_row() -> None:
    """A TextIOWrapper over the storage handle asked it (closed, write) for every row: a third of the CSV
    export's CPU. Rows are encoded in memory and each batch is one write, same bytes."""
    from airflow_sms_provider.reports.files import _Csv

    handle = _CountingHandle()
    encoder = _Csv(handle)  # type: ignore[arg-type]
    rows = [FULL, BARE, replace(FULL, recipient="Алматы")]
    encoder.write(rows * 500)
    encoder.close()
    assert handle.asked <= 4
    lines = bytes(handle.data).split(b"\r\n")
    assert len(lines) == 1 + 1500 + 1 and lines[3] == "mobizon,42,7,Алматы,delivered,DELIVRD,2,0.10,"\
        "2026-05-01T05:00:00+00:00,2026-05-01T05:00:07+00:00,".encode()


# A compromised or hostile provider: every text it gives starts like a spreadsheet formula.
HOSTILE = DeliveryRecord(
    provider="mobizon", campaign_id="42", message_id="=HYPERLINK(\"http://x\",\"y\")", recipient="+77010000001",
    status="pending", provider_status="@SUM(A1)", parts=1, cost=Decimal("-0.05"), error_code="-2+3",
)  # fmt: skip
HOSTILE_ROW = 'mobizon,42,"=HYPERLINK(""http://x"",""y"")",+77010000001,pending,@SUM(A1),1,-0.05,,,-2+3\r\n'
ESCAPED_ROW = 'mobizon,42,"\'=HYPERLINK(""http://x"",""y"")",+77010000001,pending,\'@SUM(A1),1,-0.05,,,\'-2+3\r\n'


@pytest.mark.parametrize(("escape", "row"), [(False, HOSTILE_ROW), (True, ESCAPED_ROW)])
def test_csv_formula_values_kept_by_default_escaped_on_request(tmp_path: Path, escape: bool, row: str) -> None:
    """Default: the provider's values byte for byte (a loader reads them back). ``csv_escape_formulas``: a
    ``'`` before each value a spreadsheet would run (= + - @), not before a phone or a negative cost."""
    kwargs = {"csv_escape_formulas": True} if escape else {}
    sink = FileSink(str(tmp_path / "report.csv"), **kwargs)
    writer = sink.open("k", incremental=False)
    writer.write([HOSTILE])
    writer.commit()
    assert (tmp_path / "report.csv").read_bytes().decode().split("\r\n", 1)[1] == row


def test_the_operator_hands_csv_escape_formulas_to_its_file(tmp_path: Path) -> None:
    from airflow_sms_provider.operators.reports import SmsDeliveryReportOperator

    def sink(**kwargs: Any) -> Any:
        return SmsDeliveryReportOperator(task_id="r", conn_id="mobizon_default", campaign_ids=1,
                                         destination=str(tmp_path / "r.csv"), **kwargs).make_sink()

    assert sink(csv_escape_formulas=True).csv_escape_formulas is True
    assert sink().csv_escape_formulas is False  # the default keeps the provider's values as given


@pytest.mark.parametrize(("value", "escaped"), [
    ("=1+1", "'=1+1"), ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"), ("-1+2", "'-1+2"), ("@SUM(1)", "'@SUM(1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("+77010000001", "+77010000001"), ("-0.05", "-0.05"), ("1,5", "1,5"),
    ("DELIVRD", "DELIVRD"), ("", ""), (None, None), (7, 7),
])  # fmt: skip
def test_escape_formula(value: Any, escaped: Any) -> None:
    from airflow_sms_provider.reports.files import escape_formula

    assert escape_formula(value) == escaped


def test_jsonl_bytes(tmp_path: Path) -> None:
    sink = FileSink(f"file://{tmp_path}/r.jsonl")
    writer = sink.open("k", incremental=False)
    writer.write([FULL, BARE])
    writer.commit()
    assert (tmp_path / "r.jsonl").read_bytes() == (
        b'{"provider":"mobizon","campaign_id":"42","message_id":"7","recipient":"77010000001","status":"delivered",'
        b'"provider_status":"DELIVRD","parts":2,"cost":"0.10","created_at":"2026-05-01T05:00:00+00:00",'
        b'"updated_at":"2026-05-01T05:00:07+00:00","error_code":null}\n'
        b'{"provider":"mobizon","campaign_id":"42","message_id":"8","recipient":"7701, \\"x\\"","status":"pending",'
        b'"provider_status":"NEW","parts":null,"cost":null,"created_at":null,"updated_at":null,"error_code":null}\n'
    )


def test_parquet_types_and_values(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    sink = FileSink(str(tmp_path / "r.parquet"))
    writer = sink.open("k", incremental=False)
    writer.write([FULL, BARE])
    writer.commit()
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.column_names == list(COLUMNS)
    assert str(table.schema.field("cost").type) == "decimal128(38, 10)"
    assert str(table.schema.field("updated_at").type) == "timestamp[us, tz=UTC]"
    rows = table.to_pylist()
    assert rows[0]["cost"] == Decimal("0.10") and rows[0]["updated_at"] == FULL.updated_at and rows[0]["parts"] == 2
    assert rows[1]["recipient"] == BARE.recipient and rows[1]["cost"] is None


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pyarrow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("pyarrow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(exc.SmsValidationError, match=r"airflow-sms-provider\[parquet\]"):
        FileSink(str(tmp_path / "r.parquet"))
    FileSink(str(tmp_path / "r.csv"))  # CSV needs nothing


def test_format_from_suffix_or_argument(tmp_path: Path) -> None:
    assert FileSink(str(tmp_path / "a.ndjson")).format == "jsonl"
    assert FileSink(str(tmp_path / "a.txt"), format="csv").format == "csv"
    with pytest.raises(exc.SmsValidationError, match=r"cannot tell the format from '\.txt'") as info:
        FileSink(str(tmp_path / "a.txt"))
    assert info.value.field == "format"  # type: ignore[attr-defined]
    with pytest.raises(exc.SmsValidationError, match="format='xml'"):
        FileSink(str(tmp_path / "a.csv"), format="xml")  # type: ignore[arg-type]


def test_nothing_under_the_target_name_until_commit_and_a_killed_try_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    target.write_text("previous export\n")
    killed = FileSink(str(target)).open("run1", incremental=False)
    killed.write([FULL])
    killed.handle.flush()
    assert target.read_text() == "previous export\n"  # a half export never shows under the name
    # The worker died: no commit, no abort. The retry writes the same temporary object and moves it.
    retry = FileSink(str(target)).open("run1", incremental=False)
    retry.write([FULL, BARE])
    retry.commit()
    assert target.read_text().count("\n") == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([SIDECAR, "r.csv"])


def test_abort_leaves_the_destination_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    writer = FileSink(str(target)).open("run1", incremental=False)
    writer.write([FULL])
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def test_watermark_per_campaign_and_a_committed_retry_reads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Exports that take no time: the watermark is the data's.
    monkeypatch.setattr(files, "_clock", lambda: 0.0, raising=False)
    sink = FileSink(str(tmp_path / "day1.csv"))
    assert sink.watermark("mobizon", ["42"]) is None
    writer = sink.open("run1", incremental=True)
    writer.write([FULL, BARE])
    writer.commit()
    assert sink.watermark("mobizon", ["42"]) == FULL.updated_at
    assert sink.watermark("mobizon", ["42", "43"]) is None  # 43 was never exported: export it all
    assert sink.watermark("bsg", ["42"]) is None
    # A retry of run1 (it committed, then failed) reads what run1 read: no watermark yet.
    assert sink.watermark("mobizon", ["42"], export_key="run1") is None
    later = DeliveryRecord(**{**{c: getattr(FULL, c) for c in COLUMNS},
                              "updated_at": dt.datetime(2026, 5, 2, tzinfo=UTC)})  # fmt: skip
    next_day = FileSink(str(tmp_path / "day2.csv"))
    writer = next_day.open("run2", incremental=True)
    writer.write([later])
    writer.commit()
    assert next_day.watermark("mobizon", ["42"]) == later.updated_at
    assert next_day.watermark("mobizon", ["42"], export_key="run2") == FULL.updated_at
    state = json.loads((tmp_path / SIDECAR).read_text())
    assert state["files"] == {f"file://{tmp_path}/day1.csv": "run1", f"file://{tmp_path}/day2.csv": "run2"}


def test_incremental_refuses_to_overwrite_another_runs_file(tmp_path: Path) -> None:
    sink = FileSink(str(tmp_path / "report.csv"))
    first = sink.open("run1", incremental=True)
    first.write([FULL])
    first.commit()
    with pytest.raises(exc.SmsValidationError, match="one file per run"):
        sink.open("run2", incremental=True)
    sink.open("run1", incremental=True).abort()  # its own retry may
    sink.open("run2", incremental=False).abort()  # a full export replaces the whole file anyway


def test_the_operator_drops_a_message_repeated_across_a_shifted_page() -> None:
    from airflow_sms_provider.operators.reports import _once

    def record(message_id: str) -> DeliveryRecord:
        return DeliveryRecord(**{**{c: getattr(FULL, c) for c in COLUMNS}, "message_id": message_id})

    ids = ["1", "2", "3", "3", "4", "2", "5"]  # page 2 starts with the last row of page 1 again
    assert [r.message_id for r in _once(map(record, ids))] == ["1", "2", "3", "4", "5"]
    assert [r.message_id for r in _once(map(record, ids), window=1)] == ["1", "2", "3", "4", "2", "5"]


def test_the_watermark_is_the_latest_time_read_minus_how_long_the_export_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Statuses that changed on pages already read are newer than the export's start, not than its last row."""
    now = [100.0]
    monkeypatch.setattr(files, "_clock", lambda: now[0], raising=False)
    sink = FileSink(str(tmp_path / "day1.csv"))
    writer = sink.open("run1", incremental=True)
    writer.write([FULL])
    now[0] += 90.5  # the export read for 90.5 seconds
    writer.commit()
    assert sink.watermark("mobizon", ["42"]) == FULL.updated_at - dt.timedelta(seconds=90.5)
