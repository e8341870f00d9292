"""The sandbox framework: clock, request log, faults, admin API, server and CLI."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY, SandboxServer, SandboxState, create_app
from airflow_sms_provider.sandbox.clock import SimClock
from airflow_sms_provider.sandbox.server import _RedactAccessLog
from airflow_sms_provider.sandbox.state import redact_url

from .conftest import Mobizon

# ---------------------------------------------------------------- clock


def test_frozen_clock_moves_only_when_advanced() -> None:
    clock = SimClock(speed=0)
    start = clock.now()
    time.sleep(0.02)
    assert clock.now() == start and start.tzinfo is not None
    assert clock.advance(90) == start + timedelta(seconds=90)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_speed_scales_real_time_without_jumps() -> None:
    clock = SimClock(speed=1000)
    start = clock.now()
    time.sleep(0.05)
    elapsed = (clock.now() - start).total_seconds()
    assert 40 <= elapsed <= 1000  # 0.05 real s at x1000, generous upper bound for a slow machine
    before = clock.now()
    clock.set_speed(0)
    assert timedelta(0) <= clock.now() - before < timedelta(seconds=5)
    frozen = clock.now()
    time.sleep(0.02)
    assert clock.now() == frozen
    with pytest.raises(ValueError):
        clock.set_speed(-2)


def test_clock_reset_returns_to_real_time_and_default_speed() -> None:
    clock = SimClock(speed=0)
    clock.advance(86400)
    clock.set_speed(5)
    clock.reset()
    assert clock.speed == 0
    assert abs((clock.now() - datetime.now(clock.now().tzinfo)).total_seconds()) < 5


def test_clock_admin_endpoint(admin: httpx.Client) -> None:
    before = datetime.fromisoformat(admin.get("/_sandbox/clock").json()["now"])
    moved = admin.post("/_sandbox/clock", json={"advance": 3600, "speed": 0}).json()
    assert datetime.fromisoformat(moved["now"]) - before >= timedelta(seconds=3600)
    assert moved["speed"] == 0
    assert admin.post("/_sandbox/clock", json={"advance": -5}).status_code == 400
    assert admin.post("/_sandbox/clock", content=b"nope").status_code == 400


# ---------------------------------------------------------------- admin basics


def test_health(admin: httpx.Client) -> None:
    body = admin.get("/_sandbox/health").json()
    assert body["status"] == "ok" and "mobizon" in body["providers"]


def test_reset_forgets_state_faults_log_clock_and_config(mobizon: Mobizon, admin: httpx.Client) -> None:
    campaign_id = mobizon.campaign(numbers=["77011234567"])
    admin.post("/_sandbox/faults", json={"path": "nothing-matches", "action": "reset"}).raise_for_status()
    admin.post("/_sandbox/clock", json={"advance": 86400, "speed": 3}).raise_for_status()
    mobizon.configure(segment_price=99.0)
    admin.post("/_sandbox/reset").raise_for_status()
    assert admin.get("/_sandbox/mobizon/state").json()["campaigns"] == []
    assert mobizon("campaign/get", {"id": campaign_id})["code"] == 2
    assert admin.get("/_sandbox/faults").json()["faults"] == []
    clock = admin.get("/_sandbox/clock").json()
    assert clock["speed"] == 0 and clock["offset"] == 0
    assert admin.get("/_sandbox/config").json()["segment_price"] == 10.0
    # Only the get after the reset is logged.
    assert [e["path"] for e in admin.get("/_sandbox/requests").json()["items"]] == ["/service/campaign/get"]


def test_config_endpoint_rejects_unknown_keys(admin: httpx.Client) -> None:
    assert admin.post("/_sandbox/config", json={"no_such_key": 1}).status_code == 400
    assert admin.post("/_sandbox/config", json={"delivery_delay": 1}).json()["delivery_delay"] == 1


def test_create_app_rejects_unknown_config() -> None:
    with pytest.raises(TypeError, match="no_such_option"):
        create_app(no_such_option=1)


def test_state_registers_providers_for_reset_and_path_lookup() -> None:
    state = SandboxState({"log_limit": 3})
    create_app(state, clock_speed=0)
    assert state.provider_for("/service/campaign/get") == "mobizon"
    assert state.provider_for("/elsewhere") is None
    first = state.providers["mobizon"]
    state.reset()
    assert state.providers["mobizon"] is not first  # rebuilt from the registered factory
    for i in range(5):
        state.record({"path": f"/p{i}", "provider": None})
    assert [e["path"] for e in state.requests()] == ["/p2", "/p3", "/p4"]  # bounded, oldest dropped


def test_providers_cannot_share_config_keys() -> None:
    state = SandboxState()
    state.register("one", ("/one/",), lambda s: object(), {"one_speed": 1})
    with pytest.raises(ValueError, match="one_speed"):
        state.register("two", ("/two/",), lambda s: object(), {"one_speed": 2})
    with pytest.raises(ValueError, match="clock_speed"):
        state.register("three", ("/three/",), lambda s: object(), {"clock_speed": 2})


# ---------------------------------------------------------------- request log


def test_request_log_masks_the_api_key_and_lists_form_keys(mobizon: Mobizon, admin: httpx.Client) -> None:
    mobizon("campaign/create", {"data": {"text": "x", "name": "n"}})
    campaign_id = mobizon.campaign()
    mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": [{"recipient": "77011234567", "n": "a"}] * 3})
    items = admin.get("/_sandbox/requests", params={"provider": "mobizon"}).json()["items"]
    assert SANDBOX_MOBIZON_API_KEY not in str(items)
    create = items[0]
    assert create["method"] == "POST" and create["path"] == "/service/campaign/create"
    assert create["query"] == {"output": "json", "api": "v1", "apiKey": "***"}
    assert create["form_keys"] == ["data[name]", "data[text]"]
    assert (create["status"], create["code"], create["fault"], create["provider"]) == (200, 0, None, "mobizon")
    assert items[-1]["form_keys"] == ["id", "recipients[*][n]", "recipients[*][recipient]"]
    assert items[-1]["code"] == 98  # the envelope code: two of the three were duplicates
    assert [e["seq"] for e in items] == sorted(e["seq"] for e in items)
    assert admin.get("/_sandbox/requests", params={"provider": "bsg"}).json()["items"] == []


def test_admin_requests_are_not_logged(admin: httpx.Client) -> None:
    admin.get("/_sandbox/health")
    admin.get("/_sandbox/mobizon/state")
    assert admin.get("/_sandbox/requests").json()["count"] == 0


# ---------------------------------------------------------------- faults


def _faults(admin: httpx.Client, *rules: dict) -> list[dict]:
    resp = admin.post("/_sandbox/faults", json=list(rules))
    assert resp.status_code == 200, resp.text
    return resp.json()["added"]


def test_http_status_fault_with_skip_and_times(mobizon: Mobizon, admin: httpx.Client) -> None:
    _faults(admin, {"provider": "mobizon", "path": "user/getownbalance", "action": "http_status", "status": 503,
                    "skip": 1, "times": 2})  # fmt: skip
    url, q = "/service/user/getOwnBalance", {"output": "json", "api": "v1", "apiKey": SANDBOX_MOBIZON_API_KEY}
    statuses = [admin.get(url, params=q).status_code for _ in range(4)]
    assert statuses == [200, 503, 503, 200]
    rule = admin.get("/_sandbox/faults").json()["faults"][0]
    assert (rule["seen"], rule["hits"], rule["exhausted"]) == (3, 2, True)
    log = admin.get("/_sandbox/requests").json()["items"]
    assert [e["fault"] for e in log] == [None, rule["id"], rule["id"], None]


def test_http_status_fault_does_not_run_the_handler(mobizon: Mobizon, admin: httpx.Client) -> None:
    _faults(admin, {"path": "campaign/create", "action": "http_status", "status": 500, "body": {"oops": 1}})
    q = {"output": "json", "api": "v1", "apiKey": SANDBOX_MOBIZON_API_KEY}
    resp = admin.post("/service/campaign/create", params=q, data={"data[text]": "x"})
    assert (resp.status_code, resp.json()) == (500, {"oops": 1})
    assert admin.get("/_sandbox/mobizon/state").json()["campaigns"] == []


def test_reset_fault_drops_the_connection_before_the_handler(mobizon: Mobizon, admin: httpx.Client) -> None:
    _faults(admin, {"provider": "mobizon", "path": "campaign/create", "method": "POST", "action": "reset"})
    q = {"output": "json", "api": "v1", "apiKey": SANDBOX_MOBIZON_API_KEY}
    with pytest.raises(httpx.TransportError):
        admin.post("/service/campaign/create", params=q, data={"data[text]": "x"})
    assert admin.get("/_sandbox/mobizon/state").json()["campaigns"] == []
    entry = admin.get("/_sandbox/requests").json()["items"][0]
    assert (entry["outcome"], entry["status"]) == ("reset", None)
    assert mobizon("campaign/create", {"data": {"text": "x"}})["code"] == 0  # times=1: next one passes


def test_timeout_after_fault_acts_then_answers_too_late(mobizon: Mobizon, admin: httpx.Client) -> None:
    _faults(admin, {"path": "campaign/send", "action": "timeout_after", "seconds": 1.0})
    campaign_id = mobizon.campaign(numbers=["77011234567"])
    q = {"output": "json", "api": "v1", "apiKey": SANDBOX_MOBIZON_API_KEY}
    with pytest.raises(httpx.ReadTimeout):
        admin.post("/service/campaign/send", params=q, data={"id": campaign_id}, timeout=0.3)
    state = mobizon.campaign_state(campaign_id)
    assert state["sendCalls"] == 1 and state["status"] != "NEW"  # the server did send it


def settle(admin: httpx.Client) -> dict[str, Any]:
    """The request log once nothing is in flight: a held answer ends when it ends, a fixed pause (0.7 s
    for a 0.5 s hold) was too short on a loaded machine."""
    hung = time.monotonic() + 120  # a guard against a request that never ends, not a performance limit
    while (log := admin.get("/_sandbox/requests").json())["in_flight"]:
        assert time.monotonic() < hung, log
        time.sleep(0.02)
    return log


def test_a_request_held_across_a_reset_stays_out_of_the_new_log(mobizon: Mobizon, admin: httpx.Client) -> None:
    _faults(admin, {"path": "getownbalance", "action": "timeout_after", "seconds": 0.5})
    q = {"output": "json", "api": "v1", "apiKey": SANDBOX_MOBIZON_API_KEY}
    with pytest.raises(httpx.ReadTimeout):
        admin.get("/service/user/getOwnBalance", params=q, timeout=0.1)
    admin.post("/_sandbox/reset").raise_for_status()
    settle(admin)  # the held answer has gone out: the request would be logged by now
    assert mobizon.ok("user/getOwnBalance")
    assert [item["path"] for item in admin.get("/_sandbox/requests").json()["items"]] == [
        "/service/user/getOwnBalance"
    ]
    assert admin.get("/_sandbox/requests").json()["items"][0]["seq"] == 1


def test_a_held_answer_counts_as_in_flight_until_it_is_logged(mobizon: Mobizon, admin: httpx.Client) -> None:
    _faults(admin, {"path": "getownbalance", "action": "timeout_after", "seconds": 0.5})
    q = {"output": "json", "api": "v1", "apiKey": SANDBOX_MOBIZON_API_KEY}
    with pytest.raises(httpx.ReadTimeout):
        admin.get("/service/user/getOwnBalance", params=q, timeout=0.1)
    log = admin.get("/_sandbox/requests").json()
    assert (log["in_flight"], log["count"]) == (1, 0)
    log = settle(admin)
    assert (log["in_flight"], log["count"]) == (0, 1)


def test_clock_moves_to_a_given_instant_and_only_forward(admin: httpx.Client) -> None:
    moved = admin.post("/_sandbox/clock", json={"to": "2031-01-02T03:04:05+05:00"})
    assert moved.status_code == 200 and moved.json()["now"] == "2031-01-01T22:04:05+00:00"
    back = admin.post("/_sandbox/clock", json={"to": "2031-01-01T00:00:00+00:00"})
    assert back.status_code == 400 and "only moves forward" in back.json()["error"]
    for bad in ({"to": "2031-01-02T03:04:05"}, {"to": 5}, {"to": "2032-01-01T00:00:00+00:00", "advance": 1}):
        assert admin.post("/_sandbox/clock", json=bad).status_code == 400
    assert admin.get("/_sandbox/clock").json()["now"] == "2031-01-01T22:04:05+00:00"


def test_delay_fault_slows_then_runs_the_handler(mobizon: Mobizon, admin: httpx.Client) -> None:
    _faults(admin, {"path": "getownbalance", "action": "delay", "seconds": 0.3})
    started = time.perf_counter()
    assert mobizon.ok("user/getOwnBalance")["balance"] == "1000.0000"
    assert time.perf_counter() - started >= 0.3


def test_mobizon_code_fault(mobizon: Mobizon, admin: httpx.Client) -> None:
    _faults(admin, {"provider": "mobizon", "path": "campaign/create", "action": "mobizon_code", "code": 30,
                    "message": "slow down", "times": None})  # fmt: skip
    for _ in range(3):
        assert mobizon("campaign/create", {"data": {"text": "x"}}) == {"code": 30, "data": None, "message": "slow down"}
    assert admin.get("/_sandbox/mobizon/state").json()["campaigns"] == []
    assert admin.get("/_sandbox/faults").json()["faults"][0]["hits"] == 3
    assert admin.get("/_sandbox/requests").json()["items"][0]["code"] == 30
    admin.delete("/_sandbox/faults").raise_for_status()
    assert mobizon("campaign/create", {"data": {"text": "x"}})["code"] == 0


def test_rules_for_another_provider_or_method_do_not_hit(mobizon: Mobizon, admin: httpx.Client) -> None:
    _faults(admin, {"provider": "mobizon", "method": "POST", "action": "http_status"})
    assert admin.get("/_sandbox/health").status_code == 200  # admin paths are never faulted
    assert mobizon.ok("user/getOwnBalance")  # a GET
    assert admin.get("/_sandbox/faults").json()["faults"][0]["seen"] == 0


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "explode"},
        {"action": "reset", "provider": "nosuch"},
        {"action": "reset", "path": "("},
        {"action": "delay", "seconds": -1},
        {"action": "http_status", "status": 700},
        {"action": "reset", "times": -1},
        {"action": "reset", "colour": "red"},
        "not an object",
    ],
)
def test_invalid_rules_are_refused_whole(admin: httpx.Client, rule: object) -> None:
    resp = admin.post("/_sandbox/faults", json=[{"action": "reset"}, rule])
    assert resp.status_code == 400 and resp.json()["error"]
    assert admin.get("/_sandbox/faults").json()["faults"] == []


# ---------------------------------------------------------------- server and CLI


def test_server_picks_a_free_port_and_stops() -> None:
    with SandboxServer(clock_speed=0) as first, SandboxServer() as second:
        assert first.port != second.port and first.url == f"http://127.0.0.1:{first.port}"
        assert httpx.get(f"{second.url}/_sandbox/health").status_code == 200
        assert first.state.clock.speed == 0 and second.state.clock.speed == 1.0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{first.url}/_sandbox/health", timeout=2)


def test_server_can_share_a_prepared_state() -> None:
    state = SandboxState()
    with SandboxServer(state, taskqueue_min_interval=0) as server:
        assert server.state is state and state.config["taskqueue_min_interval"] == 0


def test_server_stops_when_garbage_collected() -> None:
    server = SandboxServer().start()
    url = server.url
    del server
    gc.collect()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/_sandbox/health", timeout=2)


def test_access_log_lines_are_redacted() -> None:
    assert redact_url("/service/x?output=json&apiKey=SECRET1234&id=5") == "/service/x?output=json&apiKey=***&id=5"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/a?APIKEY=abc", "1.1", 200),
        None,
    )
    assert _RedactAccessLog().filter(record)
    assert record.getMessage() == '1.2.3.4:5 - "GET /a?APIKEY=*** HTTP/1.1" 200'


def test_console_script_serves_until_interrupted(tmp_path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    code = "from airflow_sms_provider.sandbox.server import main; main(['--port', '0', '--speed', '0'])"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        url = first.split()[3]
        assert url.startswith("http://127.0.0.1:") and SANDBOX_MOBIZON_API_KEY in second
        deadline = time.monotonic() + 10
        while True:
            try:
                assert httpx.get(f"{url}/_sandbox/clock").json()["speed"] == 0
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the CLI sandbox did not answer"
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
