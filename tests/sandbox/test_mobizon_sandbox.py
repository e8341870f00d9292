"""The Mobizon emulation, method by method, over real HTTP (reference/mobizon/*.md)."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import httpx
import pytest

from airflow_sms_provider.sandbox import SANDBOX_MOBIZON_API_KEY
from airflow_sms_provider.sandbox.mobizon import fill_placeholders, php_parse, segments

from .conftest import Mobizon

OK_1, OK_2, OK_3 = "77011234567", "77011234568", "77011234569"
STOP = "77011230000"
UNKNOWN_OPERATOR = "99912345678"
UNDELIV, EXPIRED, REJECTD = "77011234513", "77011234566", "77011234599"


def ts(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


# ---------------------------------------------------------------- wire basics


def test_default_key_is_a_40_char_alphanumeric_constant() -> None:
    assert len(SANDBOX_MOBIZON_API_KEY) == 40 and SANDBOX_MOBIZON_API_KEY.isalnum()


def test_balance_of_the_default_account(mobizon: Mobizon) -> None:
    assert mobizon.ok("user/getOwnBalance") == {"balance": "1000.0000", "currency": "KZT"}


@pytest.mark.parametrize(
    ("path", "query", "code"),
    [
        ("user/getOwnBalance", {"apiKey": ""}, 8),
        ("user/getOwnBalance", {"apiKey": "x" * 40}, 8),
        ("nosuchmodule/get", {}, 4),
        ("campaign/nosuchmethod", {}, 5),
        ("user/getOwnBalance", {"output": "yaml"}, 6),
        ("user/getOwnBalance", {"output": "JSON"}, 6),
    ],
)
def test_request_errors_are_http_200_envelopes(mobizon: Mobizon, path: str, query: dict, code: int) -> None:
    body = mobizon(path, query=query)
    assert body["code"] == code and body["data"] is None and body["message"]


def test_xml_output_answers_the_three_fields_as_xml(mobizon: Mobizon) -> None:
    """``output=xml`` is one of the two documented formats ("XML or JSON at your choice")."""
    import xml.etree.ElementTree as ET

    q = {"output": "xml", "api": "v1", "apiKey": SANDBOX_MOBIZON_API_KEY}
    resp = mobizon.client.get("/service/user/getOwnBalance", params=q)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/xml")
    assert resp.content == (
        b"<?xml version='1.0' encoding='utf-8'?>\n<response><code>0</code><data><balance>1000.0000</balance>"
        b"<currency>KZT</currency></data><message /></response>"
    )
    form = "ids%5B0%5D=1&ids%5B1%5D=2"
    resp = mobizon.client.post("/service/message/getSMSStatus", params=q, content=form,
                               headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    root = ET.fromstring(resp.content)
    assert root.findtext("code") == "0" and list(root.find("data")) == []
    bad = ET.fromstring(mobizon.client.get("/service/nosuch/get", params=q).content)
    assert bad.findtext("code") == "4" and bad.find("data").text is None


def test_request_without_output_is_answered_in_json(mobizon: Mobizon) -> None:
    resp = mobizon.client.get("/service/user/getOwnBalance", params={"api": "v1", "apiKey": SANDBOX_MOBIZON_API_KEY})
    assert resp.json() == {"code": 0, "data": {"balance": "1000.0000", "currency": "KZT"}, "message": ""}


def test_module_and_method_are_case_insensitive(mobizon: Mobizon) -> None:
    assert mobizon.ok("USER/GETOWNBALANCE")["currency"] == "KZT"
    campaign_id = mobizon.campaign()
    assert mobizon.ok("Campaign/getInfo", {"id": campaign_id})["id"] == str(campaign_id)


def test_blocked_account_gets_14_and_foreign_domain_gets_13(mobizon: Mobizon, admin: httpx.Client) -> None:
    admin.post("/_sandbox/mobizon/accounts", json={"api_key": "blocked1", "blocked": True}).raise_for_status()
    admin.post("/_sandbox/mobizon/accounts", json={"api_key": "kz1", "domain": "api.mobizon.kz"}).raise_for_status()
    assert mobizon("user/getOwnBalance", api_key="blocked1")["code"] == 14
    wrong = mobizon("user/getOwnBalance", api_key="kz1")
    assert (wrong["code"], wrong["data"]) == (13, "api.mobizon.kz")
    mobizon.configure(serving_domain="api.mobizon.kz")  # now this sandbox plays the .kz server
    assert mobizon.ok("user/getOwnBalance", api_key="kz1")["balance"] == "1000.0000"


def test_accounts_only_see_their_own_campaigns(mobizon: Mobizon, admin: httpx.Client) -> None:
    admin.post("/_sandbox/mobizon/accounts", json={"api_key": "other1", "balance": 5}).raise_for_status()
    campaign_id = mobizon.campaign()
    assert mobizon("campaign/get", {"id": campaign_id}, api_key="other1")["code"] == 2
    assert mobizon.ok("user/getOwnBalance", api_key="other1")["balance"] == "5.0000"


def test_php_nested_keys_parse_like_php() -> None:
    pairs = [
        ("data[text]", "hi"),
        ("recipients[0][recipient]", "1"),
        ("recipients[0][name]", "A"),
        ("recipients[1][recipient]", "2"),
        ("ids[]", "5"),
        ("ids[]", "6"),
        ("sort[counters.totalCost]", "ASC"),
        ("a.b", "dot"),
        ("map[7]", "x"),
    ]
    assert php_parse(pairs) == {
        "data": {"text": "hi"},
        "recipients": [{"recipient": "1", "name": "A"}, {"recipient": "2"}],
        "ids": ["5", "6"],
        "sort": {"counters.totalCost": "ASC"},
        "a_b": "dot",
        "map": {7: "x"},
    }


def test_query_params_merge_with_the_body_and_the_body_wins(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign()
    other = mobizon.campaign("Other")
    # GET-style: everything in the query string.
    assert mobizon("campaign/get", query={"id": campaign_id})["data"]["id"] == str(campaign_id)
    # Both: the POST body overrides the query value.
    assert mobizon("campaign/get", {"id": other}, query={"id": campaign_id})["data"]["text"] == "Other"


# ---------------------------------------------------------------- campaign/create


def test_create_returns_an_integer_id_and_get_returns_strings(mobizon: Mobizon) -> None:
    campaign_id = mobizon.ok(
        "campaign/create",
        {"data": {"text": "Sale", "name": "Black Friday", "from": "Shop", "validity": 120, "rateLimit": 600,
                  "ratePeriod": 60}},
    )  # fmt: skip
    assert isinstance(campaign_id, int)
    got = mobizon.ok("campaign/get", {"id": campaign_id})
    assert got["id"] == str(campaign_id)
    assert (got["type"], got["name"], got["from"], got["text"]) == ("2", "Black Friday", "Shop", "Sale")
    assert (got["validity"], got["rateLimit"], got["ratePeriod"]) == ("120", "600", "60")
    assert (got["commonStatus"], got["moderationStatus"], got["isDeleted"], got["msgType"]) == (
        "NEW", None, "0", "SMS",
    )  # fmt: skip
    assert got["startSendTs"] is None and got["endSendTs"] is None


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "text"),
        ({"text": "  "}, "text"),
        ({"text": "x", "type": 4}, "type"),
        ({"text": "no placeholder", "type": 3}, "text"),
        ({"text": "x", "name": "n" * 256}, "name"),
        ({"text": "x", "from": "TwelveChars1"}, "from"),
        ({"text": "x", "from": "1234567890123456"}, "from"),
        ({"text": "x", "validity": 59}, "validity"),
        ({"text": "x", "validity": 1441}, "validity"),
        ({"text": "x", "rateLimit": 10, "ratePeriod": 30}, "ratePeriod"),
        ({"text": "x", "rateLimit": 10000, "ratePeriod": 60}, "rateLimit"),
        ({"text": "x", "mclass": 2}, "mclass"),
        ({"text": "x", "shortenLinks": 5}, "shortenLinks"),
        ({"text": "x", "deferredToTs": "2030-01-01T10:00:00"}, "deferredToTs"),
    ],
)
def test_create_validation_errors_name_the_field(mobizon: Mobizon, data: dict, field: str) -> None:
    body = mobizon("campaign/create", {"data": data} if data else {"other": 1})
    assert body["code"] == 1
    assert field in body["data"]


def test_deferred_time_must_be_between_one_hour_and_14_days_on_the_simulated_clock(mobizon: Mobizon) -> None:
    now = mobizon.now()
    for delta, ok in [(timedelta(minutes=59), False), (timedelta(hours=1, minutes=1), True),
                      (timedelta(days=13), True), (timedelta(days=14, minutes=1), False)]:  # fmt: skip
        body = mobizon("campaign/create", {"data": {"text": "x", "deferredToTs": ts(now + delta)}})
        assert (body["code"] == 0) is ok, (delta, body)
    mobizon.advance(3 * 24 * 3600)  # the window moves with the simulated clock
    body = mobizon("campaign/create", {"data": {"text": "x", "deferredToTs": ts(now + timedelta(days=16))}})
    assert body["code"] == 0


# ---------------------------------------------------------------- campaign/addRecipients


def test_add_recipients_reports_each_number(mobizon: Mobizon) -> None:
    mobizon.configure(restricted_prefixes=["380"])
    campaign_id = mobizon.campaign()
    numbers = ["+7 (701) 123-45-67", "", "12345", OK_1, STOP, "380971112233", UNKNOWN_OPERATOR, "07011234567"]
    body = mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": numbers})
    assert body["code"] == 98
    codes = [(item["recipient"], item["code"]) for item in body["data"]]
    assert codes == [(OK_1, 0), (None, 1), ("12345", 3), (OK_1, 4), (STOP, 5), ("380971112233", 6),
                     (UNKNOWN_OPERATOR, 7), ("07011234567", 3)]  # fmt: skip
    first = body["data"][0]
    assert first["number"] == "+7 (701) 123-45-67" and isinstance(first["messageId"], int)
    assert all(item["messageId"] is None for item in body["data"][1:])
    state = mobizon.campaign_state(campaign_id)
    assert list(state["recipients"]) == [OK_1]
    assert state["recipientsRejected"] == 7 and state["addRecipientsCalls"] == 1


def test_add_recipients_overall_codes_and_string_forms(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign()
    assert mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": f"{OK_1},{OK_2}\n{OK_3}"})["code"] == 0
    body = mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": [STOP, "1"]})
    assert body["code"] == 99 and [item["code"] for item in body["data"]] == [5, 3]
    assert sorted(mobizon.campaign_state(campaign_id)["recipients"]) == [OK_1, OK_2, OK_3]


def test_add_recipients_php_array_of_numbers_form(mobizon: Mobizon, admin: httpx.Client) -> None:
    campaign_id = mobizon.campaign()
    q = {"output": "json", "api": "v1", "apiKey": SANDBOX_MOBIZON_API_KEY}
    body = f"id={campaign_id}&recipients[]={OK_1}&recipients[]={OK_2}"
    resp = admin.post("/service/campaign/addRecipients", params=q, content=body,
                      headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert resp.json()["code"] == 0
    assert list(mobizon.campaign_state(campaign_id)["recipients"]) == [OK_1, OK_2]


def test_replace_removes_earlier_recipients(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign(numbers=[OK_1, OK_2])
    mobizon.ok("campaign/addRecipients", {"id": campaign_id, "recipients": [OK_3], "params": {"replace": 1}})
    assert list(mobizon.campaign_state(campaign_id)["recipients"]) == [OK_3]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"recipients": [OK_1], "recipientContacts": ["101"]},
        {"recipients": [OK_1], "recipientGroups": ["1"]},
    ],
)
def test_exactly_one_recipient_source_is_required(mobizon: Mobizon, params: dict) -> None:
    campaign_id = mobizon.campaign()
    assert mobizon("campaign/addRecipients", {"id": campaign_id, **params})["code"] == 12
    assert mobizon.campaign_state(campaign_id)["recipients"] == {}


def test_more_than_500_recipients_adds_nothing(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign()
    numbers = [f"7701{i:07d}" for i in range(1, 502)]
    assert mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": numbers})["code"] == 12
    assert mobizon.campaign_state(campaign_id)["recipients"] == {}
    assert mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": numbers[:500]})["code"] == 0
    assert len(mobizon.campaign_state(campaign_id)["recipients"]) == 500


def test_add_recipients_to_missing_or_sent_campaign(mobizon: Mobizon) -> None:
    assert mobizon("campaign/addRecipients", {"id": 999999, "recipients": [OK_1]})["code"] == 2
    campaign_id = mobizon.campaign(numbers=[OK_1])
    mobizon.ok("campaign/send", {"id": campaign_id})
    assert mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": [OK_2]})["code"] == 10


def test_template_campaign_fills_text_per_recipient(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign("Hi {name}, you owe {sum}", type=3)
    rows = [{"recipient": OK_1, "name": "Ann", "sum": "5"}, {"recipient": OK_2, "name": "Bob"}, {"name": "NoNumber"}]
    body = mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": rows})
    assert [item["code"] for item in body["data"]] == [0, 0, 2]
    recipients = mobizon.campaign_state(campaign_id)["recipients"]
    assert recipients[OK_1]["text"] == "Hi Ann, you owe 5"
    assert recipients[OK_2]["text"] == "Hi Bob, you owe {sum}"  # placeholdersFlag 1: left as is
    info = mobizon.ok("campaign/getInfo", {"id": campaign_id})
    assert info["text"] == "Hi Ann, you owe 5"  # getFilledTplCampaignText defaults to 1
    raw = mobizon.ok("campaign/getInfo", {"id": campaign_id, "getFilledTplCampaignText": 0})
    assert raw["text"] == "Hi {name}, you owe {sum}"


@pytest.mark.parametrize(("flag", "code", "text"), [(2, 0, "Hi Bob, you owe "), (3, 20, None)])
def test_placeholders_flag(mobizon: Mobizon, flag: int, code: int, text: str | None) -> None:
    campaign_id = mobizon.campaign("Hi {name}, you owe {sum}", type=3)
    body = mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": [{"recipient": OK_2, "name": "Bob"}],
                                              "params": {"placeholdersFlag": flag}})  # fmt: skip
    assert body["data"][0]["code"] == code
    recipients = mobizon.campaign_state(campaign_id)["recipients"]
    assert (recipients[OK_2]["text"] if text else recipients) == (text or {})


def test_fill_placeholders_unit() -> None:
    assert fill_placeholders("{a}-{b_c}-{d}", {"a": "1", "b_c": "2"}, 1) == "1-2-{d}"
    assert fill_placeholders("{a}-{d}", {"a": "1"}, 2) == "1-"
    assert fill_placeholders("{a}-{d}", {"a": "1"}, 3) is None


def test_contacts_are_added_synchronously(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign("Hello {name} from {city}", type=3)
    body = mobizon("campaign/addRecipients",
                   {"id": campaign_id, "recipientContacts": "101,102:mobile,101:work,999,105,101:fax"})  # fmt: skip
    assert body["code"] == 98
    assert [(item["contact"], item["code"]) for item in body["data"]] == [
        (101, 0), (102, 0), (101, 0), (999, 30), (105, 31), (101, 32),
    ]  # fmt: skip
    assert body["data"][3]["recipient"] is None
    recipients = mobizon.campaign_state(campaign_id)["recipients"]
    assert recipients["77010000101"]["text"] == "Hello Aigerim from Almaty"
    assert "77020000101" in recipients


def test_groups_import_in_the_background_on_the_simulated_clock(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign(numbers=[OK_1])
    body = mobizon("campaign/addRecipients", {"id": campaign_id, "recipientGroups": "1,2"})
    assert body["code"] == 100 and isinstance(body["data"], int)
    task_id = body["data"]
    status = mobizon.ok("taskqueue/getStatus", {"id": task_id})
    assert status["status"] in (0, 1) and status["progress"] < 100
    # The campaign is locked while the task runs.
    assert mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": [OK_2]})["code"] == 10
    assert mobizon("campaign/send", {"id": campaign_id})["code"] == 10
    mobizon.advance(1)
    assert mobizon.ok("taskqueue/getStatus", {"id": task_id}) == {"progress": 100, "status": 2}
    recipients = mobizon.campaign_state(campaign_id)["recipients"]
    # Card 103 is in both groups (added once); 105 has no mobile (skipped).
    assert sorted(recipients) == sorted([OK_1, "77010000101", "77010000102", "77010000103", "77010000104"])
    got = mobizon.ok("campaign/get", {"id": campaign_id})
    assert got["groups"] == "1,2"
    assert got["groupsList"][0] == {"id": "1", "name": "Sandbox customers", "cardsCnt": "3"}
    assert mobizon("campaign/addRecipients", {"id": campaign_id, "recipientGroups": [42]})["code"] == 1


def test_unknown_task_is_not_found(mobizon: Mobizon) -> None:
    assert mobizon("taskqueue/getStatus", {"id": 1})["code"] == 2


def test_polling_a_task_faster_than_the_limit_is_rate_limited(mobizon: Mobizon) -> None:
    mobizon.configure(taskqueue_min_interval=5.0)
    campaign_id = mobizon.campaign()
    task_id = mobizon("campaign/addRecipients", {"id": campaign_id, "recipientGroups": "1"})["data"]
    assert mobizon("taskqueue/getStatus", {"id": task_id})["code"] == 0
    assert mobizon("taskqueue/getStatus", {"id": task_id})["code"] == 30


def _upload(mobizon: Mobizon, campaign_id: int, content: bytes, name: str = "r.csv", **params: object) -> dict:
    files = {"recipientsFile": (name, content, "application/octet-stream")}
    return mobizon("campaign/addRecipients", {"id": campaign_id, "params": params}, files=files)


def test_csv_file_progress_follows_the_clock(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign()
    numbers = [f"7702{i:07d}" for i in range(1, 2501)]
    body = _upload(mobizon, campaign_id, ("phone\n" + "\n".join(numbers)).encode(), recipientsFileSkipHeader=1)
    assert body["code"] == 100
    mobizon.advance(1)  # 1000 rows per simulated second: 2500 rows take 2.5 s
    assert mobizon.ok("taskqueue/getStatus", {"id": body["data"]}) == {"progress": 40, "status": 1}
    assert mobizon.campaign_state(campaign_id)["recipients"] == {}
    mobizon.advance(1.5)
    assert mobizon.ok("taskqueue/getStatus", {"id": body["data"]}) == {"progress": 100, "status": 2}
    assert len(mobizon.campaign_state(campaign_id)["recipients"]) == 2500
    brief = mobizon.client.get("/_sandbox/mobizon/state", params={"campaign": campaign_id, "messages": 0}).json()
    assert brief["campaigns"][0]["recipientsCount"] == 2500 and brief["campaigns"][0]["messages"] == []


def test_template_csv_with_options(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign("Dear {name}, code {code}", type=3)
    zhanna = "\u0416\u0430\u043d\u043d\u0430"  # a Cyrillic name, only in cp1251 here
    content = f"name;recipient;code\n'Smith; John';{OK_1};A1\n{zhanna};{OK_2};B2\n".encode("cp1251")
    body = _upload(mobizon, campaign_id, content, recipientsFileDelimiter=";", recipientsFileEncoding="WINDOWS-1251")
    assert body["code"] == 100
    mobizon.advance(1)
    recipients = mobizon.campaign_state(campaign_id)["recipients"]
    assert recipients[OK_1]["text"] == "Dear Smith; John, code A1"
    assert recipients[OK_2]["text"] == f"Dear {zhanna}, code B2"


@pytest.mark.parametrize(
    ("header", "problem"), [("name,phone", "no 'recipient' column"), ("recipient,name,name", "duplicate")]
)
def test_template_csv_header_problems_answer_code_1(mobizon: Mobizon, header: str, problem: str) -> None:
    campaign_id = mobizon.campaign("Dear {name}", type=3)
    body = _upload(mobizon, campaign_id, f"{header}\n{OK_1},x,y\n".encode())
    assert body["code"] == 1 and problem in body["data"]["recipientsFile"]


def test_undecodable_file_ends_the_task_rejected(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign()
    body = _upload(mobizon, campaign_id, b"\xff\xfe\xfa" + OK_1.encode(), recipientsFileEncoding="ASCII")
    assert body["code"] == 100
    mobizon.advance(1)
    assert mobizon.ok("taskqueue/getStatus", {"id": body["data"]})["status"] == 3
    assert mobizon.campaign_state(campaign_id)["recipients"] == {}


def _xls(*rows: list) -> bytes:
    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook()
    sheet = book.add_sheet("r")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_xls_file_is_read_as_documented(mobizon: Mobizon) -> None:
    # "CSV or Excel (only XLS)": a number typed into Excel is a float cell.
    campaign_id = mobizon.campaign()
    assert _upload(mobizon, campaign_id, _xls([float(OK_1)], [OK_2]), name="r.xls")["code"] == 100
    mobizon.advance(1)
    assert sorted(mobizon.campaign_state(campaign_id)["recipients"]) == [OK_1, OK_2]
    template = mobizon.campaign("Hi {name}", type=3)
    assert _upload(mobizon, template, _xls(["recipient", "name"], [OK_3, "Aida"]), name="T.XLS")["code"] == 100
    mobizon.advance(1)
    assert mobizon.campaign_state(template)["recipients"][OK_3]["text"] == "Hi Aida"


@pytest.mark.parametrize(
    ("name", "content"),
    [("r.xlsx", b"PK\x03\x04" + b"\0" * 60), ("r.txt", OK_1.encode()), ("r.ods", b"PK\x03\x04"), ("r", b"PK\x03\x04")],
)
def test_formats_the_documents_do_not_allow_answer_code_1(mobizon: Mobizon, name: str, content: bytes) -> None:
    body = _upload(mobizon, mobizon.campaign(), content, name=name)
    assert body["code"] == 1 and "CSV or Excel (only XLS)" in body["data"]["recipientsFile"]


def test_damaged_xls_ends_the_task_rejected(mobizon: Mobizon) -> None:
    body = _upload(mobizon, mobizon.campaign(), b"\xd0\xcf\x11\xe0" + b"\0" * 100, name="r.xls")
    assert body["code"] == 100
    mobizon.advance(1)
    assert mobizon.ok("taskqueue/getStatus", {"id": body["data"]})["status"] == 3


def test_counters_take_in_an_import_progressively(mobizon: Mobizon) -> None:
    # totalMsgNum is "updated during the processing (before sending)": not at once.
    mobizon.configure(counters_delay=10)
    campaign_id = mobizon.campaign()
    numbers = [f"7702{i:07d}" for i in range(1, 101)]
    assert _upload(mobizon, campaign_id, "\n".join(numbers).encode())["code"] == 100

    def total() -> int:
        return int(mobizon.ok("campaign/getInfo", {"id": campaign_id})["counters"]["totalMsgNum"])

    mobizon.advance(1)  # the task is done: the messages exist, the counter has not seen them
    assert mobizon.ok("message/list", {"criteria": {"campaignIds": [campaign_id]}})["totalItemCount"] == "100"
    assert total() == 0
    mobizon.advance(5)
    assert total() == 50
    mobizon.advance(5)
    assert total() == 100


def test_concurrent_add_recipients_on_one_campaign_is_locked(mobizon: Mobizon, server) -> None:
    mobizon.configure(add_recipients_hold=0.5)
    campaign_id = mobizon.campaign()
    codes: list[int] = []

    def add(number: str) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            codes.append(Mobizon(client)("campaign/addRecipients", {"id": campaign_id, "recipients": [number]})["code"])

    threads = [threading.Thread(target=add, args=(n,)) for n in (OK_1, OK_2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [0, 10]
    assert len(mobizon.campaign_state(campaign_id)["recipients"]) == 1


# ---------------------------------------------------------------- send and lifecycle


def test_send_errors_and_send_counting(mobizon: Mobizon) -> None:
    assert mobizon("campaign/send", {"id": 424242})["code"] == 2
    empty = mobizon.campaign()
    body = mobizon("campaign/send", {"id": empty})
    assert body["code"] == 10 and "recipients" in body["message"]
    campaign_id = mobizon.campaign(numbers=[OK_1])
    assert mobizon.ok("campaign/send", {"id": campaign_id}) == 2
    assert mobizon("campaign/send", {"id": campaign_id})["code"] == 10
    assert mobizon.campaign_state(campaign_id)["sendCalls"] == 2
    assert mobizon.ok("user/getOwnBalance")["balance"] == "990.0000"  # one segment at 10.0


def test_lifecycle_on_the_simulated_clock(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign(numbers=[OK_1, UNDELIV, EXPIRED, REJECTD])
    sent_at = mobizon.now()
    mobizon.ok("campaign/send", {"id": campaign_id})

    def info() -> dict:
        return mobizon.ok("campaign/getInfo", {"id": campaign_id})

    def statuses() -> list[str]:
        return [m["status"] for m in mobizon.campaign_state(campaign_id)["messages"]]

    first = info()
    assert (first["commonStatus"], first["moderationStatus"]) == ("READY_FOR_SEND", "AUTO_READY_FOR_SEND")
    assert statuses() == ["ENQUEUD"] * 4 and first["counters"]["totalNewMsgNum"] == "4"
    mobizon.advance(1.025)  # sending starts 1 s after approval, 100 messages per second
    running = info()
    assert running["commonStatus"] == "RUNNING" and running["startSendTs"] == ts(sent_at + timedelta(seconds=1))
    assert statuses() == ["ACCEPTD", "ACCEPTD", "ENQUEUD", "ENQUEUD"]
    mobizon.advance(0.5)
    sent = info()
    assert (sent["commonStatus"], sent["sendStatus"]) == ("SENT", "SENT") and sent["endSendTs"]
    assert sent["counters"]["totalAcceptdMsgNum"] == "4"
    mobizon.advance(5)  # final statuses 5 s after acceptance
    done = info()
    assert (done["commonStatus"], done["sendStatus"]) == ("DONE", "DONE")
    assert statuses() == ["DELIVRD", "UNDELIV", "EXPIRED", "REJECTD"]
    counters = done["counters"]
    assert [counters[f"total{s}MsgNum"] for s in ("Delivrd", "Undeliv", "Expired", "Rejectd", "Acceptd")] == [
        "1", "1", "1", "1", "0",
    ]  # fmt: skip
    assert (counters["totalMsgNum"], counters["totalSegNum"], counters["totalCost"]) == ("4", "4", "40.0000")


def test_rate_limit_slows_sending(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign(numbers=[OK_1, OK_2, OK_3], rateLimit=60, ratePeriod=60)
    mobizon.ok("campaign/send", {"id": campaign_id})
    mobizon.advance(1 + 2.5)  # one message per second from the start
    assert [m["status"] for m in mobizon.campaign_state(campaign_id)["messages"]] == ["ACCEPTD", "ACCEPTD", "ENQUEUD"]
    assert mobizon.ok("campaign/get", {"id": campaign_id})["commonStatus"] == "RUNNING"


def test_moderation_then_approval(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign("Please moderate me", numbers=[OK_1])
    assert mobizon.ok("campaign/send", {"id": campaign_id}) == 1
    got = mobizon.ok("campaign/get", {"id": campaign_id})
    assert (got["commonStatus"], got["moderationStatus"]) == ("MODERATION", "MODERATION")
    mobizon.advance(60)
    got = mobizon.ok("campaign/get", {"id": campaign_id})
    assert (got["commonStatus"], got["moderationStatus"]) == ("READY_FOR_SEND", "READY_FOR_SEND")
    mobizon.advance(10)
    assert mobizon.ok("campaign/get", {"id": campaign_id})["commonStatus"] == "DONE"


def test_moderation_then_decline(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign("MODERATE and DECLINE", numbers=[OK_1])
    assert mobizon.ok("campaign/send", {"id": campaign_id}) == 1
    mobizon.advance(120)
    got = mobizon.ok("campaign/get", {"id": campaign_id})
    assert (got["commonStatus"], got["moderationStatus"]) == ("DECLINED", "DECLINED")
    assert got["globalComment"]
    assert mobizon.campaign_state(campaign_id)["messages"][0]["status"] == "NEW"


def test_deferred_campaign_waits_for_its_time(mobizon: Mobizon) -> None:
    at = mobizon.now() + timedelta(hours=2)
    campaign_id = mobizon.campaign(numbers=[OK_1], deferredToTs=ts(at))
    mobizon.ok("campaign/send", {"id": campaign_id})
    mobizon.advance(7000)
    got = mobizon.ok("campaign/get", {"id": campaign_id})
    assert got["commonStatus"] == "READY_FOR_SEND" and got["deferredToTs"] == ts(at)
    mobizon.advance(210)
    got = mobizon.ok("campaign/get", {"id": campaign_id})
    assert got["commonStatus"] == "DONE" and got["startSendTs"] == ts(at)


def test_delete_rules(mobizon: Mobizon) -> None:
    assert mobizon("campaign/delete", {"id": 5})["code"] == 2
    new = mobizon.campaign(numbers=[OK_1])
    mobizon.ok("campaign/delete", {"id": new})
    assert mobizon("campaign/get", {"id": new})["code"] == 2
    assert mobizon("campaign/getInfo", {"id": new})["code"] == 2
    assert mobizon.campaign_state(new)["deleted"] is True

    running = mobizon.campaign(numbers=[OK_1])
    mobizon.ok("campaign/send", {"id": running})
    mobizon.advance(2)
    assert mobizon("campaign/delete", {"id": running})["code"] == 10

    deferred = mobizon.campaign(numbers=[OK_2], deferredToTs=ts(mobizon.now() + timedelta(hours=1, minutes=10)))
    mobizon.ok("campaign/send", {"id": deferred})
    balance = mobizon.ok("user/getOwnBalance")["balance"]
    mobizon.advance(3600)  # 10 minutes left: still deletable, and refunded
    mobizon.ok("campaign/delete", {"id": deferred})
    assert float(mobizon.ok("user/getOwnBalance")["balance"]) == float(balance) + 10

    late = mobizon.campaign(numbers=[OK_3], deferredToTs=ts(mobizon.now() + timedelta(hours=1, minutes=4)))
    mobizon.ok("campaign/send", {"id": late})
    mobizon.advance(3600)  # 4 minutes left: too late
    assert mobizon("campaign/delete", {"id": late})["code"] == 10


def test_short_links(mobizon: Mobizon) -> None:
    text = "Sale at https://shop.example/sale?x=1. Hurry"
    campaign_id = mobizon.campaign(text, numbers=[OK_1], shortenLinks=1)
    links = mobizon.ok("campaign/getLinks", {"campaignId": campaign_id})
    assert len(links) == 1 and links[0]["fullLink"] == "https://shop.example/sale?x=1"
    assert set(links[0]) == {"id", "code", "fullLink", "shortLink", "clickCnt", "redirectCnt", "comment"}
    sent_text = mobizon.campaign_state(campaign_id)["recipients"][OK_1]["text"]
    assert sent_text == f"Sale at {links[0]['shortLink']}. Hurry"
    assert mobizon.ok("campaign/getLinks", {"campaignId": mobizon.campaign(text)}) == []
    assert mobizon("campaign/getLinks", {"campaignId": 1})["code"] == 2


# ---------------------------------------------------------------- lists and statuses


def test_campaign_list_criteria_pagination_and_sort(mobizon: Mobizon) -> None:
    ids = [mobizon.campaign(f"Text {i}", numbers=[f"770112345{i:02d}"]) for i in range(30)]
    mobizon.ok("campaign/send", {"id": ids[0]})
    page = mobizon.ok("campaign/list", {"pagination": {"pageSize": 25, "currentPage": 1}, "sort": {"id": "DESC"}})
    assert page["totalItemCount"] == "30"
    assert [int(item["id"]) for item in page["items"]] == sorted(ids, reverse=True)[25:]
    assert "counters" in page["items"][0]
    not_sent = mobizon.ok("campaign/list", {"criteria": {"status": "NOT_YET_SENT"}, "pagination": {"pageSize": 50}})
    assert not_sent["totalItemCount"] == "30"  # the sent one is READY_FOR_SEND, still not sent
    mobizon.advance(10)
    done = mobizon.ok("campaign/list", {"criteria": {"status": "DONE"}})
    assert [int(item["id"]) for item in done["items"]] == [ids[0]]
    by_text = mobizon.ok("campaign/list", {"criteria": {"text": "Text 7"}})
    assert [int(item["id"]) for item in by_text["items"]] == [ids[7]]
    by_recipient = mobizon.ok("campaign/list", {"criteria": {"recipient": "1234529"}})
    assert [int(item["id"]) for item in by_recipient["items"]] == [ids[29]]
    by_ids = mobizon.ok("campaign/list", {"criteria": {"ids": f"{ids[1]},{ids[2]}"}})
    assert by_ids["totalItemCount"] == "2"
    assert mobizon("campaign/list", {"pagination": {"pageSize": 10}})["code"] == 12
    assert mobizon("campaign/list", {"sort": {"nonsense": "ASC"}})["code"] == 12


def test_message_list_and_sms_status(mobizon: Mobizon) -> None:
    first = mobizon.campaign("One", numbers=[OK_1, UNDELIV])
    second = mobizon.campaign("Two", numbers=[OK_2])
    mobizon.ok("campaign/send", {"id": first})
    mobizon.advance(10)
    listed = mobizon.ok("message/list", {"criteria": {"campaignIds": [first]}, "withNumberInfo": 1})
    assert listed["totalItemCount"] == "2"
    item = listed["items"][0]
    assert (item["campaignId"], item["to"], item["text"], item["status"], item["countryA2"]) == (
        str(first), OK_1, "One", "DELIVRD", "KZ",
    )  # fmt: skip
    undeliv = mobizon.ok("message/list", {"criteria": {"status": "UNDELIV"}})
    assert [m["to"] for m in undeliv["items"]] == [UNDELIV]
    by_to = mobizon.ok("message/list", {"criteria": {"to": "234568"}})
    assert [m["campaignId"] for m in by_to["items"]] == [str(second)]

    message_ids = [int(m["id"]) for m in listed["items"]]
    status = mobizon.ok("message/getSMSStatus", {"ids": ",".join(map(str, [*message_ids, 1]))})
    assert [(s["id"], s["status"], s["segNum"]) for s in status] == [
        (str(message_ids[0]), "DELIVRD", "1"), (str(message_ids[1]), "UNDELIV", "1"),
    ]  # fmt: skip
    assert status[0]["startSendTs"] and status[0]["statusUpdateTs"]
    assert mobizon("message/getSMSStatus", {"ids": ""})["code"] == 2
    assert mobizon("message/getSMSStatus", {"ids": list(range(1, 102))})["code"] == 12


def test_send_sms_message(mobizon: Mobizon) -> None:
    data = mobizon.ok("message/sendSmsMessage", {"recipient": "+" + OK_1, "text": "Code 1234", "from": "Shop",
                                                 "params": {"name": "otp", "validity": 60}})  # fmt: skip
    assert data["status"] == 2 and isinstance(data["campaignId"], int) and isinstance(data["messageId"], int)
    got = mobizon.ok("campaign/get", {"id": data["campaignId"]})
    assert (got["type"], got["name"], got["from"], got["validity"]) == ("1", "otp", "Shop", "60")
    assert mobizon.campaign_state(data["campaignId"])["sendCalls"] == 1
    mobizon.advance(10)
    assert mobizon.ok("message/getSMSStatus", {"ids": [data["messageId"]]})[0]["status"] == "DELIVRD"
    bad = mobizon("message/sendSmsMessage", {"recipient": "123", "text": "x"})
    assert bad["code"] == 1 and "recipient" in bad["data"]
    stop = mobizon("message/sendSmsMessage", {"recipient": STOP, "text": "x"})
    assert stop["code"] == 1 and "stop list" in stop["data"]["recipient"]
    assert mobizon.ok("message/sendSmsMessage", {"recipient": OK_2, "text": "moderate this"})["status"] == 1


def test_send_sms_message_reads_params_mclass(mobizon: Mobizon) -> None:
    """Seed 001: "params[mclass] integer Class of the sent message: 0 - … a pop-up … (flashSMS);
    1 - … saved in the phone's Inbox folder (default)" (issue 13: the hook sends it, the sandbox keeps it)."""
    flash = mobizon.ok("message/sendSmsMessage", {"recipient": OK_1, "text": "Code 1", "params": {"mclass": 0}})
    assert mobizon.ok("campaign/get", {"id": flash["campaignId"]})["mclass"] == "0"
    inbox = mobizon.ok("message/sendSmsMessage", {"recipient": OK_2, "text": "Code 2"})
    assert mobizon.ok("campaign/get", {"id": inbox["campaignId"]})["mclass"] == "1"
    bad = mobizon("message/sendSmsMessage", {"recipient": OK_1, "text": "Code 3", "params": {"mclass": 2}})
    assert bad["code"] == 1 and "mclass" in bad["data"]


