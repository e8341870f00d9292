"""iter_delivery_records per hook: the exact requests, the record each answer makes, and ``since``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
import respx

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.hooks.ogangi import OgangiHook
from airflow_sms_provider.reports.record import DeliveryRecord, new_record
from tests.unit.test_bsg_protocol import TOKEN, login_route

MOBIZON_KEY = "abcdefghij0123456789abcdefghij0123456789"
MOBIZON = "https://api.mobizon.kz/service/message/list"
BSG = "https://one-api.bsg.world/api/messages"
UTC = dt.timezone.utc


def mobizon_item(message_id: int, status: str = "DELIVRD", to: str = "77010000001") -> dict[str, object]:
    """A message/list item as message-list.md documents it (numbers as strings, as Mobizon sends them)."""
    return {"id": str(message_id), "campaignId": "42", "segNum": "2", "segUserBuy": "0.0500", "from": "Shop",
            "to": to, "text": "Sale", "status": status, "groups": "", "uuid": "u",
            "startSendTs": "2026-05-01 10:00:00", "statusUpdateTs": "2026-05-01 10:00:07"}  # fmt: skip


@pytest.fixture
def mobizon(monkeypatch: pytest.MonkeyPatch) -> MobizonHook:
    conn = {"conn_type": "mobizon", "host": "api.mobizon.kz", "password": MOBIZON_KEY,
            "extra": {"retry_base_delay": 0.001, "timezone": "Asia/Almaty"}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", json.dumps(conn))
    return MobizonHook()


@respx.mock
def test_mobizon_lists_a_campaigns_messages_with_the_status_update_filter(mobizon: MobizonHook) -> None:
    pages = [
        httpx.Response(200, json={"code": 0, "message": "", "data": {
            "items": [mobizon_item(i) for i in range(1, 101)], "totalItemCount": "101"}}),
        httpx.Response(200, json={"code": 0, "message": "", "data": {
            "items": [mobizon_item(101, "REJECTD")], "totalItemCount": "101"}}),
    ]  # fmt: skip
    route = respx.post(MOBIZON).mock(side_effect=pages)
    since = dt.datetime(2026, 5, 1, 5, 0, 0, 500, tzinfo=UTC)  # 10:00:00 in Almaty (UTC+5), whole seconds
    records = list(mobizon.iter_delivery_records(["42"], since=since, concurrency=1))
    assert route.call_count == 2
    bodies = [call.request.content.decode() for call in route.calls]
    assert bodies[0] == (
        "criteria%5BcampaignIds%5D%5B0%5D=42&criteria%5BstatusUpdateTsFrom%5D=2026-05-01+10%3A00%3A00"
        "&pagination%5BcurrentPage%5D=0&pagination%5BpageSize%5D=100"
    )
    assert bodies[1] == bodies[0].replace("currentPage%5D=0", "currentPage%5D=1")
    assert str(route.calls[0].request.url) == f"{MOBIZON}?output=json&api=v1&apiKey={MOBIZON_KEY}"
    assert len(records) == 101
    assert records[0] == DeliveryRecord(
        provider="mobizon", campaign_id="42", message_id="1", recipient="77010000001", status="delivered",
        provider_status="DELIVRD", parts=2, cost=Decimal("0.10"),
        created_at=dt.datetime(2026, 5, 1, 5, 0, 0, tzinfo=UTC),
        updated_at=dt.datetime(2026, 5, 1, 5, 0, 7, tzinfo=UTC),
    )
    assert (records[-1].status, records[-1].provider_status) == ("failed", "REJECTD")


NEW_YORK = "America/New_York"  # clocks turned back at 2026-11-01 06:00 UTC (02:00 EDT -> 01:00 EST)


@pytest.mark.parametrize(("since", "until", "wall"), [
    # A watermark in the hour before the fall-back: after it, a message changed 25 minutes later reads
    # "01:05" (EST), before "01:40" (EDT): the filter starts an hour earlier.
    (dt.datetime(2026, 11, 1, 5, 40, tzinfo=UTC), dt.datetime(2026, 11, 1, 6, 5, tzinfo=UTC), "2026-11-01 00:40:00"),
    (dt.datetime(2026, 11, 1, 5, 40, tzinfo=UTC), dt.datetime(2026, 11, 1, 5, 59, tzinfo=UTC), "2026-11-01 01:40:00"),
    (dt.datetime(2026, 10, 30, 12, 0, tzinfo=UTC), dt.datetime(2027, 1, 1, tzinfo=UTC), "2026-10-30 07:00:00"),
    # Clocks going forward skip wall times: nothing is read as earlier, the bound is the wall time itself.
    (dt.datetime(2027, 3, 14, 6, 30, tzinfo=UTC), dt.datetime(2027, 3, 14, 8, 0, tzinfo=UTC), "2027-03-14 01:30:00"),
    (dt.datetime(2026, 11, 1, 6, 30, 0, 999, tzinfo=UTC), None, "2026-11-01 01:30:00"),  # EST, whole seconds
    (dt.datetime(2016, 11, 6, 5, 40), None, "2016-11-06 00:40:00"),  # naive is UTC; ten years of samples
])  # fmt: skip
def test_the_status_update_filter_starts_before_any_clock_turned_back_since(
    since: dt.datetime, until: dt.datetime | None, wall: str
) -> None:
    from zoneinfo import ZoneInfo

    from airflow_sms_provider.hooks.mobizon import wall_floor

    assert wall_floor(since, ZoneInfo(NEW_YORK), until) == wall
    assert wall_floor(since, ZoneInfo("Asia/Almaty"), until) == (since.replace(tzinfo=UTC) + dt.timedelta(hours=5)
                                                                  ).strftime("%Y-%m-%d %H:%M:%S")  # fmt: skip


@respx.mock
def test_an_incremental_listing_in_a_zone_that_turned_its_clocks_back_reads_from_an_hour_earlier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = {"conn_type": "mobizon", "host": "api.mobizon.kz", "password": MOBIZON_KEY,
            "extra": {"timezone": NEW_YORK}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", json.dumps(conn))
    route = respx.post(MOBIZON).mock(return_value=httpx.Response(200, json={"code": 0, "message": "", "data": {
        "items": [mobizon_item(1)], "totalItemCount": "1"}}))  # fmt: skip
    since = dt.datetime(2026, 11, 1, 5, 40, tzinfo=UTC)  # 01:40 EDT; now is past the fall-back
    list(MobizonHook().iter_delivery_records(["42"], since=since, concurrency=1))
    assert "criteria%5BstatusUpdateTsFrom%5D=2026-11-01+00%3A40%3A00&" in route.calls[0].request.content.decode()


@respx.mock
def test_mobizon_without_since_sends_no_filter_and_reads_each_campaign(mobizon: MobizonHook) -> None:
    def answer(request: httpx.Request) -> httpx.Response:  # each campaign's own message
        campaign = "7" if "%5D=7&" in request.content.decode() else "8"
        item = {**mobizon_item(1, "SOMETHING_NEW"), "campaignId": campaign}
        return httpx.Response(200, json={"code": 0, "message": "", "data": {"items": [item], "totalItemCount": "1"}})

    route = respx.post(MOBIZON).mock(side_effect=answer)
    records = list(mobizon.iter_delivery_records([7, 8]))
    assert [call.request.content.decode() for call in route.calls] == [
        f"criteria%5BcampaignIds%5D%5B0%5D={cid}&pagination%5BcurrentPage%5D=0&pagination%5BpageSize%5D=100"
        for cid in (7, 8)
    ]
    # A status the table does not know is pending, the provider's word kept.
    assert {(r.status, r.provider_status) for r in records} == {("pending", "SOMETHING_NEW")}


def test_mobizon_statuses_follow_the_sms_status_table() -> None:
    final = {"UNDELIV": "undelivered", "REJECTD": "failed", "DELIVRD": "delivered", "EXPIRED": "undelivered",
             "DELETED": "undelivered"}  # fmt: skip
    for word in ("NEW", "ENQUEUD", "ACCEPTD", "PDLIVRD"):
        assert MobizonHook.message_status(word) == "pending"
    assert {word: MobizonHook.message_status(word) for word in final} == final


def test_mobizon_record_is_built_without_the_frozen_init(mobizon: MobizonHook, monkeypatch: pytest.MonkeyPatch) -> None:
    """The frozen dataclass's __init__ (object.__setattr__ per field) was half a record's CPU in a report:
    ``new_record`` sets the slots directly and gives the same record, still frozen and hashable."""
    expected = DeliveryRecord("mobizon", "42", "7", "77010000001", "delivered", "DELIVRD", 2, Decimal("0.10"),
                              dt.datetime(2026, 5, 1, 5, 0, tzinfo=UTC), dt.datetime(2026, 5, 1, 5, 0, 7, tzinfo=UTC))

    expected_bare = DeliveryRecord("p", "c", "m", "r", "pending", "NEW")

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("DeliveryRecord.__init__ called per message")

    monkeypatch.setattr(DeliveryRecord, "__init__", refused)
    record = mobizon.delivery_record(mobizon_item(7))
    assert record == expected and hash(record) == hash(expected) and repr(record) == repr(expected)
    bare = new_record(provider="p", campaign_id="c", message_id="m", recipient="r", status="pending",
                      provider_status="NEW")  # fmt: skip
    assert repr(bare) == repr(expected_bare)
    with pytest.raises(dataclasses.FrozenInstanceError):
        bare.status = "delivered"  # type: ignore[misc]


def test_mobizon_page_to_records_matches_one_item_at_a_time(mobizon: MobizonHook) -> None:
    """``delivery_records`` turns a page at a time (the report's path): the records of each item, in order,
    odd items included (numbers converted or not, fields missing or empty, an unknown status)."""
    odd = [
        {"id": 9, "campaignId": 42, "segNum": 1, "segUserBuy": 0.05, "to": 77010000009, "status": "UNDELIV",
         "startSendTs": "2026-05-01T10:00:00+05:00", "statusUpdateTs": None},
        {"id": "10", "campaignId": "42", "status": "SOMETHING_NEW", "segNum": "", "segUserBuy": "x"},
        {"id": "11", "campaignId": "42", "to": None, "status": None, "segNum": "3", "segUserBuy": None,
         "startSendTs": "", "statusUpdateTs": "not a time"},
    ]  # fmt: skip
    page = [mobizon_item(7), mobizon_item(8, "ACCEPTD", to="77010000008"), *odd]
    records = mobizon.delivery_records(page)
    assert records == [mobizon.delivery_record(item) for item in page]
    assert [(r.message_id, r.status, r.parts, r.cost) for r in records] == [
        ("7", "delivered", 2, Decimal("0.1")), ("8", "pending", 2, Decimal("0.1")),
        ("9", "undelivered", 1, Decimal("0.05")), ("10", "pending", None, None), ("11", "pending", 3, None),
    ]  # fmt: skip
    assert records[2].created_at == dt.datetime(2026, 5, 1, 5, 0, tzinfo=UTC) and records[2].updated_at is None
    assert mobizon.delivery_records([]) == []


def _listed_body(*items: str, code: str = "0", total: str = '"2"', head: str = "") -> bytes:
    return (f'{{"code":{code},{head}"data":{{"items":[{",".join(items)}],"totalItemCount":{total}}},"message":""}}'
            .encode())  # fmt: skip


_ITEM = ('{"id":"7","campaignId":"42","segNum":"2","segUserBuy":"0.0500","from":"Shop","to":"77010000001",'
         '"text":"Sale","status":"DELIVRD","groups":"","uuid":"u","startSendTs":"2026-05-01 10:00:00",'
         '"statusUpdateTs":"2026-05-01 10:00:07"}')  # fmt: skip
# message/list answers a report may meet: each must give the records the full JSON parse gives, or its error.
_LISTED_BODIES = [
    _listed_body(_ITEM, _ITEM.replace('"7"', '"8"')),
    _listed_body(_ITEM, code='"0"'),  # the code as a string: not the fast shape
    _listed_body(_ITEM, head='"code":3,'),  # a second code key: the last one counts, as json reads it
    _listed_body(_ITEM.replace('"id":"7"', '"id":12345678901234567890123456789')),  # exact, not a float
    _listed_body(_ITEM.replace('"segUserBuy":"0.0500"', '"segUserBuy":0.1000000000000000055511151231257827')),
    _listed_body(_ITEM.replace('"segUserBuy":"0.0500"', '"segUserBuy":NaN')),  # json reads NaN, msgspec not
    _listed_body(_ITEM.replace('"to":"77010000001"', '"to":"\\ud800\\u0041"')),  # a lone surrogate
    _listed_body(_ITEM.replace('"id":"7",', '"id":"7","id":"9",')),  # a repeated key: the last one
    _listed_body(_ITEM.replace('"status":"DELIVRD"', '"status":{"nested":[1,2]}')),  # any JSON value
    _listed_body('{"id":"5"}', "{}"),  # fields missing
    _listed_body(_ITEM, total="null"),
    _listed_body(_ITEM, "7"),  # an item that is not an object
    b'{"code":0,"data":{"items":null,"totalItemCount":"0"},"message":""}',
    b'{"code":0,"data":[],"message":""}',
    b'{ "code" : 0 , "data" : { "items" : [ ' + _ITEM.encode() + b' ] , "totalItemCount" : "1" } }',
    b'{"code":1,"data":{"items":[]},"message":"wrong key"}',
    b'{"code":0,"data":{"items":[' + _ITEM.encode() + b"]}} trailing",
    b"not json",
]


@pytest.mark.parametrize("body", _LISTED_BODIES)
def test_the_report_decode_of_a_message_page_is_the_full_parses(mobizon: MobizonHook, body: bytes) -> None:
    """The report decodes message/list pages into slotted structs (msgspec); what a page gives, records or
    error, must be what json's full parse of it gives."""
    from airflow_sms_provider.hooks.mobizon import _PARSE_RESULTS, _parse_listed
    from airflow_sms_provider.transport import Response

    def records(fast: bool) -> object:
        try:
            answer = (_parse_listed if fast else _PARSE_RESULTS)(Response(200, body, {}))
            data = answer.data if isinstance(answer.data, dict) else {}
            return answer.code, data.get("totalItemCount"), mobizon.delivery_records(data.get("items") or [])
        except Exception as err:
            return type(err), str(err)

    assert records(fast=True) == records(fast=False)


def test_a_plain_message_page_is_decoded_without_dicts() -> None:
    from airflow_sms_provider.hooks.mobizon import _Listed, _parse_listed
    from airflow_sms_provider.transport import Response

    items = _parse_listed(Response(200, _LISTED_BODIES[0], {})).data["items"]
    assert [type(item) for item in items] == [_Listed, _Listed] and items[1].id == "8"


def test_a_message_page_item_that_is_not_an_object_is_named(mobizon: MobizonHook) -> None:
    with pytest.raises(exc.SmsProtocolError, match="a message/list item is int, not an object"):
        mobizon.delivery_records([json.loads(_ITEM), 7])  # type: ignore[list-item]


@respx.mock
@pytest.mark.parametrize("data", [
    {"items": [mobizon_item(1), 7], "totalItemCount": "2"},
    {"items": [mobizon_item(1), None], "totalItemCount": "2"},
    {"items": {"0": mobizon_item(1)}, "totalItemCount": "1"},
    {"items": [mobizon_item(1)], "totalItemCount": "one"},
    {"items": [mobizon_item(1)], "totalItemCount": -1},
    [mobizon_item(1)],
])  # fmt: skip
@pytest.mark.parametrize("read", ["report", "listing"])
def test_a_mobizon_page_that_is_not_a_page_of_objects_stops_the_listing_once(
    mobizon: MobizonHook, data: object, read: str
) -> None:
    """A lying server: the report and the public listing (which the recovery of an unanswered sendSmsMessage
    reads) stop with the provider's error, one request, not an AttributeError or ValueError later on."""
    route = respx.post(MOBIZON).mock(return_value=httpx.Response(200, json={"code": 0, "message": "", "data": data}))
    with pytest.raises(exc.SmsProtocolError, match=r"not objects|not a count|not an object|not a page"):
        if read == "report":
            list(mobizon.iter_delivery_records(["42"], concurrency=1))
        else:
            list(mobizon.iter_messages({"campaignIds": [42]}))
    assert route.call_count == 1


# ------------------------------------------------------------------------ BSG


@pytest.fixture
def bsg(monkeypatch: pytest.MonkeyPatch) -> Iterator[BsgHook]:
    conn = {"conn_type": "bsg", "password": "live_0123456789abcdefghijKLMNOP", "extra": {"retry_base_delay": 0.001}}
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps(conn))
    hook = BsgHook()
    yield hook
    hook.close()


