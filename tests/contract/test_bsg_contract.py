"""BSG against references the project did not write: the provider's OpenAPI spec and its SDK.

* The plugin :mod:`tests.contract.bsg_traffic` checks every BSG request and answer of the
  whole suite against the spec; the tests here prove it is loaded and not vacuous.
* A bounded schemathesis run generates requests from the spec for the SMS campaign calls
  and sends them to the sandbox: no 5xx, and every answer passes the same spec check.
* BSG's generated SDK (``bsg-sdk``, module ``bsg_api``) runs every campaign call it offers; its
  urllib3 traffic is fed to the same spec check. Its known slips (send-individual's integer
  ``start_at``, ``null`` for anyOf fields given as dicts) are asserted where they show.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from tests.contract import bsg_traffic
from tests.helpers import set_clock

IN_CI = os.environ.get("CI", "").lower() == "true"


def _require_spec() -> Any:
    api = bsg_traffic.api()
    if api is None:
        reason = f"BSG contract checks are off: {bsg_traffic.stats()['reason']}"
        if IN_CI:
            pytest.fail(reason + " (CI must run them: install the test extra, keep shared/ beside the clone)")
        pytest.skip(reason)
    return api


def test_every_bsg_exchange_of_the_suite_is_checked(bsg_conn: str, sandbox_url: str) -> None:
    _require_spec()
    before = bsg_traffic.stats()
    hook = BsgHook(bsg_conn)
    try:
        hook.send_bulk(["380661231231"], "Hi", "Vet klinika")
    finally:
        hook.close()
    after = bsg_traffic.stats()
    assert after["requests"] >= before["requests"] + 2  # login and the campaign
    assert after["responses"] >= before["responses"] + 2


def test_the_check_is_not_vacuous() -> None:
    """An off-spec request and an off-spec answer are both caught (then forgotten)."""
    _require_spec()
    bad = httpx.Request("POST", "http://127.0.0.1:1/api/campaigns/sms/send", json={"phones": [], "text": "x"},
                        headers={"Authorization": "Bearer t"})  # fmt: skip
    bsg_traffic._check_request(bad)
    answer = httpx.Response(200, json={"data": {"id": "not-an-integer"}}, request=bad)
    bsg_traffic._check_response(bad, answer, answer.content)
    with bsg_traffic._lock:
        found, bsg_traffic._violations[:] = list(bsg_traffic._violations), []
    assert any(v.startswith("request POST /api/campaigns/sms/send") for v in found)
    assert any(v.startswith("response POST /api/campaigns/sms/send") for v in found)


# ------------------------------------------------------------------ schemathesis

CAMPAIGN_PATHS = (
    r"^/api/(campaigns(/price|/send)?|campaigns/sms/send(-groups|-individual)?"
    r"|campaigns/\{id\}(/detail|/stop)?|messages)$"
)
OPERATIONS = 10  # the SMS campaign calls (price, generic send and list too) and the messages list
EXAMPLES_PER_OPERATION = 25  # 10 operations: under 300 requests, about a minute on a loaded machine


@pytest.fixture
def token(sandbox_url: str) -> Iterator[str]:
    set_clock(sandbox_url, speed=0)
    httpx.post(f"{sandbox_url}/_sandbox/bsg/config", json={"duplicate_window": 0}).raise_for_status()
    yield httpx.post(f"{sandbox_url}/api/auth/login", json={"api_key": SANDBOX_BSG_API_KEY}).json()["bearer"]


def _operations() -> list[Any]:
    schemathesis = pytest.importorskip("schemathesis")
    from tests.contract import bsg_openapi_overlay as overlay

    if overlay.spec_path() is None:
        return []
    schema = schemathesis.openapi.from_dict(overlay.patched_spec()).include(path_regex=CAMPAIGN_PATHS)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.bsg_off_spec  # schemathesis's requests are its own (empty filters…); the answers are judged
def test_schemathesis_finds_no_server_error_and_no_off_spec_answer(sandbox_url: str, token: str) -> None:
    _require_spec()
    from hypothesis import HealthCheck, given, settings

    operations = _operations()
    assert len(operations) == OPERATIONS, [op.label for op in operations]
    sent: list[int] = []
    for operation in operations:

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url=sandbox_url, headers={"Authorization": f"Bearer {token}"})
            response = httpx.request(kwargs["method"], kwargs["url"], params=kwargs.get("params"),
                                     headers=kwargs.get("headers"), json=kwargs.get("json"), timeout=10)  # fmt: skip
            sent.append(response.status_code)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: HTTP {response.status_code}"

        run()
    assert len(sent) >= OPERATIONS * 10  # every operation was exercised


# ------------------------------------------------------------------ the provider's SDK

# Every campaign call bsg-sdk offers (its Campaign* API classes), and what the sandbox does with it.
SDK_CAMPAIGN_CALLS = {
    "CampaignApi": ["campaign", "campaign_details", "campaign_price", "campaign_send", "campaign_stop", "campaigns"],
    "CampaignSMSApi": ["sms_send", "sms_send_groups", "sms_send_individual"],
    "CampaignRCSApi": ["rcs_send", "rcs_send_groups"],  # refused by name: the sandbox is SMS only
    "CampaignViberApi": ["viber_send"],
    "CampaignWhatsAppApi": ["post_campaigns_whatsapp_send"],
}


def _take_violations() -> list[str]:
    with bsg_traffic._lock:
        found, bsg_traffic._violations[:] = list(bsg_traffic._violations), []
    return found


@pytest.fixture
def sdk(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """(bsg_api, a logged-in ApiClient). The SDK speaks urllib3, not httpx: its exchanges are fed
    to the same spec check (bsg_traffic) here, so the SDK's traffic is judged like the hooks'."""
    bsg_api = pytest.importorskip("bsg_api", reason="bsg-sdk (the provider's generated SDK) is not installed")
    _require_spec()
    original = bsg_api.rest.RESTClientObject.request

    def checked(self: Any, method: str, url: str, headers: Any = None, body: Any = None, *args: Any,
                **kwargs: Any) -> Any:  # fmt: skip
        content = b"" if body is None else json.dumps(body).encode()
        request = httpx.Request(method, url, headers=dict(headers or {}), content=content)
        bsg_traffic._check_request(request)
        answer = original(self, method, url, headers, body, *args, **kwargs)
        data = answer.read()  # cached: the SDK reads the same bytes afterwards
        bsg_traffic._check_response(request, httpx.Response(answer.status, headers=dict(answer.getheaders()),
                                                            content=data, request=request), data)  # fmt: skip
        return answer

    monkeypatch.setattr(bsg_api.rest.RESTClientObject, "request", checked)
    set_clock(sandbox_url, speed=0)
    configuration = bsg_api.Configuration(host=sandbox_url)
    with bsg_api.ApiClient(configuration) as client:
        configuration.access_token = bsg_api.AuthApi(client).login({"api_key": SANDBOX_BSG_API_KEY}).bearer
        yield bsg_api, client


def test_the_sdk_offers_exactly_these_campaign_calls(sdk: tuple[Any, Any]) -> None:
    """The list the tests below cover is the SDK's whole list: a new SDK call fails here first."""
    bsg_api, client = sdk
    offered = {}
    for name in dir(bsg_api):
        if name.startswith("Campaign") and name.endswith("Api"):
            api = getattr(bsg_api, name)(client)
            offered[name] = sorted(
                call for call in dir(api) if not call.startswith("_") and call != "api_client"
                and not call.endswith(("_with_http_info", "_without_preload_content")) and callable(getattr(api, call))
            )  # fmt: skip
    assert offered == SDK_CAMPAIGN_CALLS


