"""SmsDeliveryReportOperator run by Airflow (``dag.test()``) against the sandbox, one file per export."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import itertools
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pendulum
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.operators.reports import SmsDeliveryReportOperator, hashed_recipient
from airflow_sms_provider.redaction import redact_text
from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from tests.helpers import add_faults, run_dag, sandbox_requests, set_clock, task_states, xcom

_ids = itertools.count()
SALT = "pepper-0123456789-salt"


def report_dag(**operator_kwargs: Any) -> Any:
    from airflow.providers.common.compat.sdk import DAG

    with DAG(dag_id=f"delivery_report_{next(_ids)}", schedule=None,
             start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), params=operator_kwargs.pop("params", {})) as dag:
        SmsDeliveryReportOperator(task_id="report", **operator_kwargs)
    return run_dag(dag)


def mobizon_campaign(numbers: list[str]) -> int:
    hook = MobizonHook()
    campaign_id = hook.create_campaign("Sale")
    hook.add_recipients(campaign_id, numbers)
    hook.send_campaign(campaign_id)
    return campaign_id


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_mobizon_report_to_a_templated_csv_path(
    airflow_db: None, mobizon_conn: str, sandbox_url: str, tmp_path: Path
) -> None:
    set_clock(sandbox_url, speed=0)
    numbers = ["77010000013", "77010000066", "77010000099", "77010000001", "77010000002"]
    campaign_id = mobizon_campaign(numbers)
    set_clock(sandbox_url, advance=3600)
    run = report_dag(conn_id="{{ params.conn }}", campaign_ids="{{ params.campaign }}",
                     destination=str(tmp_path) + "/{{ params.folder }}/report.csv",
                     params={"conn": mobizon_conn, "campaign": campaign_id, "folder": "out"})  # fmt: skip
    assert str(run.state).endswith("success"), task_states(run)
    rows = read_csv(tmp_path / "out" / "report.csv")
    assert sorted(r["recipient"] for r in rows) == sorted(numbers)
    assert {r["campaign_id"] for r in rows} == {str(campaign_id)} and {r["provider"] for r in rows} == {"mobizon"}
    summary = xcom(run, "report")
    assert summary == {
        "provider": "mobizon", "conn_id": mobizon_conn, "campaign_ids": [campaign_id],
        "destination": f"file://{tmp_path}/out/report.csv (csv)", "rows": 5,
        "statuses": {"pending": 0, "delivered": 2, "undelivered": 2, "failed": 1},
        "incremental": False, "since": None, "hashed": False,
    }  # fmt: skip
    assert not any(number in json.dumps(summary) for number in numbers)


def test_bsg_report_as_jsonl_with_hashed_recipients(
    airflow_db: None, sandbox_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = {"conn_type": "bsg", "host": sandbox_url, "password": SANDBOX_BSG_API_KEY,
            "extra": {"retry_base_delay": 0.01, "report_salt_secret": SALT}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_BSG_REPORTS", json.dumps(conn))
    set_clock(sandbox_url, speed=0)
    hook = BsgHook("bsg_reports")
    phones = [f"3806612{i:05d}" for i in range(30)]
    campaign = hook.send_bulk(phones, "Hello", "Vet klinika")
    hook.close()
    set_clock(sandbox_url, advance=7200)
    run = report_dag(conn_id="bsg_reports", campaign_ids=[campaign["id"]], destination=f"file://{tmp_path}/r.data",
                     format="jsonl", hash_recipients=True, concurrency=2)  # fmt: skip
    assert str(run.state).endswith("success"), task_states(run)
    rows = [json.loads(line) for line in (tmp_path / "r.data").read_text().splitlines()]
    assert sorted(r["recipient"] for r in rows) == sorted(hashed_recipient(SALT, p) for p in phones)
    assert hashed_recipient(SALT, "+380661200001") == hashed_recipient(SALT, "380661200001")
    assert len(rows[0]["recipient"]) == 64
    summary = xcom(run, "report")
    assert summary["hashed"] is True and summary["rows"] == 30 and summary["provider"] == "bsg"
    assert sum(summary["statuses"].values()) == 30
    assert SALT not in redact_text(f"salt {SALT}")  # registered as a secret: masked in every log line


def test_ogangi_fails_with_the_reason_and_writes_nothing(
    airflow_db: None, ogangi_conn: str, sandbox_url: str, tmp_path: Path
) -> None:
    op = SmsDeliveryReportOperator(task_id="report", conn_id=ogangi_conn, campaign_ids=[1],
                                   destination=str(tmp_path / "r.csv"))  # fmt: skip
    with pytest.raises(exc.SmsNotSupportedError, match="no call that lists a broadcast's messages"):
        op.execute({"run_id": "manual"})
    assert list(tmp_path.iterdir()) == []
    run = report_dag(conn_id=ogangi_conn, campaign_ids=[1], destination=str(tmp_path / "r.csv"))
    assert task_states(run) == {"report": "failed"}  # SmsFatalError: no retry
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "field", "value_in_message"),
    [
        ({"campaign_ids": "12,abc"}, "campaign_ids", "'abc'"),
        ({"campaign_ids": []}, "campaign_ids", "empty"),
        ({"destination": None}, "destination", "neither"),
        ({"sql_conn_id": "warehouse", "table": "t"}, "destination", "both"),
        ({"destination": None, "table": "t"}, "sql_conn_id", "sql_conn_id is empty"),
        ({"format": "xml"}, "format", "'xml'"),
        ({"concurrency": 0}, "concurrency", "0"),
        ({"concurrency": 99}, "concurrency", "99"),
        ({"batch_size": 0}, "batch_size", "0"),
        ({"hash_recipients": True}, "report_salt_secret", "missing"),
        # Independent checks: each of these used to pass validation.
        ({"watermark_overlap": dt.timedelta(minutes=-5)}, "watermark_overlap", "zero or more"),
        ({"watermark_overlap": "10m"}, "watermark_overlap", "'10m'"),
        ({"destination": None, "sql_conn_id": "warehouse", "table": "t", "format": "csv"}, "format", "not to a SQL"),
        ({"destination": None, "sql_conn_id": "warehouse", "table": "t", "watermark_path": "/tmp/w.json"},
         "watermark_path", "not to a SQL"),
    ],
)
def test_bad_arguments_fail_before_any_request(
    mobizon_conn: str, sandbox_url: str, tmp_path: Path, kwargs: dict[str, Any], field: str, value_in_message: str
) -> None:
    arguments = {"conn_id": mobizon_conn, "campaign_ids": [5], "destination": str(tmp_path / "r.csv"), **kwargs}
    with pytest.raises(exc.SmsValidationError, match=value_in_message) as info:
        SmsDeliveryReportOperator(task_id="report", **arguments).execute({"run_id": "manual"})
    assert info.value.field == field  # type: ignore[attr-defined]
    assert sandbox_requests(sandbox_url, "mobizon") == []
    assert list(tmp_path.iterdir()) == []


def test_the_old_salt_extra_name_is_refused_before_any_request(
    sandbox_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``report_salt`` was shown by Airflow's UI and REST API (its name does not say secret): renamed."""
    conn = {"conn_type": "mobizon", "host": sandbox_url, "password": SANDBOX_MOBIZON_API_KEY,
            "extra": {"report_salt": SALT}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_MZ_OLD_SALT", json.dumps(conn))
    operator = SmsDeliveryReportOperator(task_id="report", conn_id="mz_old_salt", campaign_ids=[5],
                                         destination=str(tmp_path / "r.csv"), hash_recipients=True)  # fmt: skip
    with pytest.raises(exc.SmsValidationError, match="rename it 'report_salt_secret'") as info:
        operator.execute({"run_id": "manual"})
    assert info.value.field == "report_salt"  # type: ignore[attr-defined]
    assert SALT not in str(info.value)
    assert sandbox_requests(sandbox_url, "mobizon") == []
    assert list(tmp_path.iterdir()) == []


def test_incremental_exports_only_what_changed_since_the_last_one(
    bsg_conn: str, sandbox_url: str, tmp_path: Path
) -> None:
    set_clock(sandbox_url, speed=0)
    httpx.post(f"{sandbox_url}/_sandbox/bsg/config", json={"send_rate": 1, "delivery_delay": 5}).raise_for_status()
    hook = BsgHook(bsg_conn)
    phones = [f"3806612{i:05d}" for i in range(20, 40)]  # none ends in 13 or 66: all delivered in the end
    campaign = hook.send_bulk(phones, "Hello", "Vet klinika")
    hook.close()
    set_clock(sandbox_url, advance=12)  # some delivered, the rest sent or waiting

    def export(day: str, run_id: str) -> dict[str, Any]:
        op = SmsDeliveryReportOperator(task_id="report", conn_id=bsg_conn, campaign_ids=campaign["id"],
                                       destination=str(tmp_path / day / "report.csv"), incremental=True,
                                       watermark_overlap=dt.timedelta(0),
                                       watermark_path=str(tmp_path / "watermarks.json"))  # fmt: skip
        return op.execute({"run_id": run_id})

    first = export("day1", "run1")
    assert first["rows"] == 20 and first["since"] is None
    early = {r["message_id"] for r in read_csv(tmp_path / "day1" / "report.csv") if r["status"] == "delivered"}
    assert 0 < len(early) < 20
    set_clock(sandbox_url, advance=3600)
    second = export("day2", "run2")
    assert second["since"] is not None
    rows = read_csv(tmp_path / "day2" / "report.csv")
    # Every message delivered since the first export is there; those delivered before it are not
    # (one may share the watermark's second: the bound is inclusive).
    assert {r["status"] for r in rows} == {"delivered"}
    assert len(early & {r["message_id"] for r in rows}) <= 1
    assert {r["message_id"] for r in rows} | early == {r["message_id"] for r in read_csv(tmp_path / "day1" /
                                                                                         "report.csv")}
    # The retry of run2 reads the same watermark (not the one run2 itself set) and writes the same rows.
    again = export("day2", "run2")
    assert again["since"] == second["since"] and again["rows"] == second["rows"]
    with pytest.raises(exc.SmsValidationError, match="one file per run"):
        export("day2", "run3")


def test_registered_with_airflow_and_templated() -> None:
    from airflow_sms_provider.get_provider_info import get_provider_info

    modules = [m for entry in get_provider_info()["operators"] for m in entry["python-modules"]]
    assert "airflow_sms_provider.operators.reports" in modules
    assert {"conn_id", "campaign_ids", "destination", "table"} <= set(SmsDeliveryReportOperator.template_fields)


def test_a_retry_uses_the_bound_its_first_try_kept_in_durable_state(
    mobizon_conn: str, sandbox_url: str, tmp_path: Path
) -> None:
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    from tests.helpers import DurableStore

    set_clock(sandbox_url, speed=0)
    campaign_id = mobizon_campaign(["77010000001", "77010000002"])
    set_clock(sandbox_url, advance=3600)

    def export(run_id: str, watermarks: str, store: DurableStore | None = None) -> dict[str, Any]:
        op = SmsDeliveryReportOperator(
            task_id="report", conn_id=mobizon_conn, campaign_ids=[campaign_id], incremental=True,
            destination=ObjectStoragePath(f"file://{tmp_path}/{run_id}.jsonl"), watermark_path=watermarks,
        )  # fmt: skip
        return op.execute({"run_id": run_id, "task_state_store": store})

    assert export("run0", str(tmp_path / "w.json"))["since"] is None
    store = DurableStore()
    first = export("run1", str(tmp_path / "w.json"), store)
    assert first["since"] is not None and store.get("delivery_report") == {"since": first["since"]}
    # The retry's sink knows no watermark (another watermark file): the durable state still gives try 1's bound.
    retry = export("run1", str(tmp_path / "other.json"), store)
    assert retry["since"] == first["since"] and retry["rows"] == first["rows"] == 2
    assert export("run1", str(tmp_path / "other2.json"))["since"] is None  # without the store it would differ


def test_a_table_like_sink_without_zones_gets_a_utc_bound(
    mobizon_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[Any] = []

    class NaiveSink:  # what a SQL table may give back: a naive datetime, no export_key parameter
        def watermark(self, provider: str, campaign_ids: Any) -> dt.datetime:
            return dt.datetime(2026, 5, 1, 5, 0)

        def open(self, export_key: str, *, incremental: bool) -> Any:
            sink = self

            class Writer:
                def write(self, records: Any) -> None:
                    written.extend(records)

                def commit(self) -> int:
                    return len(written)

                def abort(self) -> None:
                    raise AssertionError(f"aborted {sink}")

            return Writer()

        def describe(self) -> str:
            return "table t"

    monkeypatch.setattr(SmsDeliveryReportOperator, "make_sink", lambda self: NaiveSink())
    campaign_id = mobizon_campaign(["77010000001"])
    op = SmsDeliveryReportOperator(task_id="report", conn_id=mobizon_conn, campaign_ids=campaign_id, table="t",
                                   sql_conn_id="warehouse", incremental=True)  # fmt: skip
    summary = op.execute({"run_id": "r"})
    assert summary["since"] == "2026-05-01T04:50:00+00:00" and summary["destination"] == "table t"
    assert len([r for r in sandbox_requests(sandbox_url, "mobizon") if r["path"].lower().endswith("message/list")]) == 1
    assert len(written) == summary["rows"]


def test_a_slow_destination_does_not_hold_up_the_page_reads(
    mobizon_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer runs behind the reader: while the first batch is still being written, the later pages
    are read. (Written in the reading thread, the first write would block every page after the first.)"""
    set_clock(sandbox_url, speed=0)
    campaign_id = mobizon_campaign([f"770100{i:05d}" for i in range(500)])  # five pages of 100
    lists_seen_by_first_write: list[int] = []
    written: list[Any] = []

    def lists() -> int:
        return len([r for r in sandbox_requests(sandbox_url, "mobizon") if r["path"].lower().endswith("message/list")])

    class SlowSink:
        def watermark(self, provider: str, campaign_ids: Any) -> None:
            return None

        def open(self, export_key: str, *, incremental: bool) -> Any:
            class Writer:
                def write(self, records: Any) -> None:
                    if not written:  # the first batch: wait (5 s at most) for the reader to get every page
                        deadline = time.monotonic() + 5
                        while lists() < 5 and time.monotonic() < deadline:
                            time.sleep(0.05)
                        lists_seen_by_first_write.append(lists())
                    written.extend(records)

                def commit(self) -> int:
                    return len(written)

                def abort(self) -> None:
                    raise AssertionError("aborted")

            return Writer()

        def describe(self) -> str:
            return "slow"

    monkeypatch.setattr(SmsDeliveryReportOperator, "make_sink", lambda self: SlowSink())
    op = SmsDeliveryReportOperator(task_id="report", conn_id=mobizon_conn, campaign_ids=campaign_id, table="t",
                                   sql_conn_id="warehouse", concurrency=1, batch_size=100)  # fmt: skip
    summary = op.execute({"run_id": "r"})
    assert lists_seen_by_first_write == [5], "page reads waited for the destination"
    # One number of these the sandbox rejects (its rules by last digits): 499 messages, still five pages.
    assert summary["rows"] == len({r.message_id for r in written}) == 499


# ------------------------------------------------------------ a hostile or mistaken world (independent checks)


def listed_item(campaign_id: int, message_id: Any, **fields: Any) -> dict[str, Any]:
    """One message/list item as Mobizon sends it (strings)."""
    return {"id": None if message_id is None else str(message_id), "campaignId": str(campaign_id), "segNum": "1",
            "segUserBuy": "2.5", "from": "Shop", "to": "77010000001", "text": "t", "status": "DELIVRD",
            "startSendTs": "2026-11-30 10:00:00", "statusUpdateTs": "2026-11-30 10:05:00", **fields}  # fmt: skip


def mobizon_pages(url: str, *pages: dict[str, Any], then: dict[str, Any] | None = None) -> None:
    """message/list answers ``pages`` one after another (then ``then`` for every later page)."""
    rules = [{"provider": "mobizon", "path": "message/list", "action": "mobizon_code", "code": 0, "data": page}
             for page in pages]  # fmt: skip
    if then is not None:
        rules.append({"provider": "mobizon", "path": "message/list", "action": "mobizon_code", "code": 0,
                      "data": then, "times": None})  # fmt: skip
    add_faults(url, *rules)


@pytest.mark.parametrize("provider", ["mobizon", "bsg", "another_account"])
def test_a_campaign_the_connection_cannot_see_fails_naming_it_and_the_connection(
    airflow_db: None, mobizon_conn: str, bsg_conn: str, sandbox_url: str, tmp_path: Path, provider: str
) -> None:
    """Unknown (or another account's) campaign ids used to export zero rows and succeed: a typo in
    campaign_ids went unnoticed, and a full table export of it would say the campaign has no messages."""
    conn, campaign_id = (bsg_conn if provider == "bsg" else mobizon_conn), 987654
    if provider == "another_account":
        httpx.post(f"{sandbox_url}/_sandbox/mobizon/accounts", json={"api_key": "other-account-key"}).raise_for_status()
        other_conn = json.dumps({"conn_type": "mobizon", "host": sandbox_url, "password": "other-account-key",
                                 "extra": {"retry_base_delay": 0.01}})
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AIRFLOW_CONN_OTHER_MOBIZON", other_conn)
            other = MobizonHook("other_mobizon")
            campaign_id = other.create_campaign("Theirs")
            other.add_recipients(campaign_id, ["77010000001"])
            other.send_campaign(campaign_id)
            other.close()
    run = report_dag(conn_id=conn, campaign_ids=[campaign_id], destination=str(tmp_path / "r.csv"))
    assert task_states(run) == {"report": "failed"}  # SmsNotFoundError: fatal, no retry
    assert list(tmp_path.iterdir()) == []
    op = SmsDeliveryReportOperator(task_id="report", conn_id=conn, campaign_ids=[campaign_id],
                                   destination=str(tmp_path / "r.csv"))  # fmt: skip
    with pytest.raises(exc.SmsNotFoundError, match=f"campaign {campaign_id} not found on connection '{conn}'"):
        op.execute({"run_id": "manual"})
    assert list(tmp_path.iterdir()) == []


def test_an_item_of_another_campaign_fails_and_leaves_the_table_as_it_was(
    airflow_db: None, mobizon_conn: str, sandbox_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing that slips in another campaign's message used to be written under that campaign's id; a full
    table export then replaced every row of that other campaign with the one stray message."""
    import sqlite3

    db = tmp_path / "w.db"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    set_clock(sandbox_url, speed=0)
    ours, theirs = mobizon_campaign(["77010000001", "77010000002"]), mobizon_campaign(["77010000003", "77010000004"])
    set_clock(sandbox_url, advance=3600)
    first = report_dag(conn_id=mobizon_conn, campaign_ids=[ours, theirs], sql_conn_id="warehouse", table="delivery",
                       create_table=True)  # fmt: skip
    assert str(first.state).endswith("success"), task_states(first)
    before = sorted(sqlite3.connect(db).execute("SELECT campaign_id, message_id, status FROM delivery"))
    assert len(before) == 4
    mobizon_pages(sandbox_url, {"items": [listed_item(ours, 1), listed_item(theirs, 999)], "totalItemCount": "2"})
    op = SmsDeliveryReportOperator(task_id="report", conn_id=mobizon_conn, campaign_ids=[ours],
                                   sql_conn_id="warehouse", table="delivery")  # fmt: skip
    with pytest.raises(exc.SmsProtocolError, match=f"campaign {ours} holds a message \\('999'\\) that is of campaign "
                                                    f"'{theirs}'; nothing of this export was written"):  # fmt: skip
        op.execute({"run_id": "manual"})
    assert sorted(sqlite3.connect(db).execute("SELECT campaign_id, message_id, status FROM delivery")) == before


@pytest.mark.parametrize("concurrency", [1, 3])
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("skipped", "200 message\\(s\\) were announced and 100 listed"),
        ("twice", "gave message '1' twice"),
        ("total_changed", "its total changed from 200 to 150"),
        ("no_id", "has no message id"),
        ("huge_parts", "has parts=99999999999999999999"),
        ("nan_cost", "has cost=NaN"),
    ],
)
def test_a_listing_that_does_not_add_up_fails_and_writes_nothing(
    mobizon_conn: str, sandbox_url: str, tmp_path: Path, fault: str, message: str, concurrency: int
) -> None:
    """Pages skipped, answered twice, a total changing mid-way, items without id or with numbers no
    destination holds: each used to pass (rows dropped, collapsed or written as 'None'), or to fail later with
    pyarrow's OverflowError. Now the export stops before committing and says what the provider did."""
    set_clock(sandbox_url, speed=0)
    cid = mobizon_campaign(["77010000001"])
    page0 = {"items": [listed_item(cid, i) for i in range(1, 101)], "totalItemCount": "200"}
    page1 = {"items": [listed_item(cid, i) for i in range(101, 201)], "totalItemCount": "200"}
    if fault == "skipped":
        mobizon_pages(sandbox_url, page0, then={"items": [], "totalItemCount": "200"})
    elif fault == "twice":
        mobizon_pages(sandbox_url, page0, page0)
    elif fault == "total_changed":
        mobizon_pages(sandbox_url, page0, {**page1, "totalItemCount": "150"})
    else:
        bad = {"no_id": {"id": None}, "huge_parts": {"segNum": "99999999999999999999"},
               "nan_cost": {"segUserBuy": "NaN"}}[fault]  # fmt: skip
        mobizon_pages(sandbox_url, page0, {**page1, "items": [*page1["items"][:99], {**page1["items"][99], **bad}]})
    op = SmsDeliveryReportOperator(task_id="report", conn_id=mobizon_conn, campaign_ids=[cid],
                                   destination=str(tmp_path / "r.parquet"), concurrency=concurrency)  # fmt: skip
    with pytest.raises(exc.SmsProtocolError, match=message):
        op.execute({"run_id": "manual"})
    assert list(tmp_path.iterdir()) == []


def test_a_bsg_page_answered_short_fails_the_export(bsg_conn: str, sandbox_url: str, tmp_path: Path) -> None:
    """BSG: a first page announcing 1,000 messages then an empty page used to export the 500 it had."""
    set_clock(sandbox_url, speed=0)
    hook = BsgHook(bsg_conn)
    campaign = hook.send_bulk([f"3806612{i:05d}" for i in range(3)], "Hello", "Vet klinika")
    real = hook.list_messages(campaign_id=campaign["id"])["items"][0]  # the shape BSG's OpenAPI spec gives
    hook.close()
    items = [{**real, "id": i} for i in range(1, 501)]
    add_faults(sandbox_url,
               {"provider": "bsg", "path": "api/messages", "action": "http_status", "status": 200,
                "body": {"data": items, "meta": {"page": {"total": 1000, "offset": 0, "limit": 500}}}},
               {"provider": "bsg", "path": "api/messages", "action": "http_status", "status": 200, "times": None,
                "body": {"data": [], "meta": {"page": {"total": 1000, "offset": 500, "limit": 500}}}})  # fmt: skip
    op = SmsDeliveryReportOperator(task_id="report", conn_id=bsg_conn, campaign_ids=[campaign["id"]],
                                   destination=str(tmp_path / "r.jsonl"), concurrency=2)  # fmt: skip
    with pytest.raises(exc.SmsProtocolError, match="1000 message\\(s\\) were announced and 500 listed"):
        op.execute({"run_id": "manual"})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("destination", ["csv", "table"])
def test_a_status_that_changes_while_the_export_reads_is_in_the_next_export(
    mobizon_conn: str, sandbox_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, destination: str
) -> None:
    """An export that takes a while: page 0 is read, then (while later pages are read) page 0's messages reach
    their final status, and later pages carry even later changes. The watermark used to be the latest
    updated_at read, which is after those changes: the next incremental export started after them and the
    report kept page 0's messages as pending for good. It is now at most the provider's clock when the export
    began (latest time read minus how long the export ran), with no overlap to hide behind."""
    import sqlite3

    from airflow_sms_provider.reports import files, sql

    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "w.db")}))
    set_clock(sandbox_url, speed=0)
    httpx.post(f"{sandbox_url}/_sandbox/config", json={"send_rate": 1, "delivery_delay": 1000}).raise_for_status()
    campaign_id = mobizon_campaign([f"770120{i:05d}" for i in range(1, 301)])  # three pages of 100
    set_clock(sandbox_url, advance=50)  # page 0: the first ~48 accepted, none final yet
    ran = [0.0]  # the export's clock runs with the provider's while the export "takes" 2,000 seconds
    for module in (files, sql):
        monkeypatch.setattr(module, "_clock", lambda: time.monotonic() + ran[0], raising=False)
    original = MobizonHook._list

    def slow_list(self: MobizonHook, module: str, criteria: Any, page: int, *args: Any, **kwargs: Any) -> Any:
        if page == 1 and not ran[0]:
            set_clock(sandbox_url, advance=2000)
            ran[0] = 2000.0
        return original(self, module, criteria, page, *args, **kwargs)

    monkeypatch.setattr(MobizonHook, "_list", slow_list)

    def export(name: str, run_id: str, **kwargs: Any) -> dict[str, str]:
        where = ({"sql_conn_id": "warehouse", "table": "delivery", "create_table": True} if name != "truth"
                 and destination == "table" else {"destination": str(tmp_path / name / "report.csv"),
                                                  "watermark_path": str(tmp_path / "marks.json")})  # fmt: skip
        SmsDeliveryReportOperator(task_id="report", conn_id=mobizon_conn, campaign_ids=campaign_id, concurrency=1,
                                  batch_size=100, **where, **kwargs).execute({"run_id": run_id})  # fmt: skip
        if "table" in where:
            with contextlib.closing(sqlite3.connect(tmp_path / "w.db")) as db:
                return dict(db.execute("SELECT message_id, provider_status FROM delivery"))
        return {r["message_id"]: r["provider_status"] for r in read_csv(tmp_path / name / "report.csv")}

    first = export("day1", "run1", incremental=True, watermark_overlap=dt.timedelta(0))
    assert len(first) == 300 and sum(word in ("NEW", "ENQUEUD", "ACCEPTD") for word in first.values()) >= 100
    second = export("day2", "run2", incremental=True, watermark_overlap=dt.timedelta(0))
    truth = export("truth", "full")  # every message as the provider has it now
    assert first | second == truth  # the newest file wins per message; a table holds the newest already


