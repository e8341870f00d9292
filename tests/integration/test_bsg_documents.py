"""BSG behaviours the documents fix and the project once guessed differently (issue 13).

Each test names the document line it follows; the choices are in docs/bsg.md.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.operators.bsg import BsgBulkCampaignOperator, BsgGroupsCampaignOperator
from airflow_sms_provider.protocols import bsg as proto
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from tests.helpers import DurableStore, sandbox_requests, set_clock


def bsg_state(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/_sandbox/bsg/state")
    response.raise_for_status()
    return response.json()


def sim_now(url: str) -> dt.datetime:
    return dt.datetime.fromisoformat(bsg_state(url)["now"])


def creations(url: str) -> int:
    return sum(r["path"].startswith("/api/campaigns/sms/") for r in sandbox_requests(url, "bsg"))


@pytest.fixture
def hook(bsg_conn: str, sandbox_url: str) -> Iterator[BsgHook]:
    set_clock(sandbox_url, speed=0)
    hook = BsgHook(bsg_conn)
    yield hook
    hook.close()


def context(store: DurableStore) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="dag", task_id="send", run_id="scheduled__1", map_index=-1)
    return {"ti": ti, "task_state_store": store}


# ------------------------------------------------------------------ send-groups placeholders


def test_groups_fill_numeric_field_ids_only(hook: BsgHook, sandbox_url: str) -> None:
    """Seed 003: "specify the identifier(s) of the contact field(s) in the form {field_id}"."""
    hook.send_groups([1864275], "Hi {12} from {13}", "Vet klinika")
    texts = [m["text"] for m in bsg_state(sandbox_url)["campaigns"][0]["messages"]]
    assert texts == ["Hi Olena from Kyiv", "Hi Taras from Lviv", "Hi Iryna from Odesa"]


def test_sandbox_leaves_named_placeholders_as_written(hook: BsgHook, sandbox_url: str) -> None:
    """What a real account would do with ``{name}``: nothing. The sandbox must not do better."""
    body = {"groups": [1864275], "sender": "Vet klinika", "text": "Hi {name}"}
    request = proto.Request("POST", "/api/campaigns/sms/send-groups", "raw", headers=proto._JSON_HEADERS,
                            content=json.dumps(body).encode(), idempotent=False)  # fmt: skip
    hook.call(request)
    assert {m["text"] for m in bsg_state(sandbox_url)["campaigns"][0]["messages"]} == {"Hi {name}"}


def test_hook_refuses_named_placeholders_before_sending(hook: BsgHook, sandbox_url: str) -> None:
    with pytest.raises(exc.SmsValidationError, match=r"\{name\}.*numeric contact-field ids"):
        hook.send_groups([1864275], "Hi {name}, code {12}", "Vet klinika")
    assert creations(sandbox_url) == 0


def test_groups_operator_refuses_named_placeholders_and_records_nothing(bsg_conn: str, sandbox_url: str) -> None:
    store = DurableStore()
    op = BsgGroupsCampaignOperator(task_id="g", groups=[1864275], text="Hi {name}", sender="Vet klinika")
    with pytest.raises(exc.SmsValidationError, match=r"\{name\}"):
        op.execute(context(store))
    assert creations(sandbox_url) == 0 and not store.values  # a fixed retry is not told "may exist"


# ------------------------------------------------------------------ start_at lateness


def test_start_at_a_few_minutes_late_means_now(hook: BsgHook, sandbox_url: str) -> None:
    late = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    hook.send_bulk(["380661231231"], "Hi", "Vet klinika", start_at=late)
    campaign = bsg_state(sandbox_url)["campaigns"][0]
    assert campaign["start_at"] is None  # sent without start_at: "now"


def test_start_at_later_than_the_lateness_is_refused_before_sending(hook: BsgHook, sandbox_url: str) -> None:
    late = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=proto.START_AT_LATENESS.total_seconds() / 60 + 1)
    with pytest.raises(exc.SmsValidationError, match="in the past"):
        hook.send_bulk(["380661231231"], "Hi", "Vet klinika", start_at=late)
    assert creations(sandbox_url) == 0


def test_scheduled_run_with_data_interval_end_sends_now_on_every_try(bsg_conn: str, sandbox_url: str) -> None:
    """The documented ``start_at="{{ data_interval_end }}"``: minutes old when the task starts."""
    interval_end = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=3)).isoformat()
    store = DurableStore()
    rows = [{"phone": str(380500000000 + i)} for i in range(4)]
    op = BsgBulkCampaignOperator(task_id="send", recipients=rows, text="Hi", sender="Vet klinika",
                                 start_at=interval_end, split=True, chunk_size=2)
    first = op.execute(context(store))
    assert first["start_at"] is None and len(first["campaign_ids"]) == 2
    # A later try (the window record says "now") is neither refused nor scheduled.
    again = op.execute(context(store))
    assert again["campaign_ids"] == first["campaign_ids"]
    assert [c["start_at"] for c in bsg_state(sandbox_url)["campaigns"]] == [None, None]


def test_lateness_is_configurable(bsg_conn: str, sandbox_url: str) -> None:
    start_at = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=3)).isoformat()
    op = BsgBulkCampaignOperator(task_id="send", recipients=[{"phone": "380661231231"}], text="Hi",
                                 sender="Vet klinika", start_at=start_at, start_at_lateness=1)
    with pytest.raises(exc.SmsValidationError, match="in the past"):
        op.execute(context(DurableStore()))
    assert creations(sandbox_url) == 0


# ------------------------------------------------------------------ uniqueItems


def test_send_bulk_refuses_the_same_phone_twice_in_one_request(hook: BsgHook, sandbox_url: str) -> None:
    """The spec: sms/send ``phones`` has ``uniqueItems``; two spellings of one number are one phone."""
    with pytest.raises(exc.SmsValidationError, match="380661231231 appears at positions 1 and 3"):
        hook.send_bulk(["380661231231", "380661231232", "+380 66 123 1231"], "Hi", "Vet klinika")
    assert creations(sandbox_url) == 0


def test_protocol_refuses_a_repeated_phone_whoever_built_the_list() -> None:
    with pytest.raises(exc.SmsValidationError, match="appears at positions 1 and 2"):
        proto.send_bulk([{"number": 380661231231}, {"number": 380661231231, "reference_id": "B"}], "Hi", "Vet")


# ------------------------------------------------------------------ messages list filters


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"filter[from]": "yesterday"}, "filterfrom"),
        ({"filter[to]": "2025-13-45 99:00:00"}, "filterto"),
        ({"filter[reference_id]": "not valid!"}, "filterreference_id"),
        ({"filter[id]": "0"}, "filterid"),
        ({"filter[status]": "delivered"}, "filterstatus"),
    ],
)
@pytest.mark.bsg_off_spec  # the filters are off-spec on purpose
def test_messages_list_refuses_invalid_filters(hook: BsgHook, params: dict[str, str], field: str) -> None:
    hook.send_bulk(["380661231231"], "Hi", "Vet klinika")
    request = proto.Request("GET", "/api/messages", "raw list", params=list(params.items()), headers=proto._ACCEPT)
    with pytest.raises(exc.SmsValidationError) as err:
        hook.call(request, proto.parse_page)
    assert field in err.value.details


def test_messages_list_valid_filters_still_filter(hook: BsgHook) -> None:
    hook.send_individual([{"phone": 380661231231, "text": "A", "sender": "Vet klinika", "reference_id": "Ref1"},
                          {"phone": 380661231232, "text": "B", "sender": "Vet klinika", "reference_id": "Ref2"}])
    request = proto.Request("GET", "/api/messages", "raw list", headers=proto._ACCEPT,
                            params=[("filter[reference_id]", "Ref2"), ("filter[from]", "2000-01-01 00:00:00")])
    page = hook.call(request, proto.parse_page)
    assert [m["reference_id"] for m in page["items"]] == ["Ref2"]


# ------------------------------------------------------------------ the account's time zone


def _zone_conn(sandbox_url: str, monkeypatch: pytest.MonkeyPatch, zone: str | None) -> str:
    extra: dict[str, Any] = {"retry_base_delay": 0.01, **({"timezone": zone} if zone else {})}
    conn = {"conn_type": "bsg", "host": sandbox_url, "password": SANDBOX_BSG_API_KEY, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_BSG_ZONED", json.dumps(conn))
    return "bsg_zoned"


def test_start_at_is_sent_in_the_accounts_zone(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An account that reads start_at as Almaty wall time (UTC+5) starts when it was asked to."""
    set_clock(sandbox_url, speed=0)
    httpx.post(f"{sandbox_url}/_sandbox/bsg/config", json={"account_timezone": "Asia/Almaty"}).raise_for_status()
    when = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)).replace(microsecond=0)
    hook = BsgHook(_zone_conn(sandbox_url, monkeypatch, "Asia/Almaty"))
    try:
        hook.send_bulk(["380661231231"], "Hi", "Vet klinika", start_at=when)
    finally:
        hook.close()
    campaign = bsg_state(sandbox_url)["campaigns"][0]
    assert dt.datetime.fromisoformat(campaign["start_at_utc"]) == when
    assert campaign["start_at"] == when.astimezone(dt.timezone(dt.timedelta(hours=5))).strftime("%Y-%m-%d %H:%M:%S")


def test_a_utc_connection_on_a_shifted_account_is_caught(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the extra prevents: UTC wall time read as Almaty time is five hours early (here: in the past)."""
    set_clock(sandbox_url, speed=0)
    httpx.post(f"{sandbox_url}/_sandbox/bsg/config", json={"account_timezone": "Asia/Almaty"}).raise_for_status()
    hook = BsgHook(_zone_conn(sandbox_url, monkeypatch, None))
    try:
        with pytest.raises(exc.SmsValidationError, match="past"):
            hook.send_bulk(["380661231231"], "Hi", "Vet klinika",
                           start_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2))
    finally:
        hook.close()


def test_bad_timezone_extra_is_named(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = BsgHook(_zone_conn(sandbox_url, monkeypatch, "Mars/Olympus"))
    with pytest.raises(exc.SmsValidationError, match="timezone='Mars/Olympus' is not an IANA time zone"):
        hook.send_bulk(["380661231231"], "Hi", "Vet klinika")
