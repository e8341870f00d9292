"""Sandbox features for load: simulated latency, big campaigns' paging, background task memory, CLI config."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY, SandboxServer
from airflow_sms_provider.sandbox.server import _parse_args

from .conftest import Mobizon

QUERY = {"output": "json", "api": "v1", "apiKey": SANDBOX_MOBIZON_API_KEY}


@pytest.fixture(scope="module")
def slow_server() -> Iterator[SandboxServer]:
    with SandboxServer(clock_speed=0, latency_ms=60, connect_latency_ms=150) as srv:
        yield srv


def _timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    client.get(path, params=QUERY).raise_for_status()
    return time.perf_counter() - started


def test_latency_on_every_request_and_handshakes_on_new_connections(slow_server: SandboxServer) -> None:
    with httpx.Client(base_url=slow_server.url) as client:
        first = _timed(client, "/service/user/getOwnBalance")
        second = _timed(client, "/service/user/getOwnBalance")  # same keep-alive connection
        admin = _timed(client, "/_sandbox/health")
    with httpx.Client(base_url=slow_server.url) as other:
        new_connection = _timed(other, "/service/user/getOwnBalance")
    # Floors are what the sandbox promises; ceilings only compare requests of one run (a loaded machine
    # stretches every request, never shortens one).
    assert first >= 0.21 and new_connection >= 0.21
    assert second >= 0.06 and second < first and second < new_connection
    assert admin < second
    durations = [e["duration_ms"] for e in httpx.get(f"{slow_server.url}/_sandbox/requests").json()["items"]]
    # asyncio may wake a timer up to its clock resolution early (59.91 ms was seen): 1 ms of slack.
    assert len(durations) == 3 and min(durations) >= 59


def test_latency_is_run_time_config_and_reset_restores_it(admin: httpx.Client, mobizon: Mobizon) -> None:
    assert admin.post("/_sandbox/config", json={"latency_ms": -1}).status_code == 400
    assert admin.post("/_sandbox/config", json={"connect_latency_ms": "5"}).status_code == 400
    mobizon.configure(latency_ms=80)
    assert admin.get("/_sandbox/config").json()["latency_ms"] == 80
    assert _timed(admin, "/service/user/getOwnBalance") >= 0.08
    admin.post("/_sandbox/reset").raise_for_status()
    assert admin.get("/_sandbox/config").json()["latency_ms"] == 0
    assert _timed(admin, "/service/user/getOwnBalance") < 0.08


def test_cli_takes_latency_and_any_config_key() -> None:
    args = _parse_args(["--latency-ms", "5", "--connect-latency-ms", "10", "--set", "send_rate=1000",
                        "--set", "serving_domain=api.mobizon.kz"])  # fmt: skip
    assert (args.latency_ms, args.connect_latency_ms) == (5.0, 10.0)
    assert dict(args.set) == {"send_rate": 1000, "serving_domain": "api.mobizon.kz"}
    with pytest.raises(SystemExit):
        _parse_args(["--set", "novalue"])


def test_one_campaign_pages_are_slices_equal_to_the_general_listing(mobizon: Mobizon) -> None:
    numbers = [f"7701{i:07d}" for i in range(1, 261)]
    first = mobizon.campaign(numbers=numbers[:200])
    other = mobizon.campaign(numbers=["77019990001"])
    mobizon("campaign/addRecipients", {"id": first, "recipients": numbers[200:]})
    pages = []
    for page in range(3):
        fast = mobizon.ok("message/list", {"criteria": {"campaignIds": [first]},
                                           "pagination": {"currentPage": page, "pageSize": 100}})  # fmt: skip
        # Two campaigns take the general path: every message filtered, sorted, then sliced.
        general = mobizon.ok("message/list", {"criteria": {"campaignIds": [first, other]},
                                              "pagination": {"currentPage": page, "pageSize": 100}})  # fmt: skip
        general_items = [item for item in general["items"] if item["campaignId"] == str(first)]
        assert fast["totalItemCount"] == "260"
        pages.append(fast["items"])
        if page < 2:
            assert fast["items"] == general_items[: len(fast["items"])]
    assert [item["to"] for items in pages for item in items] == numbers


def test_one_campaign_pages_after_recipients_are_replaced(mobizon: Mobizon) -> None:
    """The page slices follow a replace (every message dropped, new ones added) like the general listing."""
    campaign_id = mobizon.campaign(numbers=[f"7701{i:07d}" for i in range(1, 151)])
    numbers = [f"7702{i:07d}" for i in range(1, 121)]
    mobizon.ok("campaign/addRecipients", {"id": campaign_id, "recipients": numbers, "params": {"replace": 1}})
    pages = [mobizon.ok("message/list", {"criteria": {"campaignIds": [campaign_id]},
                                         "pagination": {"currentPage": page, "pageSize": 100}})
             for page in range(3)]  # fmt: skip
    assert [page["totalItemCount"] for page in pages] == ["120"] * 3
    assert [item["to"] for page in pages for item in page["items"]] == numbers
    assert pages[2]["items"] == []


def _filtered_pages(mobizon: Mobizon, ids: list[int], bounds: dict[str, str], size: int) -> tuple[list[Any], str]:
    items, page, total = [], 0, ""
    while True:
        data = mobizon.ok("message/list", {"criteria": {"campaignIds": ids, **bounds},
                                           "pagination": {"currentPage": page, "pageSize": size}})  # fmt: skip
        items += data["items"]
        total = data["totalItemCount"]
        if len(data["items"]) < size:
            return items, total
        page += 1


@pytest.mark.parametrize("partial", [False, True], ids=["plain", "with-a-partial-message"])
def test_status_update_filtered_pages_equal_the_general_listing(mobizon: Mobizon, partial: bool) -> None:
    """statusUpdateTsFrom/To on one campaign: pages found by bisection, the same as every message filtered."""
    mobizon.configure(send_rate=10, delivery_delay=4, send_start_delay=1)
    # 77077...: DELETED at the final time; 77055... with a long text: PDLIVRD (the walk is kept then).
    numbers = [f"7701{i:07d}" for i in range(1, 230)] + [f"7707{i:07d}" for i in range(1, 20)]
    numbers += [f"7705{i:07d}" for i in range(1, 10)] if partial else []
    first = mobizon.campaign("x" * 200 if partial else "Hello", numbers=numbers)
    other = mobizon.campaign(numbers=["77019990001"])  # never sent: no statusUpdateTs, matches no bound
    mobizon.ok("campaign/send", {"id": first})
    sent = mobizon.now()
    checked = 0
    for after in (0, 1.5, 2.2, 9.7, 14, 31):
        mobizon.advance(after - (mobizon.now() - sent).total_seconds())
        now = mobizon.now()
        marks = [(now + timedelta(seconds=s)).strftime("%Y-%m-%d %H:%M:%S") for s in (-40, -20, -12, -7, -3, 0, 2)]
        for bounds in [{"statusUpdateTsFrom": m} for m in marks] + [{"statusUpdateTsTo": m} for m in marks[:4]] + [
            {"statusUpdateTsFrom": marks[1], "statusUpdateTsTo": marks[4]},
            {"statusUpdateTsFrom": marks[4], "statusUpdateTsTo": marks[1]},  # an empty window
        ]:
            for size in (25, 100):
                fast = _filtered_pages(mobizon, [first], bounds, size)
                general = _filtered_pages(mobizon, [first, other], bounds, size)  # two campaigns: the walk
                assert fast == general, (after, bounds, size)
                checked += len(fast[0])
    assert checked > 1000  # the windows were not all empty


def test_status_update_filtered_paging_builds_each_row_once(mobizon: Mobizon, monkeypatch: Any) -> None:
    """An incremental report of a big campaign: each page builds its own rows, not the whole campaign's."""
    from airflow_sms_provider.sandbox.mobizon.state import MobizonState

    mobizon.configure(send_rate=1000, delivery_delay=1)
    campaign_id = mobizon.campaign()
    for start in range(0, 3000, 500):
        numbers = [f"7701{i:07d}" for i in range(start + 1, start + 501)]
        mobizon.ok("campaign/addRecipients", {"id": campaign_id, "recipients": numbers})
    mobizon.ok("campaign/send", {"id": campaign_id})
    mobizon.advance(60)
    built = []
    original = MobizonState.message_row

    def counted(self: MobizonState, *args: Any, **kw: Any) -> dict[str, Any]:
        built.append(1)
        return original(self, *args, **kw)

    monkeypatch.setattr(MobizonState, "message_row", counted)
    since = (mobizon.now() - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S")
    items, total = _filtered_pages(mobizon, [campaign_id], {"statusUpdateTsFrom": since}, 100)
    assert total == "3000" and len(items) == 3000
    # The walk built every message's row for every page: 31 pages x 3,000 rows.
    assert len(built) == 3000


def test_background_task_releases_its_rows_but_reports_their_count(mobizon: Mobizon) -> None:
    mobizon.configure(task_rows_per_second=10**9)
    campaign_id = mobizon.campaign()
    content = "\n".join(f"7701{i:07d}" for i in range(1, 3001)).encode()
    task_id = mobizon("campaign/addRecipients", {"id": campaign_id},
                      files={"recipientsFile": ("a.csv", content, "text/csv")})["data"]  # fmt: skip
    mobizon.advance(5)
    assert mobizon.ok("taskqueue/getStatus", {"id": task_id})["status"] == 2
    state = mobizon.client.get("/_sandbox/mobizon/state", params={"messages": "0"}).json()
    (task,) = state["tasks"]
    assert task["rows"] == 3000 and state["campaigns"][0]["recipientsCount"] == 3000
    counters = mobizon.ok("campaign/getInfo", {"id": campaign_id})["counters"]
    assert counters["totalMsgNum"] == counters["totalNewMsgNum"] == "3000"


def test_form_parser_agrees_with_parse_qsl() -> None:
    import random
    from urllib.parse import parse_qsl

    from airflow_sms_provider.sandbox.mobizon import parse_form

    rng = random.Random(3)
    alphabet = ["a", "7", "%5B", "%5D", "%5b", "%20", "+", "=", "&", "%", "%E2%82%AC", "%zz", "[", "é"]
    for _ in range(2000):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert parse_form(body) == parse_qsl(body, keep_blank_values=True), body