def bsg_item(message_id: int, status: str = "delivered", delivered_at: str | None = "2025-03-20 05:11:21"
             ) -> dict[str, object]:
    """A MessageApiSchema item as openapi.yaml's example shows it."""
    return {"id": message_id, "campaign_id": 58982653, "reference_id": None, "type": "sms", "source": "web",
            "text": "Test", "phone": 380981171206, "validity": 72, "status": status,
            "amount": {"value": "0.0100000", "currency": "UAH"}, "sender": "testsms",
            "created_at": "2025-03-20 05:11:15", "sent_at": "2025-03-20 05:11:16", "delivered_at": delivered_at,
            "country": "UA", "parts": 1}  # fmt: skip


def bsg_page(items: list[dict[str, object]], total: int, offset: int) -> httpx.Response:
    return httpx.Response(200, json={"data": items, "meta": {"page": {"limit": 500, "offset": offset, "total": total}}})


@respx.mock
def test_bsg_pages_by_offset_in_id_order_and_filters_since_itself(bsg: BsgHook) -> None:
    login_route(TOKEN)
    first = [bsg_item(i) for i in range(1, 501)]
    second = [bsg_item(501, "undelivered", None), bsg_item(502, delivered_at="2025-03-19 00:00:00")]
    route = respx.get(BSG).mock(side_effect=[bsg_page(first, 502, 0), bsg_page(second, 502, 500)])
    since = dt.datetime(2025, 3, 20, 5, 11, 20, tzinfo=UTC)
    records = list(bsg.iter_delivery_records([58982653], since=since, concurrency=2))
    assert [str(call.request.url) for call in route.calls] == [
        f"{BSG}?filter%5Bcampaign_id%5D=58982653&page%5Boffset%5D={offset}&page%5Blimit%5D=500&sort=id&way=asc"
        for offset in (0, 500)
    ]
    # 500 delivered after since; 501 undelivered (its change has no time: kept); 502 delivered before: left out.
    assert [r.message_id for r in records] == [str(i) for i in range(1, 502)]
    assert records[0] == DeliveryRecord(
        provider="bsg", campaign_id="58982653", message_id="1", recipient="380981171206", status="delivered",
        provider_status="delivered", parts=1, cost=Decimal("0.0100000"),
        created_at=dt.datetime(2025, 3, 20, 5, 11, 15, tzinfo=UTC),
        updated_at=dt.datetime(2025, 3, 20, 5, 11, 21, tzinfo=UTC),
    )
    assert (records[-1].status, records[-1].updated_at) == ("undelivered", dt.datetime(2025, 3, 20, 5, 11, 16,
                                                                                          tzinfo=UTC))


