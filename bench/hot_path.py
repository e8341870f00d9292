"""Row 1's client work piece by piece, in one process, with no network and no server.

    .venv/bin/python -m bench.hot_path [N]             # per 1,000 recipients, best of 5 (whole: of 3)
    .venv/bin/python -m bench.hot_path [N] --profile   # cProfile of the whole upload, workers inline

CPU time (``time.process_time``, all threads), so a loaded machine disturbs it far less
than the wall-clock rows of ``make bench``. "whole" is ``MobizonAddRecipientsOperator.execute``
on a generator of N numbers over ``httpx.MockTransport`` answering a canned 500-result
answer; "limit-like" is the limit's own client work over the same transport.
"""

from __future__ import annotations

import cProfile
import functools
import json
import os
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any
from unittest import mock

import httpx

from bench.common import API_KEY, CONN_ID, phone, phones

N = 200_000


def _answer(count: int = 500) -> bytes:
    items = [{"recipient": phone(i), "code": 0, "messageId": 10**7 + i, "number": phone(i)} for i in range(count)]
    return json.dumps({"code": 0, "data": items, "message": ""}, separators=(",", ":")).encode()


ANSWER = _answer()
CAMPAIGN = b'{"code":0,"data":{"id":1,"text":"hi","type":1},"message":""}'


def _handler(request: httpx.Request) -> httpx.Response:
    body = request.read()
    if b"addRecipients" not in request.url.raw_path:
        return httpx.Response(200, content=CAMPAIGN)
    count = body.count(b"&recipients%5B")  # one result per recipient, as Mobizon answers
    return httpx.Response(200, content=ANSWER if count == 500 else _answer(count))


def _operator(n: int) -> Any:
    from airflow_sms_provider.operators.mobizon import MobizonAddRecipientsOperator

    return MobizonAddRecipientsOperator(task_id="t", mobizon_conn_id=CONN_ID, campaign_id=1,
                                        recipients=phones(0, n), expected_count=n)  # fmt: skip


def source(n: int) -> None:
    for _ in phones(0, n):
        pass


def stream(n: int) -> None:
    from airflow_sms_provider.recipients import DuplicateReport, RejectReport

    for _ in _operator(n)._portions(RejectReport(cap=0), "hi", DuplicateReport(cap=10)):
        pass


def producer(n: int) -> None:
    from airflow_sms_provider.hooks import mobizon as hooks
    from airflow_sms_provider.recipients import DuplicateReport, RejectReport

    settings = hooks.MobizonHook(mobizon_conn_id=CONN_ID).settings
    portions = _operator(n)._portions(RejectReport(cap=0), "hi", DuplicateReport(cap=10))
    for _ in hooks._portion_requests(settings, 1, portions, None):
        pass


def answers(n: int) -> None:
    from airflow_sms_provider.hooks.mobizon import AddResult, _Books, _Unread

    books = _Books(AddResult(), 100, 20, None)
    for portion in range(1, n // 500 + 1):
        books.record(_Unread(ANSWER), 500 * portion)  # rows sent so far: each answer is for 500 of them


def whole(n: int) -> None:
    from airflow_sms_provider.hooks import mobizon as hooks

    def client(base_url: str, timeout: float, verify: bool) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(_handler), base_url=base_url, timeout=timeout)

    with mock.patch.object(hooks, "sync_client", client):
        summary = _operator(n).execute({})
    assert summary["added"] == n, summary


def limit_like(n: int) -> None:
    client = httpx.Client(transport=httpx.MockTransport(_handler), base_url="http://sandbox")
    bodies = ["&".join(["id=1", *(f"recipients%5B{j}%5D={phone(i + j)}" for j in range(500))]).encode()
              for i in range(0, n, 500)]  # fmt: skip
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    started = time.process_time()
    for body in bodies:
        client.post("/service/campaign/addRecipients", content=body, headers=headers).read()
    _LIMIT.append(time.process_time() - started)


_LIMIT: list[float] = []


def best(piece: Callable[[int], None], n: int, repeats: int = 5) -> float:
    """Milliseconds of CPU per 1,000 recipients, the best of ``repeats``."""
    times = []
    for _ in range(repeats):
        started = time.process_time()
        piece(n)
        times.append(time.process_time() - started)
    if piece is limit_like:
        times = _LIMIT[-repeats:]
    return 1000 * min(times) / (n / 1000)


def main(argv: list[str]) -> None:
    n = next((int(a) for a in argv if a.isdigit()), N)
    conn = {"conn_type": "mobizon", "host": "http://127.0.0.1:9", "password": API_KEY}  # never dialled: MockTransport
    os.environ.setdefault("AIRFLOW_CONN_MOBIZON_DEFAULT", json.dumps(conn))
    import logging

    logging.disable(logging.INFO)  # progress lines are part of the work, but not of the output
    whole(20_000)  # warm-up: imports, connection lookup, first allocations
    if "--profile" in argv:
        from airflow_sms_provider.hooks import mobizon as hooks

        inline = functools.partialmethod(hooks.MobizonHook.add_recipient_portions, prefetch_portions=0)
        with mock.patch.object(hooks.MobizonHook, "add_recipient_portions", inline):
            profile = cProfile.Profile()
            profile.runcall(whole, n)
        order, top = os.environ.get("SORT", "tottime"), int(os.environ.get("TOP", "30"))
        pstats.Stats(profile).sort_stats(order).print_stats(top)
        return
    print(f"{n:,} recipients, CPU ms per 1,000")
    for name, piece, repeats in [
        ("the bench's generator of numbers alone", source, 5),
        ("stream: + validation, duplicates, portions", stream, 5),
        ("producer: + form encoding of each portion", producer, 5),
        ("answers: JSON parsing + counting", answers, 5),
        ("whole execute over MockTransport (all threads)", whole, 3),
        ("limit-like client over MockTransport", limit_like, 3),
    ]:
        print(f"  {name:<48} {best(piece, n, repeats):.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