@pytest.mark.parametrize(
    ("text", "parts"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("{" * 80, 1), ("{" * 81, 2),
     ("ж" * 70, 1), ("ж" * 71, 2), ("ж" * 134, 2), ("ж" * 135, 3)],
)  # fmt: skip
def test_segment_counting(text: str, parts: int) -> None:
    assert segments(text) == parts


def test_segments_show_in_messages(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign("Привет! " * 10, numbers=[OK_1])  # 80 UCS-2 characters: 2 parts
    assert mobizon.campaign_state(campaign_id)["messages"][0]["segNum"] == 2
    assert mobizon.ok("campaign/getInfo", {"id": campaign_id})["counters"]["totalSegNum"] == "2"


# ---------------------------------------------------------------- documented paths the client must meet


def test_sender_fallback_default_then_shared(mobizon: Mobizon, admin: httpx.Client) -> None:
    # "If the sender ID is not specified, the default sender ID selected in your account will be
    # used. If you do not have registered sender IDs or it is not possible to send with the
    # specified sender ID, one of the shared service sender IDs will be used".
    admin.post("/_sandbox/mobizon/accounts", json={"api_key": "snd1", "senders": ["Shop"],
                                                    "default_sender": "Shop"}).raise_for_status()  # fmt: skip
    froms = {}
    for sender in ("Shop", "", "Unknown"):
        data = {"text": "Hi"} | ({"from": sender} if sender else {})
        campaign_id = mobizon.ok("campaign/create", {"data": data}, api_key="snd1")
        mobizon.ok("campaign/addRecipients", {"id": campaign_id, "recipients": [OK_1]}, api_key="snd1")
        assert mobizon.ok("campaign/get", {"id": campaign_id}, api_key="snd1")["from"] == sender
        items = mobizon.ok("message/list", {"criteria": {"campaignIds": [campaign_id]}}, api_key="snd1")["items"]
        froms[sender] = items[0]["from"]
    assert froms == {"Shop": "Shop", "": "Shop", "Unknown": "SMS-INFO"}
    admin.post("/_sandbox/mobizon/accounts", json={"api_key": "snd2", "senders": []}).raise_for_status()
    campaign_id = mobizon.ok("campaign/create", {"data": {"text": "Hi", "from": "Shop"}}, api_key="snd2")
    mobizon.ok("campaign/addRecipients", {"id": campaign_id, "recipients": [OK_1]}, api_key="snd2")
    items = mobizon.ok("message/list", {"criteria": {"campaignIds": [campaign_id]}}, api_key="snd2")["items"]
    assert items[0]["from"] == "SMS-INFO"


def test_recipient_codes_8_51_and_99(mobizon: Mobizon) -> None:
    campaign_id = mobizon.campaign("See https://shop.example/sale", shortenLinks=1)
    body = mobizon("campaign/addRecipients", {"id": campaign_id, "recipients": [
        "88812345678", "77099123456", "77051123456", OK_1]})  # fmt: skip
    assert body["code"] == 98
    assert [(r["number"], r["code"]) for r in body["data"]] == [
        ("88812345678", 8), ("77099123456", 99), ("77051123456", 51), (OK_1, 0)
    ]
    plain = mobizon.campaign("No links here")
    assert mobizon("campaign/addRecipients", {"id": plain, "recipients": ["77051123456"]})["code"] == 0


def test_message_statuses_deleted_and_pdlivrd(mobizon: Mobizon) -> None:
    long_text = "Sale " * 40  # 200 GSM-7 characters: two parts
    campaign_id = mobizon.campaign(long_text, ["77077123456", "77055123456", OK_1], validity=60)
    assert mobizon.ok("campaign/send", {"id": campaign_id}) == 2
    mobizon.advance(60)

    def statuses() -> dict[str, str]:
        items = mobizon.ok("message/list", {"criteria": {"campaignIds": [campaign_id]}})["items"]
        return {item["to"]: item["status"] for item in items}

    assert statuses() == {"77077123456": "DELETED", "77055123456": "PDLIVRD", OK_1: "DELIVRD"}
    info = mobizon.ok("campaign/getInfo", {"id": campaign_id})
    assert info["commonStatus"] == "SENT"  # PDLIVRD is not final: not DONE yet
    assert (info["counters"]["totalDeletedMsgNum"], info["counters"]["totalPdlivrdMsgNum"]) == ("1", "1")
    mobizon.advance(3600)  # the message's lifetime (validity) is over: its first segment's status
    assert statuses()["77055123456"] == "DELIVRD"
    assert mobizon.ok("campaign/get", {"id": campaign_id})["commonStatus"] == "DONE"
    single = mobizon.campaign("Short", ["77055123457"])
    mobizon.ok("campaign/send", {"id": single})
    mobizon.advance(60)
    assert mobizon.ok("campaign/get", {"id": single})["commonStatus"] == "DONE"  # one part: no PDLIVRD