def test_a_table_name_from_a_template_is_checked_after_rendering_before_any_request(
    airflow_db: None, mobizon_conn: str, sandbox_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "w.db"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    run = report_dag(conn_id=mobizon_conn, campaign_ids=[5], sql_conn_id="{{ params.sql }}", table="{{ params.table }}",
                     create_table=True, params={"sql": "warehouse", "table": "t; DROP TABLE audience; --"})  # fmt: skip
    assert task_states(run) == {"report": "failed"}
    assert sandbox_requests(sandbox_url, "mobizon") == [] and not db.exists()
    # sql_conn_id is templated too (it was not: the connection '{{ params.sql }}' was looked up).
    set_clock(sandbox_url, speed=0)
    campaign_id = mobizon_campaign(["77010000001", "77010000002"])
    run = report_dag(conn_id=mobizon_conn, campaign_ids=[campaign_id], sql_conn_id="{{ params.sql }}",
                     table="{{ params.table }}", create_table=True, params={"sql": "warehouse", "table": "sms_t"})
    assert str(run.state).endswith("success"), task_states(run)
    assert xcom(run, "report")["destination"] == "table sms_t on connection warehouse"


@pytest.mark.parametrize("name", ["r.csv", "r.jsonl", "r.parquet"])
def test_a_text_that_is_not_unicode_fails_naming_the_message(
    mobizon_conn: str, sandbox_url: str, tmp_path: Path, name: str
) -> None:
    """JSON may carry "\\udc80" (bytes that were not UTF-8): the writer used to fail with a bare
    UnicodeEncodeError (CSV, JSON Lines) naming neither the campaign nor the message."""
    set_clock(sandbox_url, speed=0)
    cid = mobizon_campaign(["77010000001"])
    page = json.dumps({"code": 0, "message": "", "data": {"items": [listed_item(cid, 1), listed_item(cid, 2)],
                                                           "totalItemCount": "2"}})  # fmt: skip
    add_faults(sandbox_url, {"provider": "mobizon", "path": "message/list", "action": "http_status", "status": 200,
                             "body": page.replace('"status": "DELIVRD"', '"status": "DELIV\\udc80"', 1)})  # fmt: skip
    op = SmsDeliveryReportOperator(task_id="report", conn_id=mobizon_conn, campaign_ids=[cid],
                                   destination=str(tmp_path / name))  # fmt: skip
    with pytest.raises(exc.SmsProtocolError, match=f"campaign {cid} holds a message \\('1'\\) that has a text that is "
                                                   "not valid Unicode"):  # fmt: skip
        op.execute({"run_id": "manual"})
    assert list(tmp_path.iterdir()) == []
