"""Scale features without a server: encoding, prefetch, bounded concurrency, progress, spooling, TLS reuse."""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl, quote_plus

import httpx
import pytest
import respx

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider import transport
from airflow_sms_provider.concurrency import Gate, ordered_map, prefetch, yield_gil
from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.hooks import mobizon as hooks_mobizon
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.progress import ProgressLog
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.recipients import CsvSpool, normalize_phone
from tests.helpers import all_added

KEY = "abcdefghij0123456789abcdefghij0123456789"
BASE = "https://api.mobizon.kz"


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> MobizonHook:
    conn = {"conn_type": "mobizon", "host": "api.mobizon.kz", "password": KEY, "extra": {"retry_base_delay": 0.001}}
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", json.dumps(conn))
    return MobizonHook()


def ok(data: object, code: int = 0) -> httpx.Response:
    return httpx.Response(200, json={"code": code, "data": data, "message": ""})


# ------------------------------------------------------------------ encoding


def _reference_query(params: dict) -> str:
    """http_build_query as it was written before the fast path: flatten, then escape each key and value."""

    def quote(value: object) -> str:
        if value is True:
            return "1"
        if value is False:
            return "0"
        return quote_plus(str(value), safe="").replace("~", "%7E")

    return "&".join(f"{quote(k)}={quote(v)}" for k, v in proto.flatten_params(params))


def _random_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.choice(["text", "int", "bool", "none", "list", "dict"] if depth < 3 else ["text", "int"])
    if kind == "text":
        return "".join(rng.choice("aZ09 ~*+-._&=[]/é€\n") for _ in range(rng.randint(0, 6)))
    if kind == "int":
        return rng.randint(-5, 10**12)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "none":
        return None
    if kind == "list":
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["a", "b c", "ü", "x[y]", "7"]): _random_value(rng, depth + 1) for _ in range(3)}


def test_fast_encoder_writes_the_same_bytes_as_flatten_and_quote() -> None:
    rng = random.Random(6)
    for _ in range(500):
        params = {f"k{i}": _random_value(rng) for i in range(rng.randint(1, 4))}
        assert proto.http_build_query(params) == _reference_query(params)


def test_clean_numbers_are_written_as_is() -> None:
    body = proto.http_build_query({"id": 5, "recipients": ["77011112233", "+7 701", {"recipient": "1", "na me": "A~"}]})
    assert body == ("id=5&recipients%5B0%5D=77011112233&recipients%5B1%5D=%2B7+701"
                    "&recipients%5B2%5D%5Brecipient%5D=1&recipients%5B2%5D%5Bna+me%5D=A%7E")


def test_normalize_keeps_converting_numeric_fields_only() -> None:
    data = {"id": "12", "text": "7", "counters": {"totalMsgNum": "3", "totalCost": "1.5", "bad": "x"},
            "items": [{"messageId": "x9"}, 5]}
    assert proto.normalize(data) == {"id": 12, "text": "7", "counters": {"totalMsgNum": 3, "totalCost": 1.5,
                                     "bad": "x"}, "items": [{"messageId": "x9"}, 5]}


FULLWIDTH = "".join(chr(0xFF10 + int(d)) for d in "77011112233")  # digits, but not ASCII ones


@pytest.mark.parametrize("value", ["77011112233", "0701111223", "770111", "7" * 16, "+77011112233", FULLWIDTH])
def test_clean_number_fast_path_agrees_with_the_rules(value: str) -> None:
    slow = value + " "  # the same number through the slow path (separators are stripped)
    try:
        expected = normalize_phone(slow)
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            normalize_phone(value)
    else:
        assert normalize_phone(value) == expected


# ------------------------------------------------------------------ portions


