"""The sandbox's BSG campaign calls the hooks do not use: price, the generic send, the list (issue 13).

BSG's SDK offers them (tests/contract/test_bsg_contract.py runs it); here each answer is
pinned byte for byte over loopback HTTP, and the suite-wide spec check (bsg_traffic)
judges every request and answer. Written from the spec's schemas, not from protocols/.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from tests.helpers import set_clock

INVALID = "The given data was invalid."
SMS_ONLY = {"message": INVALID, "errors": {"channels": ["The sandbox emulates the sms channel only."]}}


@pytest.fixture
def api(sandbox_url: str) -> Iterator[httpx.Client]:
    """A client logged in to the default account, on a stopped simulated clock."""
    set_clock(sandbox_url, speed=0)
    bearer = httpx.post(f"{sandbox_url}/api/auth/login", json={"api_key": SANDBOX_BSG_API_KEY}).json()["bearer"]
    with httpx.Client(base_url=sandbox_url, headers={"Authorization": f"Bearer {bearer}"}) as client:
        yield client


def state(api: httpx.Client) -> dict[str, Any]:
    return api.get("/_sandbox/bsg/state").json()


def now_ts(api: httpx.Client) -> str:
    return dt.datetime.fromisoformat(state(api)["now"]).strftime("%Y-%m-%d %H:%M:%S")


# ------------------------------------------------------------------ POST /api/campaigns/price


def test_price_counts_each_distinct_phone_and_charges_nothing(api: httpx.Client) -> None:
    # 380661239001 is both given and in list 1864276: priced once. 3 phones x 2 parts x 0.015.
    body = {"sender": "Vet klinika", "text": "x" * 161, "groups": [1864276],
            "messages": [{"phone": 38267161234}, {"phone": 380661239001}]}  # fmt: skip
    answer = api.post("/api/campaigns/price", json=body)
    assert (answer.status_code, answer.content) == (200, b'{"price":0.09,"currency":"USD"}')
    assert state(api)["campaigns"] == [] and state(api)["accounts"][0]["balance"] == 100.0


@pytest.mark.bsg_off_spec  # the too-long phone breaks the schema on purpose
def test_price_refuses_what_a_campaign_would_refuse(api: httpx.Client) -> None:
    answer = api.post("/api/campaigns/price", json={"sender": "Vet klinika", "text": "hello!",
                                                    "messages": [{"phone": 1234567890123456}]})  # fmt: skip
    assert answer.status_code == 422
    assert answer.json() == {
        "message": INVALID,
        "errors": {"messages0phone": ["This value is too long. It should have 15 characters or less."]},
    }  # the spec's example
    answer = api.post("/api/campaigns/price", json={"sender": "Vet klinika", "text": "hello!"})
    assert answer.json() == {"message": INVALID, "errors": {
        "messages": ["Give messages or groups: the recipients to price."]}}  # fmt: skip
    api.post("/_sandbox/bsg/config", json={"tariffs": [0]}).raise_for_status()
    answer = api.post("/api/campaigns/price", json={"sender": "Vet klinika", "text": "hello!", "tariff_code": 9,
                                                    "messages": [{"phone": 38267161234}]})  # fmt: skip
    assert (answer.status_code, answer.json()) == (422, {"message": "Tariff was not found", "errors": []})


# ------------------------------------------------------------------ POST /api/campaigns/send


def test_generic_send_one_campaign_for_phones_and_lists(api: httpx.Client) -> None:
    body = {"channels": ["sms"], "sms": {"sender": "Best Seller", "text": "Hi {12}"},
            "recipients": {"phones": [{"number": "380661231231", "reference_id": "Gen1"},
                                      {"number": "380661230001"}],
                           "groups": [1864275]}}  # fmt: skip
    answer = api.post("/api/campaigns/send", json=body)
    assert answer.status_code == 200
    created = now_ts(api)
    data = answer.json()["data"]
    assert data == {
        "id": data["id"], "name": f"SMS api campaign / {created}", "sender": "Best Seller", "status": "creation",
        "message_type": "sms", "start_at": data["start_at"], "real_start_at": None, "finished_at": None,
        "created_at": created, "statistics": {"delivered": 0, "sent": 0}, "calculated_price": 0.06,
        "currency": "USD", "alternative_channels": None,
    }  # fmt: skip
    (camp,) = state(api)["campaigns"]
    assert (camp["kind"], camp["groups"], camp["price"]) == ("campaign-send", [1864275], 0.06)
    # One message per phone (380661230001 given and listed); {12} is not filled: this call's
    # documents promise no placeholders (send-groups' do).
    assert [(m["phone"], m["reference_id"], m["text"]) for m in camp["messages"]] == [
        (380661231231, "Gen1", "Hi {12}"), (380661230001, None, "Hi {12}"),
        (380661230002, None, "Hi {12}"), (380661230013, None, "Hi {12}"),
    ]  # fmt: skip
    again = api.post("/api/campaigns/send", json={**body, "sms": {"sender": "Best Seller", "text": "Other"}})
    assert (again.status_code, again.json()) == (429, {"message": "Too many duplicate request detected"})


def test_generic_send_schedules_and_counts_as_a_creation(api: httpx.Client) -> None:
    start = dt.datetime.fromisoformat(state(api)["now"]) + dt.timedelta(hours=2)
    body = {
        "channels": ["sms"],
        "sms": {"sender": "supercredit", "text": "Later"},
        "validity": 24,
        "start_at": start.strftime("%Y-%m-%d %H:%M:%S"),
        "recipients": {"phones": [{"number": "380661231232"}]},
    }
    data = api.post("/api/campaigns/send", json=body).json()["data"]
    assert (data["status"], data["start_at"]) == ("scheduled", start.strftime("%Y-%m-%d %H:%M:%S"))
    assert state(api)["limits"]["creates"] == 1
    assert api.patch(f"/api/campaigns/{data['id']}/stop").json()["data"]["status"] == "stopped"


@pytest.mark.bsg_off_spec  # Phone.number is "type: string" in the schema
def test_generic_send_reads_a_bare_number_as_the_examples_write_it(api: httpx.Client) -> None:
    """The spec's own examples write ``number: 380661231231`` (a YAML integer): read as digits too."""
    body = {
        "channels": ["sms"],
        "sms": {"sender": "BSG", "text": "Hi"},
        "recipients": {"phones": [{"number": 380661231231}]},
    }
    assert api.post("/api/campaigns/send", json=body).status_code == 200
    assert state(api)["campaigns"][0]["messages"][0]["phone"] == 380661231231


