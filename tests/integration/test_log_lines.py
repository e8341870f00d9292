"""What the task and triggerer logs say: a line per change, rejected rows and where they went, the statistics."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.hooks.ogangi import OgangiHook
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator
from airflow_sms_provider.operators.mobizon import MobizonAddRecipientsOperator, MobizonCampaignStatsOperator
from airflow_sms_provider.triggers.bsg import BsgCampaignsTrigger
from airflow_sms_provider.triggers.ogangi import OgangiBroadcastTrigger
from tests.helpers import set_clock


def context() -> dict[str, Any]:
    return {"ti": SimpleNamespace(dag_id="dag", task_id="task", run_id="manual__1", map_index=-1)}


FROZEN_POLLS = 5  # status reads answered with the clock frozen before it moves: repeats the log must not show


def run_until_event(trigger: Any, url: str, *, advance: float) -> dict[str, Any]:
    """Run ``trigger`` with the clock frozen until the sandbox has answered ``FROZEN_POLLS`` of its status
    reads, then move the clock so the wait ends.

    Counting the reads, not sleeping a fixed time: on a loaded machine the trigger's start (connection,
    login) outlasted a fixed pause, its first read already saw the end, and the log had one line.
    """

    async def main() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=url) as client:
            start = len((await client.get("/_sandbox/requests")).json()["items"])

            async def move_clock() -> None:
                while True:
                    items = (await client.get("/_sandbox/requests")).json()["items"][start:]
                    if sum(1 for item in items if item["method"] == "GET") >= FROZEN_POLLS:
                        break
                    await asyncio.sleep(0.02)
                (await client.post("/_sandbox/clock", json={"advance": advance})).raise_for_status()

            mover = asyncio.create_task(move_clock())
            async for event in trigger.run():
                if not mover.done():  # the wait cannot end with the clock frozen: say so, do not hang
                    mover.cancel()
                    raise AssertionError(f"the trigger ended before the clock moved: {event.payload}")
                await mover
                return event.payload
            raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(main(), timeout=120))


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Any:
    """The log so far: Airflow >= 3.1 renders task and trigger logs with structlog to stdout, 3.0 through logging."""
    caplog.set_level(logging.INFO)

    def text() -> str:
        return caplog.text + capsys.readouterr().out

    return text


def lines_like(log: str, *words: str) -> list[str]:
    return [line for line in log.splitlines() if all(w in line for w in words)]


def message(line: str) -> str:
    """The message of a rendered log line, without its time stamp and logger name."""
    found = re.search(r"\[\w+\s*\] (.*?)\s+\[[\w.]+\]", line)  # structlog's console form
    return found.group(1) if found else line.split(" ", 2)[-1]  # logging's "LEVEL name message"


def assert_one_line_per_change(lines: list[str]) -> None:
    messages = [message(line) for line in lines]
    assert len(messages) >= 2, messages  # waiting, then done
    assert len(set(messages)) == len(messages), messages


def test_bsg_trigger_logs_a_line_per_change_not_per_poll(
    bsg_conn: str, sandbox_url: str, logged: Any
) -> None:
    set_clock(sandbox_url, speed=0)
    ids = BsgBulkCampaignOperator(task_id="send", recipients=["380501230001"], text="Hi", sender="MyShop"
                                  ).execute(context())["campaign_ids"]  # fmt: skip
    trigger = BsgCampaignsTrigger(bsg_conn, ids, poll_interval=0.01)
    logged()
    event = run_until_event(trigger, sandbox_url, advance=60)
    assert event["status"] == "succeeded", event
    assert_one_line_per_change(lines_like(logged(), type(trigger).__name__))


def test_ogangi_trigger_logs_a_line_per_change_not_per_poll(
    ogangi_conn: str, sandbox_url: str, logged: Any
) -> None:
    set_clock(sandbox_url, speed=0)
    hook = OgangiHook(ogangi_conn)
    try:
        broadcast = hook.create_broadcast([{"number": "14155550100"}], text="Hi", shortcode="24365",
                                          campaign_name="logs")
    finally:
        hook.close()
    trigger = OgangiBroadcastTrigger(ogangi_conn, broadcast["id"], poll_interval=0.01)
    logged()
    event = run_until_event(trigger, sandbox_url, advance=60)
    assert event["status"] == "succeeded", event
    assert_one_line_per_change(lines_like(logged(), type(trigger).__name__))


def test_add_recipients_logs_the_rejected_rows_and_the_report(
    mobizon_conn: str, sandbox_url: str, tmp_path: Path, logged: Any
) -> None:
    hook = MobizonHook(mobizon_conn)
    campaign_id = hook.create_campaign(text="Hello", campaign_type=1)
    hook.close()
    report = tmp_path / "rejected.csv"
    op = MobizonAddRecipientsOperator(task_id="add", campaign_id=campaign_id, on_invalid="skip",
                                      recipients=["77011112201", "0701", "77011112202", "bad"],
                                      reject_report_path=str(report))  # fmt: skip
    op.execute(context())
    log = logged()
    lines = lines_like(log, "rejected before upload")  # one line; 3.0 shows it in caplog and on stdout
    expected = f"2 row(s) rejected before upload (rows 2, 4); every one written to {report}"
    assert lines and all(expected in line for line in lines), lines
    assert "0701" not in log  # numbers stay in the report, not the log
    assert report.exists()


def test_campaign_stats_logs_the_outcome(
    mobizon_conn: str, sandbox_url: str, logged: Any
) -> None:
    hook = MobizonHook(mobizon_conn)
    campaign_id = hook.create_campaign(text="Hello", campaign_type=1)
    hook.close()
    MobizonCampaignStatsOperator(task_id="stats", campaign_id=campaign_id).execute(context())
    assert f"Campaign {campaign_id}: NEW; 0 of 0 messages delivered" in logged()
