"""Extra links: the dashboard URL per provider and domain, what is pushed to XCom, and where links are declared."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import PokeReturnValue, TaskDeferred

from airflow_sms_provider import links
from airflow_sms_provider.get_provider_info import get_provider_info
from airflow_sms_provider.links import (
    LINK_CLASSES,
    BsgCampaignLink,
    MobizonCampaignLink,
    OgangiBroadcastLink,
    SmsCampaignLink,
    connection_dashboard_url,
    dashboard_url,
    persist_campaign_link,
)
from airflow_sms_provider.operators import bsg as bsg_ops
from airflow_sms_provider.operators import mobizon as mobizon_ops
from airflow_sms_provider.operators import ogangi as ogangi_ops
from airflow_sms_provider.operators.campaign import SmsCampaignOperator
from airflow_sms_provider.sensors.bsg import BsgCampaignSensor
from airflow_sms_provider.sensors.campaign import SmsCampaignSensor
from airflow_sms_provider.sensors.mobizon import MobizonCampaignSensor, MobizonTaskSensor
from airflow_sms_provider.sensors.ogangi import OgangiBroadcastSensor

SECRET = "topsecretKey0123456789abcdefghijklmnopqrs"


@pytest.mark.parametrize(
    ("conn_type", "api_base", "expected"),
    [
        ("mobizon", "https://api.mobizon.kz", "https://mobizon.kz/campaign/view/42"),
        ("mobizon", "https://api.mobizon.com.br", "https://mobizon.com.br/campaign/view/42"),
        ("mobizon", "https://api.mobizon.ua:8443", "https://mobizon.ua/campaign/view/42"),  # the dashboard's port
        ("mobizon", "https://sms-proxy.corp.example", None),  # a proxy: no known dashboard
        ("mobizon", "http://127.0.0.1:8765", "http://127.0.0.1:8765/_sandbox/mobizon/campaigns/42"),
        ("mobizon", "http://localhost:9000", "http://localhost:9000/_sandbox/mobizon/campaigns/42"),
        ("bsg", "https://one-api.bsg.world", "https://app.bsg.world/campaigns/42"),
        ("bsg", "https://bsg-proxy.corp.example/api", "https://app.bsg.world/campaigns/42"),
        ("bsg", "http://[::1]:8765", "http://[::1]:8765/_sandbox/bsg/campaigns/42"),
        ("ogangi", "https://customer.example.com/mmc", "https://customer.example.com/mmc/broadcasts/42"),
        ("ogangi", "https://mmc.example.com:8443", "https://mmc.example.com:8443/broadcasts/42"),
        ("ogangi", "http://127.0.0.1:8765/mmc", "http://127.0.0.1:8765/_sandbox/ogangi/campaigns/42"),
        ("http", "https://example.com", None),
    ],
)
def test_dashboard_url(conn_type: str, api_base: str, expected: str | None) -> None:
    assert dashboard_url(conn_type, api_base, 42) == expected


def test_user_info_in_a_host_never_reaches_the_link() -> None:
    for conn_type, base in [("mobizon", f"https://me:{SECRET}@api.mobizon.kz"),
                            ("ogangi", f"https://me:{SECRET}@customer.example.com/mmc"),
                            ("bsg", f"http://me:{SECRET}@127.0.0.1:8765")]:
        url = dashboard_url(conn_type, base, 7)
        assert url is not None and SECRET not in url and "me:" not in url


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        ({"conn_type": "mobizon", "host": "api.mobizon.kz", "password": SECRET},
         "https://mobizon.kz/campaign/view/5"),
        ({"conn_type": "bsg", "password": SECRET}, "https://app.bsg.world/campaigns/5"),  # empty Host: BSG's API
        ({"conn_type": "ogangi", "host": "https://customer.example.com/mmc/", "login": "peter", "password": SECRET,
          "extra": {"instance_id": 8, "public_key": "pub-key-0001"}},
         "https://customer.example.com/mmc/broadcasts/5"),
    ],
)
def test_connection_dashboard_url_uses_the_host_only(
    conn: dict[str, Any], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_LINKED", json.dumps(conn))
    url = connection_dashboard_url("linked", 5)
    assert url == expected
    assert SECRET not in url and "pub-key" not in url and "peter" not in url


class FakeTI:
    """What persist_campaign_link uses of the running task instance: its task and xcom_push."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, message: str, *args: Any) -> None:
        self.lines.append(message % args)