@pytest.mark.bsg_off_spec  # some of these bodies break the schema on purpose
@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"channels": ["viber", "sms"]}, SMS_ONLY["errors"]),
        ({"channels": []}, {"channels": ["This collection should contain 1 to 2 elements."]}),
        ({"dry_run": True}, {"dry_run": ["The sandbox does not emulate dry runs."]}),
        ({"sms": {"sender": "BSG", "text": "Hi", "transliterate": True}},
         {"smstransliterate": ["The sandbox does not emulate transliterate."]}),
        ({"sms": {"sender": "BSG", "text": "LINK", "short_links": [{"link": "https://a.b/", "placeholder": "LINK"}]}},
         {"smsshort_links": ["The sandbox does not emulate short_links."]}),
        ({"recipients": {}}, {"recipients": ["Give recipients.phones or recipients.groups."]}),
        ({"recipients": {"phones": [{"number": "12345"}], "groups": [999]}},
         {"recipientsphones0number": ["This value is too short. It should have 9 characters or more."],
          "recipientsgroups0": ["Contact list not found."]}),
        ({"sms": {"sender": "X", "text": ""}},
         {"smssender": ["An alphanumeric sender name should have 3 to 11 Latin letters, digits, symbols or spaces."],
          "smstext": ["This value should not be blank."]}),
    ],
)  # fmt: skip
def test_generic_send_refuses_what_it_does_not_emulate(api: httpx.Client, change: dict[str, Any],
                                                       errors: dict[str, Any]) -> None:  # fmt: skip
    body = {"channels": ["sms"], "sms": {"sender": "BSG", "text": "Hi"},
            "recipients": {"phones": [{"number": "380661231231"}]}, **change}  # fmt: skip
    answer = api.post("/api/campaigns/send", json=body)
    assert (answer.status_code, answer.json()) == (422, {"message": INVALID, "errors": errors})
    assert state(api)["campaigns"] == []


@pytest.mark.parametrize("path", ["rcs/send", "rcs/send-groups", "viber/send", "whatsapp/send"])
def test_other_channels_are_refused_by_name_not_404(api: httpx.Client, path: str) -> None:
    body = {"phones": [{"number": "380661231231"}], "sender": "rcs_sender", "options": {"text": "Hi"}}
    if path == "rcs/send-groups":
        body = {"groups": [1864275], "sender": "rcs_sender", "options": {"text": "Hi"}}
    elif path == "viber/send":
        body = {"phones": [{"number": "380661231231"}], "sender": "BSG", "text": "Hi"}
    elif path == "whatsapp/send":
        body = {"phones": [{"number": "380661231231"}], "sender": "wa", "type": "template"}
    answer = api.post(f"/api/campaigns/{path}", json=body)
    assert (answer.status_code, answer.json()) == (422, SMS_ONLY)