@respx.mock
def test_prefetched_portions_send_the_bodies_add_recipients_would(hook: MobizonHook) -> None:
    route = respx.post(f"{BASE}/service/campaign/addRecipients").mock(
        side_effect=lambda request: all_added(request, code="0", message_id="1"))
    rows = [f"7701{i:07d}" for i in range(1100)] + [{"recipient": "77019999999", "name": "Ann Lee"}]
    hook.add_recipients_in_portions(9, iter(rows), placeholders_flag=2, prefetch_portions=2)
    hook.add_recipients_in_portions(9, iter(rows), placeholders_flag=2, prefetch_portions=0)
    for start in range(0, len(rows), 500):
        hook.add_recipients(9, rows[start : start + 500], placeholders_flag=2)
    bodies = [call.request.content for call in route.calls]
    prefetched, inline, one_by_one = bodies[:3], bodies[3:6], bodies[6:]
    assert prefetched == inline == one_by_one
    assert len(prefetched) == 3 and prefetched[-1].endswith(b"&params%5BplaceholdersFlag%5D=2")


@respx.mock
def test_an_error_in_the_audience_surfaces_after_the_portions_before_it(hook: MobizonHook) -> None:
    route = respx.post(f"{BASE}/service/campaign/addRecipients").mock(side_effect=all_added)

    def audience():
        yield from (f"7701{i:07d}" for i in range(1000))
        raise SmsValidationError("row 1001 is bad", field="recipients")

    with pytest.raises(SmsValidationError, match="row 1001"):
        hook.add_recipients_in_portions(1, audience(), prefetch_portions=2)
    assert route.call_count == 2


@respx.mock
def test_a_failed_upload_stops_the_prefetch_worker(hook: MobizonHook) -> None:
    respx.post(f"{BASE}/service/campaign/addRecipients").mock(return_value=ok(None, code=8))
    read = []

    def audience():
        for i in range(10**6):
            read.append(i)
            yield f"7701{i:07d}"

    with pytest.raises(Exception, match="code 8"):
        hook.add_recipients_in_portions(1, audience(), prefetch_portions=2)
    # No pause: the hook joins its reader thread before the error leaves (concurrency.prefetch).
    assert len(read) <= 500 * 4, "the worker kept reading after the upload failed"
    assert not [t for t in threading.enumerate() if t.name in ("sms-prefetch", "sms-portions")]