def mobizon_conn(monkeypatch: pytest.MonkeyPatch, host: str = "api.mobizon.kz") -> str:
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_LINK", json.dumps({"conn_type": "mobizon", "host": host,
                                                                "password": SECRET}))
    return "mobizon_link"


def test_persist_pushes_under_the_running_tasks_link_key(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = mobizon_conn(monkeypatch)
    op = MobizonCampaignSensor(task_id="wait", campaign_id=9, mobizon_conn_id=conn_id)
    ti = FakeTI(op)
    assert persist_campaign_link({"ti": ti}, conn_id, 9) == "https://mobizon.kz/campaign/view/9"
    assert ti.pushed == {"mobizon_campaign_link": "https://mobizon.kz/campaign/view/9"}


def test_a_provider_operator_inside_the_neutral_one_fills_the_neutral_link(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = mobizon_conn(monkeypatch)
    neutral = SmsCampaignOperator(task_id="send", conn_id=conn_id, text="Hi", recipients=["77011112201"])
    ti = FakeTI(neutral)
    persist_campaign_link({"ti": ti}, conn_id, {"campaign_ids": [3, 4]})
    assert ti.pushed == {"sms_campaign_link": "https://mobizon.kz/campaign/view/3"}  # the first campaign


def test_persist_never_fails_the_task(monkeypatch: pytest.MonkeyPatch) -> None:
    op = MobizonCampaignSensor(task_id="wait", campaign_id=9)
    log = Log()
    # An undefined connection, a bad id, no context: no link, no exception, no details in the log.
    assert persist_campaign_link({"ti": FakeTI(op)}, "nowhere", 9, log) is None
    conn_id = mobizon_conn(monkeypatch, host=f"https://me:{SECRET}@sms-proxy.corp.example")
    assert persist_campaign_link({"ti": FakeTI(op)}, conn_id, "not-an-id", log) is None
    assert persist_campaign_link(None, conn_id, 9, log) is None
    assert log.lines and not any(SECRET in line or "proxy" in line for line in log.lines)
    # A proxy Host: no known dashboard, nothing pushed.
    ti = FakeTI(op)
    assert persist_campaign_link({"ti": ti}, conn_id, 9, log) is None
    assert ti.pushed == {}


def test_a_task_without_campaign_links_reads_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_connection(*args: Any) -> None:
        raise AssertionError("the connection was read")

    monkeypatch.setattr(links, "connection_dashboard_url", no_connection)
    ti = FakeTI(MobizonTaskSensor(task_id="wait_upload", task_id_to_watch=1))
    assert persist_campaign_link({"ti": ti}, "mobizon_default", 9) is None
    assert ti.pushed == {}


def test_sensor_pushes_its_link_before_deferring(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = mobizon_conn(monkeypatch)
    sensor = MobizonCampaignSensor(task_id="wait", campaign_id=9, mobizon_conn_id=conn_id, deferrable=True)
    # Still running: the sensor defers.
    monkeypatch.setattr(sensor, "poke", lambda context: PokeReturnValue(is_done=False))
    ti = FakeTI(sensor)
    with pytest.raises(TaskDeferred):
        sensor.execute({"ti": ti})
    assert ti.pushed == {"mobizon_campaign_link": "https://mobizon.kz/campaign/view/9"}


@pytest.mark.parametrize("value", ["https://mobizon.kz/campaign/view/1", "http://127.0.0.1:1/_sandbox/bsg/campaigns/2"])
def test_get_link_returns_the_stored_url(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(links, "_read_xcom", lambda ti_key, key: value if key == "bsg_campaign_link" else None)
    assert BsgCampaignLink().get_link(None, ti_key=None) == value
    assert MobizonCampaignLink().get_link(None, ti_key=None) == ""


@pytest.mark.parametrize("value", [None, "", "javascript:alert(1)", 42, {"url": "https://x"}])
def test_get_link_shows_nothing_but_a_web_url(value: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(links, "_read_xcom", lambda ti_key, key: value)
    assert SmsCampaignLink().get_link(None, ti_key=None) == ""


def test_get_link_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ti_key: Any, key: str) -> None:
        raise RuntimeError("no XCom backend")

    monkeypatch.setattr(links, "_read_xcom", broken)
    assert OgangiBroadcastLink().get_link(None, ti_key=None) == ""


def test_links_are_registered_with_distinct_names_and_keys() -> None:
    registered = get_provider_info()["extra-links"]
    assert registered == [f"{cls.__module__}.{cls.__qualname__}" for cls in LINK_CLASSES]
    assert len({cls.name for cls in LINK_CLASSES}) == len({cls().xcom_key for cls in LINK_CLASSES}) == 4


@pytest.mark.parametrize(
    ("link", "classes"),
    [
        (MobizonCampaignLink, [mobizon_ops.MobizonCreateCampaignOperator, mobizon_ops.MobizonCampaignOperator,
                               mobizon_ops.MobizonAddRecipientsOperator, mobizon_ops.MobizonSendCampaignOperator,
                               mobizon_ops.MobizonCampaignStatsOperator, MobizonCampaignSensor]),
        (BsgCampaignLink, [bsg_ops.BsgBulkCampaignOperator, bsg_ops.BsgIndividualCampaignOperator,
                           bsg_ops.BsgGroupsCampaignOperator, bsg_ops.BsgStopCampaignOperator,
                           bsg_ops.BsgCampaignStatsOperator, BsgCampaignSensor]),
        (OgangiBroadcastLink, [ogangi_ops.OgangiCreateBroadcastOperator, ogangi_ops.OgangiSuspendBroadcastOperator,
                               ogangi_ops.OgangiResumeBroadcastOperator, ogangi_ops.OgangiStopBroadcastOperator,
                               ogangi_ops.OgangiBroadcastActionOperator, OgangiBroadcastSensor]),
        (SmsCampaignLink, [SmsCampaignOperator, SmsCampaignSensor]),
    ],
)
def test_campaign_operators_and_sensors_declare_their_link(link: type, classes: list[type]) -> None:
    for cls in classes:
        assert [type(each) for each in cls.operator_extra_links] == [link], cls.__name__


def test_no_link_where_there_is_no_campaign_page() -> None:
    for cls in (ogangi_ops.OgangiDeleteBroadcastOperator, ogangi_ops.OgangiSendSmsByFileOperator,
                mobizon_ops.MobizonDeleteCampaignOperator, MobizonTaskSensor):
        assert not cls.operator_extra_links, cls.__name__


class _FakeComms:
    """The task runner's channel to its supervisor: answers counts, records what was asked."""

    def __init__(self, count: int, value: Any = None) -> None:
        self.count, self.value, self.sent = count, value, []

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComCountResponse, XComResult

        self.sent.append(type(msg).__name__)
        if type(msg).__name__ == "GetXComCount":
            return XComCountResponse(len=self.count)
        return XComResult(key=msg.key, value=self.value)


def _ti_key() -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(dag_id="d", task_id="create_campaign", run_id="manual__1", map_index=-1)


def test_get_link_does_not_read_a_missing_xcom(monkeypatch: pytest.MonkeyPatch) -> None:
    """A task that failed before its campaign existed: no read, so no ``XCom not found`` error logged."""
    pytest.importorskip("airflow.sdk.execution_time.comms", reason="the supervisor protocol of Airflow >= 3.1")
    from airflow.sdk.execution_time import task_runner

    comms = _FakeComms(count=0)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    assert MobizonCampaignLink().get_link(None, ti_key=_ti_key()) == ""
    assert comms.sent == ["GetXComCount"]


def test_get_link_reads_an_existing_xcom_through_the_supervisor(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("airflow.sdk.execution_time.comms", reason="the supervisor protocol of Airflow >= 3.1")
    from airflow.sdk.execution_time import task_runner

    comms = _FakeComms(count=1, value="https://mobizon.kz/campaign/view/7")
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", comms, raising=False)
    assert MobizonCampaignLink().get_link(None, ti_key=_ti_key()) == "https://mobizon.kz/campaign/view/7"
    assert comms.sent == ["GetXComCount", "GetXCom"]