@respx.mock
def test_bsg_empty_campaign_is_one_listing_and_one_read(bsg: BsgHook) -> None:
    login_route(TOKEN)
    route = respx.get(BSG).mock(return_value=bsg_page([], 0, 0))
    # An empty listing is also what an unknown id gives: the campaign is read once to tell them apart.
    read = respx.get("https://one-api.bsg.world/api/campaigns/1").mock(
        return_value=httpx.Response(200, json={"data": {"id": 1, "status": "finished"}}))
    assert list(bsg.iter_delivery_records([1])) == []
    assert (route.call_count, read.call_count) == (1, 1)


@respx.mock
@pytest.mark.parametrize("odd", [7, "7", None, [1]])
def test_a_bsg_page_item_that_is_not_an_object_fails_the_listing_naming_it(bsg: BsgHook, odd: object) -> None:
    """A lying server: the report stops with the provider's error, once (not retried), not an AttributeError."""
    login_route(TOKEN)
    route = respx.get(BSG).mock(return_value=bsg_page([bsg_item(1), odd], 2, 0))  # type: ignore[list-item]
    with pytest.raises(exc.SmsProtocolError, match=f"bsg: a list item is {type(odd).__name__}, not an object"):
        list(bsg.iter_delivery_records([58982653]))
    assert route.call_count == 1