# ------------------------------------------------------------------ GET /api/campaigns


def _send(api: httpx.Client, sender: str, number: int) -> int:
    answer = api.post("/api/campaigns/sms/send", json={"phones": [{"number": number}], "sender": sender, "text": "Hi"})
    answer.raise_for_status()
    return int(answer.json()["data"]["id"])


def test_campaign_list_pages_sorts_and_searches(api: httpx.Client, sandbox_url: str) -> None:
    first = _send(api, "Zeta", 380661231231)
    set_clock(sandbox_url, advance=60)
    second = _send(api, "Alpha", 380661231232)
    answer = api.get("/api/campaigns")
    assert answer.status_code == 200
    body = answer.json()
    assert [c["id"] for c in body["data"]] == [first, second]
    assert body["meta"] == {"page": {"limit": 50, "offset": 0, "total": 2}}
    # A listed campaign has no price: "price defined only as the response to create campaign or
    # calculate price requests".
    assert {(c["calculated_price"], c["currency"]) for c in body["data"]} == {(0, None)}
    assert api.get("/api/campaigns", params={"sort": "sender"}).json()["data"][0]["id"] == second
    assert [c["id"] for c in api.get("/api/campaigns", params={"sort": "date", "way": "desc"}).json()["data"]] == [
        second, first]  # fmt: skip
    page = api.get("/api/campaigns", params={"page[offset]": 1, "page[limit]": 30}).json()
    assert ([c["id"] for c in page["data"]], page["meta"]["page"]) == ([second], {"limit": 30, "offset": 1,
                                                                                  "total": 2})  # fmt: skip
    search = {"search[field]": "taskname", "search[value]": "sms API campaign"}
    assert len(api.get("/api/campaigns", params=search).json()["data"]) == 2
    search = {"search[field]": "sender", "search[value]": "ZET"}
    assert [c["id"] for c in api.get("/api/campaigns", params=search).json()["data"]] == [first]
    created_first = api.get(f"/api/campaigns/{first}").json()["data"]["created_at"]
    window = {"filter[from]": created_first, "filter[to]": created_first}
    assert [c["id"] for c in api.get("/api/campaigns", params=window).json()["data"]] == [first]
    assert api.get("/api/campaigns", params={"filter[type]": "whatsapp"}).json()["data"] == []


def test_campaign_list_shows_only_the_callers_campaigns(api: httpx.Client, sandbox_url: str) -> None:
    _send(api, "Mine", 380661231231)
    httpx.post(f"{sandbox_url}/_sandbox/bsg/accounts", json={"api_key": "live_other0000"}).raise_for_status()
    other = httpx.post(f"{sandbox_url}/api/auth/login", json={"api_key": "live_other0000"}).json()["bearer"]
    answer = httpx.get(f"{sandbox_url}/api/campaigns", headers={"Authorization": f"Bearer {other}"})
    assert answer.json() == {"data": [], "meta": {"page": {"limit": 50, "offset": 0, "total": 0}}}


@pytest.mark.bsg_off_spec  # values the parameters' schemas refuse, on purpose
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page[limit]": "15"}, "pagelimit"),  # the campaign list's minimum is 30 (the messages list's 15)
        ({"page[offset]": "-1"}, "pageoffset"),
        ({"sort": "phone"}, "sort"),
        ({"filter[type]": "viber"}, "filtertype"),
        ({"filter[status]": "done"}, "filterstatus"),
        ({"filter[from]": "yesterday"}, "filterfrom"),
        ({"search[field]": "sender"}, "searchvalue"),
        ({"search[field]": "text", "search[value]": "x"}, "searchfield"),
    ],
)
def test_campaign_list_refuses_invalid_criteria(api: httpx.Client, params: dict[str, str], field: str) -> None:
    """An unknown or invalid criterion is refused, not ignored (ignoring it lists everything)."""
    answer = api.get("/api/campaigns", params=params)
    assert answer.status_code == 422
    assert list(answer.json()["errors"]) == [field]


# ------------------------------------------------------------------ auth, folded once


@pytest.mark.bsg_off_spec  # an empty price body
def test_every_authenticated_call_and_refresh_count_a_refused_token(api: httpx.Client, sandbox_url: str) -> None:
    api.post("/_sandbox/bsg/revoke").raise_for_status()
    for method, path in [("GET", "/api/campaigns"), ("POST", "/api/campaigns/price"), ("POST", "/api/auth/refresh")]:
        answer = api.request(method, path, json={} if method == "POST" else None)
        assert (answer.status_code, answer.json()) == (401, {"code": 401, "message": "Invalid JWT Token"})
    assert state(api)["auth"]["unauthorized"] == 3