def test_the_sdk_sms_campaign_calls(sdk: tuple[Any, Any], sandbox_url: str) -> None:
    bsg_api, client = sdk
    sms = bsg_api.CampaignSMSApi(client)
    bulk = sms.sms_send({"phones": [{"number": 380661234567, "reference_id": "Sdk1"}], "sender": "BSG",
                         "text": "Hello from SDK"}).data  # fmt: skip
    assert (bulk.status.value, bulk.statistics.sent, bulk.calculated_price, bulk.currency) == ("creation", 0, 0.015,
                                                                                               "USD")  # fmt: skip
    tomorrow = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=1)
    groups = sms.sms_send_groups({"groups": [1864276], "sender": "BSG", "text": "Hi {12}", "start_at": tomorrow}).data
    assert (groups.status.value, groups.start_at) == ("scheduled", tomorrow.replace(tzinfo=None))
    assert bulk.id != groups.id
    assert _take_violations() == []
    # The SDK inherits the spec's slip: SmsSendIndividualRequest.start_at is "validity time in
    # hours. The default is 72 hours. Integer from 1 to 72" (default 72), so every call sends
    # "start_at": 72. The sandbox reads start_at as a date, as sms/send's schema and seed 003 do,
    # and refuses it; the spec check (overlay patch 4) flags the request too.
    with pytest.raises(bsg_api.exceptions.UnprocessableEntityException) as err:
        sms.sms_send_individual({"messages": [{"phone": 380661234568, "text": "One", "sender": "BSG"}]})
    assert json.loads(err.value.body) == {
        "message": "The given data was invalid.",
        "errors": {"start_at": ["This value is not a valid datetime."]},
    }
    flagged = _take_violations()
    assert len(flagged) == 1 and flagged[0].startswith("request POST /api/campaigns/sms/send-individual")
    assert "72" in flagged[0]
    kinds = [c["kind"] for c in httpx.get(f"{sandbox_url}/_sandbox/bsg/state").json()["campaigns"]]
    assert kinds == ["send", "send-groups"]  # the refused call created nothing