@respx.mock
def test_a_bsg_listing_that_announces_more_than_it_has_stops_at_the_first_empty_page(bsg: BsgHook) -> None:
    """A lying total (10**9 messages) must not be read page after empty page: the export stops and says so."""
    login_route(TOKEN)
    first = bsg_page([bsg_item(i) for i in range(1, 501)], 10**9, 0)
    route = respx.get(BSG).mock(side_effect=[first] + [bsg_page([], 10**9, 500)] * 200)
    with pytest.raises(exc.SmsProtocolError, match=r"1000000000 message\(s\) were announced and 500 listed"):
        list(bsg.iter_delivery_records([58982653], concurrency=2))
    assert route.call_count <= 1 + 2 * 2 + 1  # the first page, the pages asked for ahead, one more at most


def test_bsg_statuses() -> None:
    assert {w: BsgHook.message_status(w) for w in ("sent", "delivered", "read", "expired", "failed", "new-word")} == {
        "sent": "pending", "delivered": "delivered", "read": "delivered", "expired": "undelivered",
        "failed": "failed", "new-word": "pending"}  # fmt: skip


# ------------------------------------------------------------------------ Ogangi


def test_ogangi_says_what_its_api_lacks_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OGANGI_DEFAULT", json.dumps({"conn_type": "ogangi"}))
    with respx.mock(assert_all_called=False) as router:
        with pytest.raises(exc.SmsNotSupportedError, match="no call that lists a broadcast's messages") as info:
            next(OgangiHook().iter_delivery_records([5]))
        assert router.calls.call_count == 0
    assert "5" in str(info.value)
