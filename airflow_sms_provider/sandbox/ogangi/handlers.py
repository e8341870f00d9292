"""Ogangi API dispatch and handlers, and the sandbox-only admin routes under ``/_sandbox/ogangi/``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from airflow_sms_provider.sandbox.ogangi.rules import (
    _check_account,
    _check_signature,
    _read_rows,
    _recipients,
    _shortcode,
)
from airflow_sms_provider.sandbox.ogangi.state import Broadcast, OgangiState
from airflow_sms_provider.sandbox.ogangi.wire import (
    _NUMBER,
    _POSITIONAL,
    ABSENT,
    API_PATH,
    DATE_FORMAT,
    DEFAULT_CARRIER,
    ENCODINGS,
    FINISHED,
    INPUT_NAMES,
    MAX_KEPT_MESSAGES,
    MESSAGE_DESCRIPTIONS,
    METHODS,
    NAME,
    OK,
    RUNNING,
    SANDBOX_CLIENT_ID,
    SANDBOX_OGANGI_SHORTCODES,
    SCHEDULED,
    SMS_FILE_COLUMNS,
    STATUS_CODES,
    STOPPED,
    SUSPENDED,
    Failure,
    _iso,
    _method_of,
    _render,
    _split_path,
    xml_answer,
)

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState


# ---------------------------------------------------------------- handlers


@dataclass
class Call:
    st: OgangiState
    method: str
    params: dict[str, str]
    request: Request
    now: datetime


def get_shortcodes(call: Call) -> Any:
    return {"shortcodes": [("shortcode", {"sc": code}) for code in SANDBOX_OGANGI_SHORTCODES]}


async def send_sms_by_file(call: Call) -> Any:
    form = await call.request.form(max_files=2, max_fields=100)
    try:
        call.request.scope["sandbox.form_keys"] = sorted(form.keys())
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Failure("Missing POST parameter 'file'")
        limit = int(call.st.cfg["ogangi_max_upload_bytes"])
        content = await upload.read(limit + 1)
        name = upload.filename or ""
    finally:
        await form.close()
    if len(content) > limit:
        raise Failure(f"File too large: more than {limit} bytes")
    rows = _read_rows(name, content)
    messages = [("message", _file_message(call, index, row)) for index, row in enumerate(rows)]
    if not messages:
        raise Failure("The file is empty: no recipients")
    call.st.files.append({"filename": name, "bytes": len(content), "rows": len(messages)})
    for _, message in messages:
        if len(call.st.messages) < MAX_KEPT_MESSAGES:
            call.st.messages.append(dict(message))
    return {"messages": messages}


def _file_message(call: Call, index: int, row: list[str]) -> dict[str, Any]:
    cells = (row + [""] * len(SMS_FILE_COLUMNS))[: len(SMS_FILE_COLUMNS)]
    number, sender, carrier, text, encoding, zone = (cell.strip() for cell in cells)
    params = row[len(SMS_FILE_COLUMNS) :]
    encoding = encoding or "UTF-8"
    sender = sender or SANDBOX_OGANGI_SHORTCODES[0]
    if not _NUMBER.fullmatch(number):
        status = "BAD_TO"
    elif sender not in SANDBOX_OGANGI_SHORTCODES:
        status = "BAD_FROM"
    elif encoding.upper() not in ENCODINGS:
        status = "BAD_ENCODING"
    elif not text:
        status = "NOT_SENT"
    else:
        status = "SENT_TO_CARRIER"
    return {
        "id": str(-next(call.st._message_ids)),
        "carrier": carrier or DEFAULT_CARRIER,
        "from": sender,
        "to": number,
        "text": _render(text, _POSITIONAL, params),
        "status": status,
        "statusDescription": MESSAGE_DESCRIPTIONS[status],
        "encoding": encoding,
        "date": _iso(call.now),
        "timezone": zone or "UTC",
        "clientId": SANDBOX_CLIENT_ID,
    }


async def create_broadcast(call: Call) -> Any:
    body = await call.request.body()
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    call.request.scope["sandbox.form_keys"] = sorted(fields)
    if "to" not in fields:
        raise Failure("Missing POST parameter 'to'")
    recipients = _recipients(fields["to"])
    p = call.params
    shortcode = _shortcode(p["shortcode"], p["shortcodeIgnore"])
    start = _start(p["date"], call)
    name = None if p["campaignName"] == ABSENT else p["campaignName"]
    st = call.st
    if p["broadcastId"] == "-1":
        item = Broadcast(next(st._ids), name, shortcode, recipients[0]["text"], recipients, start, call.now)
        st.broadcasts[item.id] = item
    else:
        item = st.broadcast(p["broadcastId"])
        status = item.status(call.now, st.rate)
        if status != SCHEDULED:
            raise Failure(f"Broadcast {item.id} cannot be edited: it is {status}")
        item.name, item.shortcode, item.text, item.recipients = name, shortcode, recipients[0]["text"], recipients
        item.start = item.resumed_at = start
        item.edits += 1
    return {"broadcast": {
        "id": item.id,
        "text": item.text,
        "startDate": _iso(item.start),
        "expectedMessages": item.expected,
        "statusDescription": item.status(call.now, st.rate),
        "shortcode": item.shortcode,
    }}  # fmt: skip


def _start(value: str, call: Call) -> datetime:
    soon = call.now + timedelta(seconds=float(call.st.cfg["ogangi_start_delay"]))
    if value == ABSENT:
        return soon
    try:
        zone = ZoneInfo(str(call.st.cfg["ogangi_account_timezone"]))  # the instance's wall time
        when = datetime.strptime(value, DATE_FORMAT).replace(tzinfo=zone)
    except ValueError:
        raise Failure(f"Invalid date {value!r}: dd-MM-yyyy HH:mm or null is required") from None
    return max(when, soon)


def get_broadcast(call: Call) -> Any:
    st = call.st
    item = st.broadcast(call.params["broadcastId"])
    end = item.end_date(call.now, st.rate)
    return {"broadcast": {
        "id": item.id,
        "text": item.text,
        "startDate": _iso(item.start),
        "endDate": _iso(end) if end else None,
        "expectedMessages": item.expected,
        "sentMessages": item.sent(call.now, st.rate),
        "status": STATUS_CODES[item.status(call.now, st.rate)],
        "shortcode": item.shortcode,
    }}  # fmt: skip


def _transition(call: Call, verb: str, allowed: tuple[str, ...]) -> Broadcast:
    st = call.st
    item = st.broadcast(call.params["broadcastId"])
    status = item.status(call.now, st.rate)
    if status not in allowed:
        hint = "; stop or suspend it first" if verb == "deleted" else ""
        raise Failure(f"Broadcast {item.id} cannot be {verb}: it is {status}{hint}")
    item.calls[call.method] = item.calls.get(call.method, 0) + 1
    return item


def suspend_broadcast(call: Call) -> Any:
    item = _transition(call, "suspended", (SCHEDULED, RUNNING))
    item.sent_before = item.sending_seconds(call.now)
    item.state = "suspended"


def resume_broadcast(call: Call) -> Any:
    item = _transition(call, "resumed", (SUSPENDED,))
    item.state = "active"
    item.resumed_at = max(call.now, item.start)


def stop_broadcast(call: Call) -> Any:
    item = _transition(call, "stopped", (SCHEDULED, RUNNING, SUSPENDED))
    item.sent_before = item.sending_seconds(call.now)
    item.state, item.ended = "stopped", call.now


def delete_broadcast(call: Call) -> Any:
    item = _transition(call, "deleted", (SCHEDULED, SUSPENDED, FINISHED, STOPPED))
    item.sent_before = item.sending_seconds(call.now)
    item.state = "deleted"


HANDLERS: dict[str, Any] = {
    "tools/sendSMSByFile": send_sms_by_file,
    "getShortcodes": get_shortcodes,
    "createBroadcastFromJson": create_broadcast,
    "getBroadcast": get_broadcast,
    "suspendBroadcast": suspend_broadcast,
    "resumeBroadcast": resume_broadcast,
    "stopBroadcast": stop_broadcast,
    "broadcast": delete_broadcast,
}


# ---------------------------------------------------------------- dispatch


async def api(request: Request) -> Response:
    """``/mmc/rest/api/…``: the whole Ogangi API."""
    sandbox: SandboxState = request.app.state.sandbox
    st: OgangiState = sandbox.providers[NAME]  # looked up per call: reset() replaces it
    segments = _split_path(request)
    found = _method_of(segments) if segments else None
    if found is None:
        return PlainTextResponse("Not Found", status_code=404)
    method, rest = found
    names, verbs = METHODS[method]
    if request.method not in verbs:
        return PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": ", ".join(verbs)})
    st.calls[method] = st.calls.get(method, 0) + 1
    call = None
    try:
        if len(rest) != len(names) + 2:
            raise Failure(f"Wrong number of parameters: {method} takes {', '.join(names)}, publicKey, signature")
        values, public_key, given = rest[: len(names)], rest[-2], rest[-1]
        _check_signature(st, values, public_key, given)
        params = dict(zip(names, values, strict=True))
        _check_account(params)
        call = Call(st, method, params, request, sandbox.now())
        result = HANDLERS[method](call)
        if hasattr(result, "__await__"):
            result = await result
        status, description = OK, "Completed"
    except Failure as failure:
        result, status, description = None, failure.status, failure.description
    request.scope["sandbox.code"] = status
    root = str(st.cfg.get("ogangi_xml_root") or "")
    body = xml_answer(root, INPUT_NAMES.get(method, method), status, description, result)
    return Response(body, media_type="application/xml")


def new_state(sandbox: SandboxState) -> OgangiState:
    return OgangiState(sandbox)


def routes(sandbox: SandboxState) -> list[Route]:
    """The provider's API routes."""
    return [Route(API_PATH + "{rest:path}", api, methods=["GET", "POST", "DELETE", "PUT"])]


# ---------------------------------------------------------------- admin


async def admin_state(request: Request) -> Response:
    sandbox: SandboxState = request.app.state.sandbox
    return JSONResponse(sandbox.providers[NAME].snapshot(sandbox.now()))


def admin_routes(sandbox: SandboxState) -> list[Route]:
    """Sandbox-only routes under ``/_sandbox/ogangi/``."""
    return [Route("/_sandbox/ogangi/state", admin_state, methods=["GET"])]