def test_the_sdk_campaign_calls(sdk: tuple[Any, Any], sandbox_url: str) -> None:
    bsg_api, client = sdk
    campaigns = bsg_api.CampaignApi(client)
    # Price: 3 distinct phones (one given twice across messages and list 1864276) x 1 part x 0.015.
    price = campaigns.campaign_price({"sender": "BSG", "text": "Hello", "groups": [1864276],
                                      "messages": [{"phone": 380661231231}, {"phone": 380661239001}]})  # fmt: skip
    assert (price.price, price.currency) == (0.045, "USD")
    with pytest.raises(bsg_api.exceptions.UnprocessableEntityException) as err:
        campaigns.campaign_price({"sender": "X", "text": "Hello", "messages": [{"phone": 380661231231}]})
    assert json.loads(err.value.body) == {"message": "The given data was invalid.", "errors": {"sender": [
        "An alphanumeric sender name should have 3 to 11 Latin letters, digits, symbols or spaces."]}}  # fmt: skip
    httpx.post(f"{sandbox_url}/_sandbox/bsg/config", json={"tariffs": [0]}).raise_for_status()
    with pytest.raises(bsg_api.exceptions.UnprocessableEntityException) as err:
        campaigns.campaign_price({"sender": "BSG", "text": "Hello", "messages": [{"phone": 380661231231}],
                                  "tariff_code": 9})  # fmt: skip
    assert json.loads(err.value.body) == {"message": "Tariff was not found", "errors": []}
    httpx.post(f"{sandbox_url}/_sandbox/bsg/config", json={"tariffs": list(range(10))}).raise_for_status()
    balance = bsg_api.BalanceApi(client).account_balance().data.balance
    assert balance == 100.0  # pricing charges nothing

    # The SDK's Recipients is an anyOf (phones or groups): given a plain dict, pydantic leaves it
    # None and the SDK sends "recipients": null (refused, and flagged by the spec check); from a
    # model built with from_dict it sends the phones. Both at once cannot be sent through it.
    generic = {"channels": ["sms"], "sms": {"sender": "BSG", "text": "Generic"},
               "recipients": {"phones": [{"number": "380661231231", "reference_id": "Gen1"}]}}  # fmt: skip
    with pytest.raises(bsg_api.exceptions.UnprocessableEntityException):
        campaigns.campaign_send(generic)
    flagged = _take_violations()
    assert len(flagged) == 1 and flagged[0].startswith("request POST /api/campaigns/send") and "None" in flagged[0]
    sent = campaigns.campaign_send(bsg_api.Campaign.from_dict(generic)).data
    assert (sent.status.value, sent.message_type.value, sent.calculated_price) == ("creation", "sms", 0.015)
    to_list = bsg_api.Campaign.from_dict({**generic, "recipients": {"groups": [1864275]}})
    listed_send = campaigns.campaign_send(to_list).data
    assert listed_send.calculated_price == 0.045
    assert bsg_api.BalanceApi(client).account_balance().data.balance == 99.94
    page = bsg_api.MessagesSMSApi(client).get_messages(filter_campaign_id=listed_send.id)
    assert [(m.phone, m.reference_id, m.text) for m in page.data] == [
        (380661230001, None, "Generic"), (380661230002, None, "Generic"), (380661230013, None, "Generic"),
    ]  # fmt: skip
    with pytest.raises(bsg_api.exceptions.UnprocessableEntityException) as err:
        campaigns.campaign_send(bsg_api.Campaign.from_dict({"channels": ["viber"], "viber": {"sender": "BSG",
                                "text": "Hi"}, "recipients": {"phones": [{"number": "380661231231"}]}}))  # fmt: skip
    assert json.loads(err.value.body)["errors"]["channels"] == ["The sandbox emulates the sms channel only."]

    tomorrow = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=1)
    later = bsg_api.CampaignSMSApi(client).sms_send({"phones": [{"number": 380661234567}], "sender": "Later",
                                                     "text": "Tomorrow", "start_at": tomorrow}).data  # fmt: skip
    assert campaigns.campaign(sent.id).data.id == sent.id
    assert campaigns.campaign_details(listed_send.id).data.total_phones == 3
    assert campaigns.campaign_stop(later.id).data.status.value == "stopped"
    listed = campaigns.campaigns(sort="sender", way="desc")
    assert [(c.id, c.sender, c.calculated_price) for c in listed.data] == [
        (later.id, "Later", 0),
        (listed_send.id, "BSG", 0),
        (sent.id, "BSG", 0),
    ]  # ties by id, same way
    assert (listed.meta.page.total, listed.meta.page.limit, listed.meta.page.offset) == (3, 50, 0)
    found = campaigns.campaigns(search_field="sender", search_value="lat", filter_type="sms")
    assert [c.id for c in found.data] == [later.id]
    assert campaigns.campaigns(filter_type="rcs").data == []
    assert [c.id for c in campaigns.campaigns(page_offset=1, page_limit=30).data] == [listed_send.id, later.id]
    assert _take_violations() == []