def test_the_worker_counts_an_answer_only_once_the_next_body_is_written(
    hook: MobizonHook, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Sequential portions: between an answer and the next request's write the caller must have
    # the GIL to itself (the worker woken earlier took it at httpcore's connection check and held
    # the request back by its whole parse and count). Each request reaches this transport, waits
    # 0.2 s (a worker already woken would count meanwhile), notes what was counted, then is read.
    counted: list[int] = []
    at_arrival: list[list[int]] = []

    class Transport(httpx.BaseTransport):  # not MockTransport: that reads the body before its handler runs
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            time.sleep(0.2)
            at_arrival.append(list(counted))
            request.read()
            return ok([{"code": 0, "messageId": 1}])

    def client(base_url: str, timeout: float, verify: bool) -> httpx.Client:
        return httpx.Client(transport=Transport(), base_url=base_url)

    monkeypatch.setattr("airflow_sms_provider.hooks.mobizon.sync_client", client)
    result = hook.add_recipients_in_portions(1, [f"7701{i:07d}" for i in range(4)], portion=1,
                                             on_portion=lambda sent, _: counted.append(sent))  # fmt: skip
    assert at_arrival == [[], [], [1], [1, 2]]
    assert counted == [1, 2, 3, 4] and result.added == 4


@respx.mock
def test_answers_received_before_a_failed_request_are_still_counted(hook: MobizonHook) -> None:
    # The third request fails before its body is written: the second answer, never handed to the
    # worker, is counted by the caller, so the checkpoint after a failure covers both portions.
    route = respx.post(f"{BASE}/service/campaign/addRecipients").mock(side_effect=[
        ok([{"code": 0, "messageId": 1}]), ok([{"code": 0, "messageId": 2}]), httpx.ConnectError("down"),
        httpx.ConnectError("down"), httpx.ConnectError("down"), httpx.ConnectError("down"), httpx.ConnectError("down"),
    ])  # fmt: skip
    seen: list[int] = []
    with pytest.raises(Exception, match=r"down|connect"):
        hook.add_recipients_in_portions(1, [f"7701{i:07d}" for i in range(3)], portion=1,
                                        on_portion=lambda sent, _: seen.append(sent))  # fmt: skip
    assert route.call_count >= 3 and seen == [1, 2]


# ------------------------------------------------------------------ concurrency helpers


def test_prefetch_keeps_order_and_stays_bounded() -> None:
    produced = []

    def items():
        for i in range(50):
            produced.append(i)
            yield i

    out = []
    for value in prefetch(items(), depth=3):
        time.sleep(0.001)
        assert len(produced) - len(out) <= 3 + 2  # queue + the item being handed over
        out.append(value)
    assert out == list(range(50))
    assert list(prefetch(iter(range(5)), depth=0)) == list(range(5))
    assert list(yield_gil(range(100), every=7)) == list(range(100))


def test_ordered_map_bounds_calls_in_flight_and_keeps_order() -> None:
    lock, active, peak = threading.Lock(), [0], [0]

    def slow(i: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(random.random() / 200)
        with lock:
            active[0] -= 1
        return i * i

    assert list(ordered_map(slow, range(60), 4)) == [i * i for i in range(60)]
    assert 2 <= peak[0] <= 4
    with pytest.raises(ZeroDivisionError):
        list(ordered_map(lambda i: 1 // (i - 7), range(20), 3))


def test_gate_holds_every_worker_for_the_longest_pause() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    gate = Gate(clock=lambda: now[0], sleep=sleep)
    gate.wait()
    assert slept == []
    gate.pause(2.0)
    assert slept == [2.0]
    now[0] -= 1.5  # another worker looks 0.5 s into the first one's pause
    gate.wait()
    assert slept == [2.0, 1.5]


# ------------------------------------------------------------------ hook concurrency


@respx.mock
@pytest.mark.parametrize("concurrency", [1, 4])
def test_statuses_with_concurrency_are_complete_and_in_order(hook: MobizonHook, concurrency: int) -> None:
    answers = {"rate_limited": 2}

    def answer(request: httpx.Request) -> httpx.Response:
        ids = [v for k, v in parse_qsl(request.content.decode()) if k.startswith("ids[")]
        if ids[0] == "301" and answers["rate_limited"]:
            answers["rate_limited"] -= 1
            return ok(None, code=30)
        time.sleep(random.random() / 500)
        return ok([{"id": i, "status": "DELIVRD"} for i in ids])

    route = respx.post(f"{BASE}/service/message/getSMSStatus").mock(side_effect=answer)
    statuses = hook.get_sms_status(range(1, 1001), concurrency=concurrency)
    assert [s["id"] for s in statuses] == list(range(1, 1001))
    assert route.call_count == 12  # 10 calls and 2 rate-limited answers retried


def test_concurrency_must_be_positive(hook: MobizonHook) -> None:
    with pytest.raises(SmsValidationError, match="concurrency=0"):
        list(hook.iter_sms_status([1], concurrency=0))


@respx.mock
@pytest.mark.parametrize("concurrency", [1, 3])
def test_message_pages_with_concurrency(hook: MobizonHook, concurrency: int) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        fields = dict(parse_qsl(request.content.decode()))
        page, size = int(fields["pagination[currentPage]"]), int(fields["pagination[pageSize]"])
        items = [{"id": str(n)} for n in range(page * size, min((page + 1) * size, 523))]
        return ok({"items": items, "totalItemCount": "523"})

    route = respx.post(f"{BASE}/service/message/list").mock(side_effect=answer)
    ids = [m["id"] for m in hook.iter_messages({"campaignIds": [5]}, concurrency=concurrency, page_size=50)]
    assert ids == list(range(523))
    assert route.call_count == 11
    assert route.calls[0].request.content.decode() == (
        "criteria%5BcampaignIds%5D%5B0%5D=5&pagination%5BcurrentPage%5D=0&pagination%5BpageSize%5D=50"
    )


# ------------------------------------------------------------------ progress lines


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_every_tenth_or_interval_not_every_portion(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    log = logging.getLogger("test.progress")
    progress = ProgressLog(log, total=100_000, interval=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        for done in range(500, 100_001, 500):  # 200 portions, 0.05 s each: 10 s in all
            clock.now += 0.05
            progress.update(done)
        progress.finish()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 11  # each tenth, and the final line
    assert lines[0] == "Progress: 10,000 of 100,000 recipients (10%) in 1s, 10,000/s, ETA 9s"
    assert lines[-1].startswith("Progress: 100,000 of 100,000 recipients (100%) in 10s, 10,000/s")


def test_progress_without_total_logs_by_interval_with_resumed_start(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    log = logging.getLogger("test.progress2")
    progress = ProgressLog(log, interval=10.0, start=1000, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.progress2"):
        for done in range(1500, 61_001, 500):  # 120 portions, one per second
            clock.now += 1.0
            progress.update(done, "x added")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 12  # once per 10 s
    assert lines[0] == "Progress: 6,000 recipients in 10s, 500/s; x added"


# ------------------------------------------------------------------ spooling


def test_spool_splits_below_the_limit_with_a_header_per_part(tmp_path) -> None:
    with CsvSpool(["recipient", "name"], max_bytes=100, directory=str(tmp_path)) as spool:
        for i in range(20):
            spool.write([f"7701000{i:04d}", "Ann, \"Jr\"" if i == 3 else "Bo"])
        parts = spool.finish()
        assert len(parts) > 1 and sum(spool.part_rows) == spool.rows == 20
        for path in parts:
            data = Path(path).read_bytes()
            assert len(data) <= 100 and data.startswith(b"recipient,name\n")
        rows = list(spool.read())
        assert rows[3] == ["77010000003", 'Ann, "Jr"'] and len(rows) == 20
        with pytest.raises(SmsValidationError, match="alone is"):
            spool.write(["7" * 15, "x" * 200])
    assert not list(tmp_path.iterdir()), "the spool's files were not deleted"


def test_spool_of_plain_numbers_has_no_header(tmp_path) -> None:
    with CsvSpool(directory=str(tmp_path)) as spool:
        spool.write(["77011112233"])
        spool.write(["77011112234"])
        (part,) = spool.finish()
        assert Path(part).read_text() == "77011112233\n77011112234\n"


# ------------------------------------------------------------------ transport


def test_cached_url_is_the_one_httpx_builds() -> None:
    request = transport.Request("POST", "/service/campaign/get", "x", (("output", "json"), ("apiKey", "a b&c")))
    with httpx.Client(base_url="https://h.example/base") as client:
        expected = client.build_request("POST", request.path, params=list(request.params)).url
        assert transport._url(client, request) == expected
        assert transport._url(client, request) is transport._url(client, request)  # built once
        unhashable = transport.Request("GET", "/p", "x", [("a", ["1", "2"])])  # type: ignore[list-item]
        assert transport._url(client, unhashable) == "/p"


def test_clients_share_one_tls_context() -> None:
    a = transport.async_client("https://h.example", 5, True)
    b = transport.sync_client("https://h.example", 5, True)
    try:
        assert a._transport._pool._ssl_context is b._transport._pool._ssl_context
    finally:
        b.close()


@respx.mock
@pytest.mark.parametrize("prefetch_portions", [0, 2])
def test_results_are_counted_in_order_whatever_the_envelope_looks_like(
    hook: MobizonHook, prefetch_portions: int
) -> None:
    bodies = iter([
        b'{"code":0,"data":[{"code":0,"messageId":1},{"code":0,"messageId":2}],"message":""}',
        b'{ "code": "98", "data": [{"code": "5", "recipient": "7"}, {"code": "0", "messageId": "3"}] }',  # read at once
        b'{"code":99,"data":[{"code":4},{"code":4}],"message":""}',
        b'{"code":0,"data":[{"code":0,"messageId":4}],"message":""}',
    ])
    respx.post(f"{BASE}/service/campaign/addRecipients").mock(
        side_effect=lambda request: httpx.Response(200, content=next(bodies)))
    seen: list[tuple[int, int, int]] = []
    result = hook.add_recipients_in_portions(
        1, [f"7701{i:07d}" for i in range(7)], portion=2, prefetch_portions=prefetch_portions,
        on_portion=lambda sent, r: seen.append((sent, r.added, r.duplicates)),
    )
    assert result.message_ids == [1, 2, 3, 4] and result.rejected == 1
    assert seen == [(2, 2, 0), (4, 3, 0), (6, 3, 2), (7, 4, 2)]


@respx.mock
def test_a_garbled_accepted_answer_still_fails_the_upload(hook: MobizonHook) -> None:
    respx.post(f"{BASE}/service/campaign/addRecipients").mock(
        return_value=httpx.Response(200, content=b'{"code":0,"data":[{"code":0,'))
    with pytest.raises(Exception, match="not the API's JSON envelope"):
        hook.add_recipients_in_portions(1, [f"7701{i:07d}" for i in range(1500)], prefetch_portions=2)


# Accepted answers as a server might write them: the worker's fast count (msgspec, codes and ids only)
# must give exactly what the full parse gives, or raise the same error.
_ACCEPTED_BODIES = [
    b'{"code":0,"data":[{"code":0,"messageId":1},{"code":0,"messageId":2}],"message":""}',
    b'{"code":0,"data":[{"recipient":"77011112233","code":0,"messageId":"3","number":"x","extra":{"a":[1]}}]}',
    b'{"code":0,"data":[{"code":0,"messageId":null},{"code":0}]}',
    b'{"code":0,"data":[]}',
    b'{"code":0,"data":[{"code":"0","messageId":4}]}',  # a code as a string: the full parse decides
    b'{"code":0,"data":[{"code":0,"messageId":5},{"code":4,"recipient":"77011112233"}]}',
    b'{"code":0,"data":[{"code":0,"messageId":6},{"code":1}]}',
    b'{"code":0,"data":[{"code":false,"messageId":7}]}',
    b'{"code":0,"data":[{"code":0,"code":5,"messageId":8}]}',  # a repeated key: the last one counts
    b'{"code":0,"data":[{"code":0,"messageId":12345678901234567890123}]}',
    b'{"code":0,"data":[{"code":0,"messageId":"x"}]}',
    b'{"code":0,"data":{"code":0}}',
    b'{"code":0,"data":[{"code":0}],"data":[{"code":4}]}',
    b'{"code":0,"data":null}',
    b'{"code":0,"message":""}',
    b'{"code":0,"data":[0, "x"]}',
    b'{"code":98,"data":[{"code":0,"messageId":9},{"code":2}]}',
    b'{"code":99,"data":[{"code":2},{"code":3}]}',
]


@pytest.mark.parametrize("body", _ACCEPTED_BODIES)
@pytest.mark.parametrize("keep_ids", [0, 1, 100])
def test_the_fast_count_of_an_accepted_answer_is_the_full_parses(body: bytes, keep_ids: int) -> None:
    from airflow_sms_provider.hooks.mobizon import _PARSE_RESULTS, AddResult, _Books, _Unread

    data = json.loads(body).get("data")
    size = len(data) if isinstance(data, list) else 0  # the portion the answer is for: one result per recipient

    def counted(fast: bool, size: int = size) -> object:
        result = AddResult(message_ids=[99], added=1)  # what earlier portions counted
        books = _Books(result, keep_ids, 20, None, counted=500)
        try:
            books.record(_Unread(body) if fast else _PARSE_RESULTS(transport.Response(200, body, {})), 500 + size)
        except Exception as err:
            return type(err)
        return result

    assert body.startswith(hooks_mobizon._ACCEPTED)
    assert counted(fast=True) == counted(fast=False)
    # An answer with another count of results than the portion's recipients: which were added is unknown.
    for other in (size + 1, size - 1) if size else (1,):
        assert counted(fast=True, size=other) is counted(fast=False, size=other) is exc.SmsProtocolError
