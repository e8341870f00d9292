"""MobizonHook: each method's exact request (path, query, form body) and result handling."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.mobizon import MobizonHook

KEY = "abcdefghij0123456789abcdefghij0123456789"
BASE = "https://api.mobizon.kz"
QUERY = f"output=json&api=v1&apiKey={KEY}"


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> MobizonHook:
    conn = {"conn_type": "mobizon", "host": "api.mobizon.kz", "password": KEY,
            "extra": {"default_sender": "Shop", "retry_base_delay": 0.001}}
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", json.dumps(conn))
    return MobizonHook()


def ok(data: object, code: int = 0) -> httpx.Response:
    return httpx.Response(200, json={"code": code, "data": data, "message": ""})


def route(method: str, path: str, response: httpx.Response) -> respx.Route:
    return respx.request(method, f"{BASE}/service/{path}").mock(return_value=response)


def sent(r: respx.Route) -> httpx.Request:
    assert r.call_count == 1
    request = r.calls.last.request
    assert request.url.query.decode() == QUERY
    return request


@respx.mock
@pytest.mark.parametrize(("path", "call", "data"), [
    ("campaign/create", lambda hook: hook.create_campaign("Sale"), {"id": 42}),
    ("campaign/create", lambda hook: hook.create_campaign("Sale"), "forty-two"),
    ("campaign/create", lambda hook: hook.create_campaign("Sale"), True),
    ("campaign/send", lambda hook: hook.send_campaign(42), "sent"),
    ("campaign/send", lambda hook: hook.send_campaign(42), [2]),
    ("message/sendSmsMessage", lambda hook: hook.send_sms("77010000001", "Hi"), "queued"),
    ("message/sendSmsMessage", lambda hook: hook.send_sms("77010000001", "Hi"), [{"messageId": 1}]),
])  # fmt: skip
def test_a_paid_call_answered_code_0_with_data_of_another_shape_may_have_been_carried_out(
    hook: MobizonHook, path: str, call: Any, data: object
) -> None:
    """A lying server: code 0 whose data is not what the call returns is an answer that cannot be read, so
    the call may have happened (looked up, never repeated), not a ValueError that passes as any failure."""
    r = route("POST", path, ok(data))
    with pytest.raises(exc.SmsAmbiguousError, match=r"could not be read.*may have been carried out"):
        call(hook)
    assert r.call_count == 1


@respx.mock
def test_create_campaign_body(hook: MobizonHook) -> None:
    r = route("POST", "campaign/create", ok("42"))
    campaign_id = hook.create_campaign(
        "Hi {name}", name="Spring", campaign_type=3, rate_limit=600, rate_period=60,
        deferred_to="2026-12-01 10:00:00", mclass=1, validity=720, shorten_links=True,
    )
    assert campaign_id == 42
    body = sent(r).content.decode()
    assert body == (
        "data%5Bname%5D=Spring&data%5Btext%5D=Hi+%7Bname%7D&data%5Btype%5D=3&data%5Bfrom%5D=Shop"
        "&data%5BrateLimit%5D=600&data%5BratePeriod%5D=60&data%5BdeferredToTs%5D=2026-12-01+10%3A00%3A00"
        "&data%5Bmclass%5D=1&data%5Bvalidity%5D=720&data%5BshortenLinks%5D=1"
    )
    assert r.calls.last.request.headers["content-type"] == "application/x-www-form-urlencoded"


@respx.mock
def test_add_template_recipients_body_and_results(hook: MobizonHook) -> None:
    r = route("POST", "campaign/addRecipients", ok(
        [{"recipient": "77011112233", "code": "0", "messageId": "901", "number": "77011112233"},
         {"recipient": "77011110000", "code": "5", "messageId": None, "number": "77011110000"}], code=98))
    answer = hook.add_recipients(7, [{"recipient": "77011112233", "name": "Ana"}, "77011110000"],
                                 placeholders_flag=3)
    assert answer.code == 98
    assert answer.data[0]["messageId"] == 901
    assert sent(r).content.decode() == (
        "id=7&recipients%5B0%5D%5Brecipient%5D=77011112233&recipients%5B0%5D%5Bname%5D=Ana"
        "&recipients%5B1%5D=77011110000&params%5BplaceholdersFlag%5D=3"
    )


@respx.mock
def test_add_recipients_in_portions_of_500(hook: MobizonHook) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        fields = parse_qsl(request.content.decode())
        numbers = [v for k, v in fields if k.startswith("recipients[")]
        return ok([{"recipient": n, "code": 4 if n.endswith("7") else 0, "messageId": i}
                   for i, n in enumerate(numbers)])

    r = respx.post(f"{BASE}/service/campaign/addRecipients").mock(side_effect=answer)
    progress: list[int] = []
    result = hook.add_recipients_in_portions(
        3, (f"7701{i:07d}" for i in range(1234)), on_portion=lambda n, _: progress.append(n)
    )
    sizes = [len([k for k, _ in parse_qsl(c.request.content.decode()) if k.startswith("recipients[")])
             for c in r.calls]
    assert sizes == [500, 500, 234]
    assert progress == [500, 1000, 1234]
    assert result.added + result.duplicates == 1234 and result.duplicates == 123
    assert len(result.message_ids) == 100


def test_more_than_500_in_one_call_is_refused_before_sending(hook: MobizonHook) -> None:
    with respx.mock(assert_all_called=False) as mock:
        with pytest.raises(exc.SmsValidationError, match="501 recipients"):
            hook.add_recipients(1, [str(77010000000 + i) for i in range(501)])
        assert not mock.calls


def test_two_recipient_types_in_one_call_are_refused(hook: MobizonHook) -> None:
    with pytest.raises(exc.SmsValidationError, match="exactly one recipient type"):
        hook.add_recipients(1, ["77011112233"], groups=[5])


@respx.mock
def test_add_recipients_file_is_multipart_and_returns_task(hook: MobizonHook, tmp_path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("recipient,name\n77011112233,Ana\n")
    r = route("POST", "campaign/addRecipients", ok("555", code=100))
    answer = hook.add_recipients(9, file=path, file_skip_header=True, file_delimiter=";")
    assert answer.task_id == 555
    request = sent(r)
    assert request.headers["content-type"].startswith("multipart/form-data")
    body = request.content
    assert b'name="recipientsFile"; filename="r.csv"' in body
    assert b"recipient,name\n77011112233,Ana\n" in body
    assert b'name="params[recipientsFileSkipHeader]"\r\n\r\n1' in body
    assert b'name="params[recipientsFileDelimiter]"\r\n\r\n;' in body
    assert b'name="id"\r\n\r\n9' in body


@respx.mock
def test_send_get_info_links_delete(hook: MobizonHook) -> None:
    rs = route("POST", "campaign/send", ok("2"))
    assert hook.send_campaign(5) == 2
    assert sent(rs).content == b"id=5"
    rg = route("POST", "campaign/getInfo", ok({"id": "5", "counters": {"totalMsgNum": "3"}}))
    assert hook.get_campaign_info(5, filled_template_text=False)["counters"]["totalMsgNum"] == 3
    assert sent(rg).content == b"id=5&getFilledTplCampaignText=0"
    rl = route("POST", "campaign/getLinks", ok([{"id": "1", "clickCnt": "4"}]))
    assert hook.get_campaign_links(5) == [{"id": 1, "clickCnt": 4}]
    assert sent(rl).content == b"campaignId=5"
    rd = route("POST", "campaign/delete", ok(None))
    hook.delete_campaign(5)
    assert sent(rd).content == b"id=5"


@respx.mock
def test_delete_of_a_started_campaign_is_a_conflict_not_a_retry(hook: MobizonHook) -> None:
    r = route("POST", "campaign/delete", ok(None, code=10))
    with pytest.raises(exc.SmsConflictError):
        hook.delete_campaign(5)
    assert r.call_count == 1


@respx.mock
def test_get_sms_status_splits_ids_by_100(hook: MobizonHook) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        ids = [v for k, v in parse_qsl(request.content.decode()) if k.startswith("ids[")]
        return ok([{"id": i, "status": "DELIVRD"} for i in ids])

    r = respx.post(f"{BASE}/service/message/getSMSStatus").mock(side_effect=answer)
    statuses = hook.get_sms_status(range(1, 251))
    assert len(statuses) == 250 and statuses[0] == {"id": 1, "status": "DELIVRD"}
    assert r.call_count == 3
    assert r.calls[0].request.content.decode().startswith("ids%5B0%5D=1&ids%5B1%5D=2&")


@respx.mock
@pytest.mark.parametrize("data", [{"1": {"id": 1}}, [{"id": 1, "status": "DELIVRD"}, 2], "DELIVRD"])
def test_get_sms_status_refuses_statuses_that_are_not_objects(hook: MobizonHook, data: object) -> None:
    """A lying server's statuses stop the read with the provider's error, not an AttributeError in the caller."""
    r = respx.post(f"{BASE}/service/message/getSMSStatus").mock(return_value=ok(data))
    with pytest.raises(exc.SmsProtocolError, match=r"message/getSMSStatus answered items of type .*, not objects"):
        hook.get_sms_status([1, 2])
    assert r.call_count == 1


@respx.mock
def test_iter_campaigns_walks_every_page(hook: MobizonHook) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        fields = dict(parse_qsl(request.content.decode()))
        page = int(fields["pagination[currentPage]"])
        items = [{"id": str(page * 25 + i)} for i in range(25 if page < 2 else 7)]
        return ok({"items": items, "totalItemCount": "57"})

    r = respx.post(f"{BASE}/service/campaign/list").mock(side_effect=answer)
    ids = [c["id"] for c in hook.iter_campaigns({"status": "DONE"}, page_size=25, sort={"id": "ASC"})]
    assert ids == list(range(57))
    assert r.call_count == 3
    assert r.calls[0].request.content.decode() == (
        "criteria%5Bstatus%5D=DONE&pagination%5BcurrentPage%5D=0&pagination%5BpageSize%5D=25&sort%5Bid%5D=ASC"
    )


def test_page_size_must_be_documented(hook: MobizonHook) -> None:
    with pytest.raises(exc.SmsValidationError, match="page_size=30"):
        hook.list_messages(page_size=30)


@respx.mock
def test_send_sms_message_body(hook: MobizonHook) -> None:
    r = route("POST", "message/sendSmsMessage", ok({"campaignId": "1", "messageId": "2", "status": "2"}))
    assert hook.send_sms("77011112233", "Hi & bye", validity=60) == {"campaignId": 1, "messageId": 2, "status": 2}
    assert sent(r).content == b"recipient=77011112233&text=Hi+%26+bye&from=Shop&params%5Bvalidity%5D=60"


@respx.mock
def test_task_status_and_balance(hook: MobizonHook) -> None:
    rt = route("POST", "taskqueue/getStatus", ok({"progress": "50", "status": "1"}))
    assert hook.get_task_status(8) == {"progress": 50, "status": 1}
    assert sent(rt).content == b"id=8"
    rb = route("GET", "user/getOwnBalance", ok({"balance": "12.5000", "currency": "KZT"}))
    assert hook.get_balance() == {"balance": 12.5, "currency": "KZT"}
    assert sent(rb).content == b""


@respx.mock
def test_test_connection_reports_reason_without_key(hook: MobizonHook) -> None:
    route("GET", "user/getOwnBalance", httpx.Response(200, json={"code": 8, "data": None,
                                                                   "message": f"Bad key {KEY}"}))
    okay, message = hook.test_connection()
    assert okay is False and "code 8" in message and KEY not in message


def test_full_url_host_keeps_scheme_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_SB", json.dumps({"conn_type": "mobizon", "host": "http://127.0.0.1:8765",
                                                      "password": KEY}))
    assert MobizonHook("sb").settings.http.base_url == "http://127.0.0.1:8765"


def test_bare_domain_defaults_to_https(hook: MobizonHook) -> None:
    assert hook.settings.http.base_url == "https://api.mobizon.kz"
    assert hook.settings.http.verify is True
    assert KEY not in repr(hook.settings)


def test_empty_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_NOKEY", json.dumps({"conn_type": "mobizon", "host": "api.mobizon.kz"}))
    with pytest.raises(exc.SmsValidationError, match="API key"):
        _ = MobizonHook("nokey").settings


def _flaky_task_route() -> tuple[respx.Route, list[float]]:
    """taskqueue/getStatus answering 503 once, then OK; the times the requests arrived."""
    import time

    seen: list[float] = []
    answers = iter([httpx.Response(503), ok({"progress": 100, "status": 2})])

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        return next(answers)

    return respx.post(f"{BASE}/service/taskqueue/getStatus").mock(side_effect=answer), seen


@respx.mock
def test_a_failed_task_poll_is_retried_no_sooner_than_a_second(hook: MobizonHook) -> None:
    # "This request should be sent no more than once per second" (taskqueue-getStatus.md): the
    # retry after a failed poll waited the connection's backoff (here ~1 ms) before.
    _, seen = _flaky_task_route()
    assert hook.get_task_status(7) == {"progress": 100, "status": 2}
    assert len(seen) == 2 and seen[1] - seen[0] >= 1.0


@respx.mock
def test_a_failed_task_poll_of_a_trigger_is_paced_too(hook: MobizonHook) -> None:
    import asyncio

    _, seen = _flaky_task_route()

    async def poll() -> object:
        async with hook.settings.async_client() as client:
            return await hook.settings.acall(client, "taskqueue", "getStatus", {"id": 7})

    assert asyncio.run(poll()) == {"progress": 100, "status": 2}
    assert len(seen) == 2 and seen[1] - seen[0] >= 1.0
    # Other methods keep the connection's own (short) backoff.
    assert hook.settings.retry_for("campaign", "get") is hook.settings.retry


@respx.mock
def test_send_sms_carries_mclass(hook: MobizonHook) -> None:
    # params[mclass] of message/sendSmsMessage (seeds/001: "0 - ... pop-up (flashSMS)").
    r = route("POST", "message/sendSmsMessage", ok({"campaignId": "1", "messageId": "2", "status": "2"}))
    hook.send_sms("77011112233", "Code 1", mclass=0)
    assert sent(r).content == b"recipient=77011112233&text=Code+1&from=Shop&params%5Bmclass%5D=0"


@respx.mock
def test_list_criteria_datetimes_are_sent_in_the_documented_format(hook: MobizonHook) -> None:
    import datetime as dt

    r = route("POST", "message/list", ok({"items": [], "totalItemCount": "0"}))
    zone = dt.timezone(dt.timedelta(hours=5))
    hook.list_messages({"statusUpdateTsFrom": dt.datetime(2026, 5, 1, 15, 0, 0, 250000, tzinfo=zone),
                        "statusUpdateTsTo": dt.date(2026, 5, 2), "to": "7701"}, page_size=25)  # fmt: skip
    assert sent(r).content.decode() == (
        "criteria%5BstatusUpdateTsFrom%5D=2026-05-01+10%3A00%3A00&criteria%5BstatusUpdateTsTo%5D=2026-05-02+00%3A00%3A00"
        "&criteria%5Bto%5D=7701&pagination%5BcurrentPage%5D=0&pagination%5BpageSize%5D=25"
    )


def test_rejected_contacts_keep_their_contact_id() -> None:
    from airflow_sms_provider.hooks.mobizon import AddResult

    result = AddResult()
    result.record([{"recipient": None, "code": "30", "messageId": None, "contact": "123456"},
                   {"recipient": "77011112233", "code": 0, "messageId": 9, "contact": 101}], 5, 5)  # fmt: skip
    assert result.rejections == [
        {"recipient": None, "code": 30, "reason": "contact card not found", "contact": "123456"}
    ]


@respx.mock
@pytest.mark.parametrize("name", ["r.ods", "r.json", "r"])
def test_files_mobizon_does_not_take_are_refused_before_any_request(hook: MobizonHook, tmp_path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"77011112233\n")
    with pytest.raises(exc.SmsValidationError, match=r"CSV or Excel \(only XLS\)"):
        hook.add_recipients(5, file=str(path))
    with pytest.raises(exc.SmsValidationError, match=r"CSV or Excel \(only XLS\)"):
        hook.add_recipients(5, file=(name, b"77011112233\n"))
    assert respx.calls.call_count == 0


def _uploaded(request: httpx.Request) -> tuple[str, bytes, dict[str, str]]:
    """(file name, file bytes, other form fields) of a multipart addRecipients request."""
    import email.parser
    import email.policy

    raw = b"content-type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.content
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    fields, upload = {}, ("", b"")
    for part in message.iter_parts():
        if part.get_filename():
            upload = (part.get_filename(), part.get_payload(decode=True))
        else:
            fields[part.get_param("name", header="content-disposition")] = part.get_content().strip()
    return upload[0], upload[1], fields


@respx.mock
def test_txt_goes_as_csv_and_xlsx_is_converted_to_csv(hook: MobizonHook, tmp_path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    r = route("POST", "campaign/addRecipients", ok(70001, code=100))
    txt = tmp_path / "list.txt"
    txt.write_bytes(b"77011112233\n77011112234\n")
    hook.add_recipients(5, file=str(txt))
    assert _uploaded(r.calls.last.request)[:2] == ("list.csv", b"77011112233\n77011112234\n")
    book = openpyxl.Workbook()
    book.active.append(["recipient", "name"])
    book.active.append([77011112233, "Aida, Almaty"])
    xlsx = tmp_path / "Audience.xlsx"
    book.save(xlsx)
    hook.add_recipients(5, file=str(xlsx), file_encoding="WINDOWS-1251")
    name, content, fields = _uploaded(r.calls.last.request)
    assert (name, content) == ("Audience.csv", b"recipient,name\n77011112233,'Aida, Almaty'\n")
    assert fields["params[recipientsFileEncoding]"] == "UTF-8"


@pytest.mark.parametrize("data", ["queued", {"code": 0}, [1, {"code": 0}], [None], 5])
def test_per_recipient_results_that_are_not_objects_are_a_protocol_error(data: object) -> None:
    from airflow_sms_provider.hooks.mobizon import AddResult

    with pytest.raises(exc.SmsProtocolError, match="campaign/addRecipients answered items of type"):
        AddResult().record(data, 10, 10)  # type: ignore[arg-type]  # was: AttributeError / TypeError
    result = AddResult()
    result.record(({"code": 0, "messageId": 7}, {"code": 1, "recipient": "7701"}), 10, 10)  # a tuple is fine
    assert (result.added, result.rejected, result.message_ids) == (1, 1, [7])