def test_the_sdk_other_channel_campaigns_are_refused_by_name(sdk: tuple[Any, Any], sandbox_url: str) -> None:
    """RCS, Viber and WhatsApp campaigns are not emulated: a 422 naming that, not a 404."""
    bsg_api, client = sdk
    phones = [{"number": "380661231231"}]
    rcs, groups = bsg_api.SendRcsCampaign, bsg_api.SendRcsCampaignGroups  # anyOf fields: models, not dicts
    calls = [
        lambda: bsg_api.CampaignRCSApi(client).rcs_send(rcs.from_dict({"phones": phones, "sender": "rcs_sender",
                                                                       "options": {"text": "Hi"}})),
        lambda: bsg_api.CampaignRCSApi(client).rcs_send_groups(groups.from_dict({"groups": [1864275],
                                                               "sender": "rcs_sender", "options": {"text": "Hi"}})),
        lambda: bsg_api.CampaignViberApi(client).viber_send({"phones": phones, "sender": "BSG", "text": "Hi"}),
        lambda: bsg_api.CampaignWhatsAppApi(client).post_campaigns_whatsapp_send(
            {"phones": phones, "sender": "wa_sender", "type": "template"}),  # a template dict crashes the SDK
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(bsg_api.exceptions.UnprocessableEntityException) as err:
            call()
        assert json.loads(err.value.body) == {
            "message": "The given data was invalid.",
            "errors": {"channels": ["The sandbox emulates the sms channel only."]},
        }
    assert httpx.get(f"{sandbox_url}/_sandbox/bsg/state").json()["campaigns"] == []
    # Another SDK slip the spec check sees: rcs_send_groups sends "alternative_channel": null.
    flagged = _take_violations()
    assert len(flagged) == 1 and flagged[0].startswith("request POST /api/campaigns/rcs/send-groups")
    assert "'alternative_channel': None" in flagged[0]


def test_the_sdk_reads_messages_balance_and_refreshes(sdk: tuple[Any, Any]) -> None:
    bsg_api, client = sdk
    bsg_api.CampaignSMSApi(client).sms_send({"phones": [{"number": 380661234567, "reference_id": "Sdk1"}],
                                             "sender": "BSG", "text": "Hello from SDK"})  # fmt: skip
    page = bsg_api.MessagesSMSApi(client).get_messages(filter_reference_id="Sdk1")
    assert page.data[0].phone == 380661234567 and page.meta.page.total == 1
    assert bsg_api.BalanceApi(client).account_balance().data.currency == "USD"
    assert bsg_api.AuthApi(client).refresh_token().bearer
    assert _take_violations() == []
