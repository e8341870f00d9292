"""BSG API endpoints and the sandbox-only admin routes under ``/_sandbox/bsg/``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_sms_provider.sandbox.bsg import callbacks
from airflow_sms_provider.sandbox.bsg.rules import (
    _check_count,
    _check_phone,
    _check_range,
    _check_reference,
    _check_sender,
    _check_tariffs,
    _check_text,
    _fill,
    _options,
)
from airflow_sms_provider.sandbox.bsg.state import (
    _CONFIG_PREFIX,
    _LIMIT_KEYS,
    DEFAULTS,
    Account,
    BsgState,
    Campaign,
    Message,
)
from airflow_sms_provider.sandbox.bsg.wire import (
    _DIGITS,
    _REFERENCE,
    CAMPAIGN_FILTERS,
    CAMPAIGN_PAGE_LIMITS,
    CAMPAIGN_SORTS,
    CURRENCY,
    DEFAULT_BALANCE,
    DEFAULT_PAGE_LIMIT,
    FORCEABLE,
    INVALID_DATA,
    INVALID_STATUS,
    MAX_ITEMS,
    MESSAGE_FILTERS,
    NAME,
    NOT_EMULATED_CHANNEL,
    OTHER_CHANNELS,
    PAGE_LIMITS,
    STOPPABLE,
    TARIFF,
    Errors,
    Reject,
    _invalid,
    _is_int,
    _parse_ts,
    parts_of,
)

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState


# ---------------------------------------------------------------- handlers


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class Call:
    """One authenticated API call."""

    st: BsgState
    account: Account
    body: Any
    raw: bytes
    path: str
    params: Mapping[str, str]
    path_params: Mapping[str, Any]
    now: datetime


def _body_object(call: Call) -> dict[str, Any]:
    if not isinstance(call.body, dict):
        errors = Errors()
        errors.add("body", "The request body must be a JSON object.")
        raise _invalid(errors)
    return call.body


def _objects(items: list[Any], key: str, errors: Errors) -> Iterator[tuple[int, dict[str, Any]]]:
    """The items of an array of objects with their index; any other item is an error at ``<key><index>``."""
    for i, item in enumerate(items):
        if isinstance(item, dict):
            yield i, item
        else:
            errors.add(f"{key}{i}", "This value should be of type object.")


def sms_send(call: Call) -> Reply:
    body = _body_object(call)
    errors = Errors()
    phones: Any = body.get("phones")  # a list once the checks below pass
    refs: set[str] = set()
    if _check_count(phones, "phones", errors):
        for i, item in _objects(phones, "phones", errors):
            _check_phone(item.get("number"), f"phones{i}number", errors)
            _check_reference(item.get("reference_id"), f"phones{i}reference_id", refs, errors)
    _check_sender(body.get("sender"), "sender", errors)
    _check_text(body.get("text"), "text", errors)
    options = _options(body, call.now, errors, call.st.zone())
    if errors:
        raise _invalid(errors)
    _check_tariffs(call.st, [body.get("tariff_code")])
    call.st.check_duplicate(call.account, call.path, call.raw, refs, call.now)
    rows = [{"phone": p["number"], "text": body["text"], "sender": body["sender"],
             "reference_id": p.get("reference_id")} for p in phones]  # fmt: skip
    camp = call.st.create(call.account, "send", rows, options, call.now)
    return Reply(200, {"data": call.st.campaign_view(camp, call.now, price=camp.price)})


def _group_contacts(st: BsgState, groups: Any, key: str, errors: Errors) -> list[dict[str, Any]]:
    """The contacts of the lists ``groups`` names, one per phone (a contact in two lists gets one SMS)."""
    contacts: list[dict[str, Any]] = []
    if not isinstance(groups, list) or not groups:
        errors.add(key, "This collection should contain 1 element or more.")
        return contacts
    for i, group_id in enumerate(groups):
        if not _is_int(group_id):
            errors.add(f"{key}{i}", "This value should be of type integer.")
        elif group_id not in st.groups:
            errors.add(f"{key}{i}", "Contact list not found.")
        else:
            contacts.extend(st.groups[group_id]["contacts"])
    return list({c["phone"]: c for c in contacts}.values())


def sms_send_groups(call: Call) -> Reply:
    body = _body_object(call)
    errors = Errors()
    groups: Any = body.get("groups")
    unique = _group_contacts(call.st, groups, "groups", errors)
    if len(unique) > MAX_ITEMS:
        errors.add("groups", f"The lists hold {len(unique)} contacts; a campaign takes at most {MAX_ITEMS}.")
    _check_sender(body.get("sender"), "sender", errors)
    _check_text(body.get("text"), "text", errors)
    options = _options(body, call.now, errors, call.st.zone())
    if errors:
        raise _invalid(errors)
    _check_tariffs(call.st, [body.get("tariff_code")])
    call.st.check_duplicate(call.account, call.path, call.raw, (), call.now)
    rows = [{"phone": c["phone"], "text": _fill(body["text"], c), "sender": body["sender"]} for c in unique]
    camp = call.st.create(call.account, "send-groups", rows, options, call.now, groups=list(groups))
    return Reply(200, {"data": call.st.campaign_view(camp, call.now, price=camp.price)})


def sms_send_individual(call: Call) -> Reply:
    body = _body_object(call)
    errors = Errors()
    messages: Any = body.get("messages")
    refs: set[str] = set()
    if _check_count(messages, "messages", errors):
        for i, item in _objects(messages, "messages", errors):
            _check_phone(item.get("phone"), f"messages{i}phone", errors)
            _check_text(item.get("text"), f"messages{i}text", errors)
            _check_sender(item.get("sender"), f"messages{i}sender", errors)
            _check_reference(item.get("reference_id"), f"messages{i}reference_id", refs, errors)
            _check_range(item.get("tariff_code"), f"messages{i}tariff_code", TARIFF, errors)
    options = _options(body, call.now, errors, call.st.zone())
    if errors:
        raise _invalid(errors)
    _check_tariffs(call.st, [body.get("tariff_code"), *(m.get("tariff_code") for m in messages)])
    call.st.check_duplicate(call.account, call.path, call.raw, refs, call.now)
    rows = [{key: m.get(key) for key in ("phone", "text", "sender", "reference_id")}
            | ({"tariff_code": m["tariff_code"]} if m.get("tariff_code") is not None else {})
            for m in messages]  # fmt: skip
    camp = call.st.create(call.account, "send-individual", rows, options, call.now)
    return Reply(200, {"data": call.st.campaign_view(camp, call.now, price=camp.price)})


def campaign_get(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.path_params["id"])
    return Reply(200, {"data": call.st.campaign_view(camp, call.now)})


def campaign_detail(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.path_params["id"])
    return Reply(200, {"data": call.st.detail_view(camp, call.now)})


def campaign_stop(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.path_params["id"])
    camp.stop_calls += 1
    if camp.status(call.now) not in STOPPABLE:
        raise Reject(422, {"message": INVALID_STATUS, "errors": []})
    camp.stopped_at = call.now
    return Reply(200, {"data": call.st.campaign_view(camp, call.now)})


def campaign_price(call: Call) -> Reply:
    """POST /api/campaigns/price: what sms/send (``messages``) or send-groups (``groups``) would cost.

    Nothing is created or charged. Each distinct phone costs the text's parts times
    ``bsg_sms_price``; the text is priced as written (``{12}`` placeholders unfilled: an estimate).
    """
    body = _body_object(call)
    errors = Errors()
    _check_sender(body.get("sender"), "sender", errors)
    _check_text(body.get("text"), "text", errors)
    _check_range(body.get("tariff_code"), "tariff_code", TARIFF, errors)
    messages, groups = body.get("messages"), body.get("groups")
    phones: set[int] = set()
    if messages is None and groups is None:
        errors.add("messages", "Give messages or groups: the recipients to price.")
    if messages is not None and _check_count(messages, "messages", errors):
        for i, item in _objects(messages, "messages", errors):
            phone: Any = item.get("phone")
            _check_phone(phone, f"messages{i}phone", errors)
            if _is_int(phone):
                phones.add(phone)
    if groups is not None:
        phones.update(c["phone"] for c in _group_contacts(call.st, groups, "groups", errors))
    if len(phones) > MAX_ITEMS:
        errors.add("messages", f"{len(phones)} recipients; a campaign takes at most {MAX_ITEMS}.")
    if errors:
        raise _invalid(errors)
    _check_tariffs(call.st, [body.get("tariff_code")])
    call.st.check_duplicate(call.account, call.path, call.raw, (), call.now)  # the spec lists its 429
    price = len(phones) * parts_of(body["text"]) * float(call.st.cfg("sms_price"))
    return Reply(200, {"price": round(price, 7), "currency": CURRENCY})


def _recipient_number(value: Any) -> Any:
    """``Phone.number`` is a string of 9-15 characters in the schema, a bare number in the
    examples (``number: 380661231231``): both are read, as digits."""
    return int(value) if isinstance(value, str) and _DIGITS.fullmatch(value) else value


def campaign_send(call: Call) -> Reply:
    """POST /api/campaigns/send: the any-channel campaign, emulated for ``channels: ["sms"]``.

    Recipients are ``recipients.phones`` (``{number, reference_id?}``) and/or the contacts of
    ``recipients.groups``, one message per distinct phone; the text is sent as written (this
    call's documents promise no placeholders). What the sandbox does not emulate is refused
    (422) rather than ignored: other channels, ``dry_run``, short links, unsubscribe captions
    and transliteration.
    """
    body = _body_object(call)
    errors = Errors()
    channels = body.get("channels")
    if not isinstance(channels, list) or not 1 <= len(channels) <= 2:
        errors.add("channels", "This collection should contain 1 to 2 elements.")
    elif channels != ["sms"]:
        errors.add("channels", NOT_EMULATED_CHANNEL)
    if body.get("dry_run"):
        errors.add("dry_run", "The sandbox does not emulate dry runs.")
    sms: Any = body.get("sms")
    if not isinstance(sms, dict):
        errors.add("sms", "This value should be of type object.")
        sms = {}
    _check_sender(sms.get("sender"), "smssender", errors)
    _check_text(sms.get("text"), "smstext", errors)
    for key in ("short_links", "unsubscribe_caption", "transliterate"):
        if sms.get(key):
            errors.add(f"sms{key}", f"The sandbox does not emulate {key}.")
    recipients: Any = body.get("recipients")
    targets: dict[int, str | None] = {}  # phone -> reference_id, first mention wins
    refs: set[str] = set()
    if not isinstance(recipients, dict) or ("phones" not in recipients and "groups" not in recipients):
        errors.add("recipients", "Give recipients.phones or recipients.groups.")
        recipients = {}
    phones = recipients.get("phones")
    if phones is not None and _check_count(phones, "recipientsphones", errors):
        for i, item in _objects(phones, "recipientsphones", errors):
            number = _recipient_number(item.get("number"))
            _check_phone(number, f"recipientsphones{i}number", errors)
            _check_reference(item.get("reference_id"), f"recipientsphones{i}reference_id", refs, errors)
            if _is_int(number):
                targets.setdefault(number, item.get("reference_id"))
    if recipients.get("groups") is not None:
        for contact in _group_contacts(call.st, recipients["groups"], "recipientsgroups", errors):
            targets.setdefault(contact["phone"], None)
    if len(targets) > MAX_ITEMS:
        errors.add("recipients", f"{len(targets)} recipients; a campaign takes at most {MAX_ITEMS}.")
    options = _options(body, call.now, errors, call.st.zone())
    if errors:
        raise _invalid(errors)
    _check_tariffs(call.st, [body.get("tariff_code")])
    call.st.check_duplicate(call.account, call.path, call.raw, refs, call.now)
    rows = [{"phone": phone, "text": sms["text"], "sender": sms["sender"], "reference_id": ref}
            for phone, ref in targets.items()]  # fmt: skip
    groups = recipients.get("groups") or []
    camp = call.st.create(call.account, "campaign-send", rows, options, call.now, groups=list(groups))
    return Reply(200, {"data": call.st.campaign_view(camp, call.now, price=camp.price)})


def other_channel(call: Call) -> Reply:
    """rcs/send, rcs/send-groups, viber/send, whatsapp/send: the sandbox emulates SMS only.

    A 422 naming the limit, not a 404 that would read as a wrong path."""
    errors = Errors()
    errors.add("channels", NOT_EMULATED_CHANNEL)
    raise _invalid(errors)


def campaigns_list(call: Call) -> Reply:
    """GET /api/campaigns: the account's campaigns. As in messages_list, a
    ``filter[...]``/``search[...]`` the spec does not define, or a value it refuses, is 422."""
    errors = Errors()
    offset = _query_int(call.params, "page[offset]", 0, errors) or 0
    limit = _query_int(call.params, "page[limit]", DEFAULT_PAGE_LIMIT, errors) or DEFAULT_PAGE_LIMIT
    if offset < 0:
        errors.add("pageoffset", "This value should be either positive or zero.")
    if not CAMPAIGN_PAGE_LIMITS[0] <= limit <= CAMPAIGN_PAGE_LIMITS[1]:
        low, high = CAMPAIGN_PAGE_LIMITS
        errors.add("pagelimit", f"This value should be between {low} and {high}.")
    for key in call.params:
        if key.startswith(("filter[", "search[")) and key not in CAMPAIGN_FILTERS:
            errors.add(key.replace("[", "").replace("]", ""), "This filter is not supported.")
    sort, way = call.params.get("sort", "id"), call.params.get("way", "asc")
    if sort not in CAMPAIGN_SORTS:
        errors.add("sort", "The value you selected is not a valid choice.")
    if way not in ("asc", "desc"):
        errors.add("way", "The value you selected is not a valid choice.")
    kind = call.params.get("filter[type]")
    if kind is not None and kind not in ("sms", "rcs", "whatsapp"):
        errors.add("filtertype", "The value you selected is not a valid choice.")
    field, value = call.params.get("search[field]"), call.params.get("search[value]")
    if field is not None and field not in ("sender", "taskname"):
        errors.add("searchfield", "The value you selected is not a valid choice.")
    if (field is None) != (value is None) or (value is not None and not 1 <= len(value) <= 255):
        errors.add("searchvalue", "Give search[field] and search[value] (1-255 characters) together.")
    bounds = _time_bounds(call, errors)
    if errors:
        raise _invalid(errors)
    found = [
        camp for camp in call.st.campaigns.values()
        if camp.owner == call.account.api_key and kind in (None, "sms") and _within(camp.created_at, bounds)
        and (value is None or value.lower() in _search_text(call.st, camp, field).lower())
    ]  # fmt: skip
    order: Callable[[Campaign], Any] = {
        "id": lambda c: c.id, "sender": lambda c: (c.sender, c.id), "type": lambda c: c.id,  # every one is sms
        "date": lambda c: (c.created_at, c.id), "status": lambda c: (c.status(call.now), c.id),
    }[sort]  # fmt: skip
    found.sort(key=order, reverse=way == "desc")
    page = [call.st.campaign_view(camp, call.now) for camp in found[offset : offset + limit]]
    return Reply(200, {"data": page, "meta": {"page": {"limit": limit, "offset": offset, "total": len(found)}}})


def _search_text(st: BsgState, camp: Campaign, field: str | None) -> str:
    return camp.sender if field == "sender" else st.campaign_name(camp)


def _query_int(params: Mapping[str, str], key: str, default: int | None, errors: Errors) -> int | None:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        errors.add(key.replace("[", "").replace("]", ""), "This value should be of type integer.")
        return default


def messages_list(call: Call) -> Reply:
    """GET /api/messages. A filter the spec does not define, or a value its schema refuses, is
    refused (422) rather than ignored: ignoring it would answer every message of the account."""
    errors = Errors()
    offset = _query_int(call.params, "page[offset]", 0, errors) or 0
    limit = _query_int(call.params, "page[limit]", DEFAULT_PAGE_LIMIT, errors) or DEFAULT_PAGE_LIMIT
    if offset < 0:
        errors.add("pageoffset", "This value should be either positive or zero.")
    if not PAGE_LIMITS[0] <= limit <= PAGE_LIMITS[1]:
        errors.add("pagelimit", f"This value should be between {PAGE_LIMITS[0]} and {PAGE_LIMITS[1]}.")
    for key in call.params:
        if key.startswith("filter[") and key not in MESSAGE_FILTERS:
            errors.add(key.replace("[", "").replace("]", ""), "This filter is not supported.")
    campaign_id = _query_int(call.params, "filter[campaign_id]", None, errors)
    message_id = _query_int(call.params, "filter[id]", None, errors)
    if message_id is not None and message_id < 1:
        errors.add("filterid", "This value should be greater than or equal to 1.")
    reference = call.params.get("filter[reference_id]")
    if reference is not None and not _REFERENCE.fullmatch(reference):
        errors.add("filterreference_id", "This value is not valid.")
    sort, way = call.params.get("sort", "id"), call.params.get("way", "asc")
    if sort not in ("id", "phone", "delivered"):
        errors.add("sort", "The value you selected is not a valid choice.")
    if way not in ("asc", "desc"):
        errors.add("way", "The value you selected is not a valid choice.")
    bounds = _time_bounds(call, errors)
    if errors:
        raise _invalid(errors)
    rows = [
        call.st.message_view(camp, msg, call.now)
        for camp, msg in _messages(call, campaign_id, reference)
        if (message_id is None or msg.id == message_id) and _within(camp.created_at, bounds)
    ]
    key = {"id": "id", "phone": "phone", "delivered": "delivered_at"}[sort]
    rows.sort(key=lambda row: (row[key] is not None, row[key] or 0), reverse=way == "desc")
    page = rows[offset : offset + limit]
    return Reply(200, {"data": page, "meta": {"page": {"limit": limit, "offset": offset, "total": len(rows)}}})


def _messages(call: Call, campaign_id: int | None, reference: str | None) -> Iterable[tuple[Campaign, Message]]:
    if reference is not None:
        msg = call.st.by_reference.get((call.account.api_key, reference))
        if msg is not None:
            camp = call.st.campaigns[call.st.message_campaign[msg.id]]
            if campaign_id is None or camp.id == campaign_id:
                yield camp, msg
        return
    for camp in call.st.campaigns.values():
        if camp.owner == call.account.api_key and (campaign_id is None or camp.id == campaign_id):
            for msg in camp.messages:
                yield camp, msg


def _time_bounds(call: Call, errors: Errors) -> list[datetime | None]:
    """``filter[from]`` and ``filter[to]`` (either may be absent), read in the account's zone; a bad one is an error."""
    bounds: list[datetime | None] = []
    for key in ("filter[from]", "filter[to]"):
        raw = call.params.get(key)
        bounds.append(_parse_ts(raw, call.st.zone()) if raw is not None else None)
        if raw is not None and bounds[-1] is None:
            errors.add(key.replace("[", "").replace("]", ""), "This value is not a valid datetime.")
    return bounds


def _within(moment: datetime, bounds: list[datetime | None]) -> bool:
    """Bounds compare with the time as answers show it, to the second: a ``filter[to]`` copied from
    an answer's ``created_at`` includes that item."""
    start, end = bounds
    moment = moment.replace(microsecond=0)
    return (start is None or moment >= start) and (end is None or moment <= end)


def balance(call: Call) -> Reply:
    return Reply(200, {"data": {"balance": round(call.account.balance, 4), "currency": CURRENCY, "credit": 0.0}})


# ---------------------------------------------------------------- HTTP


Handler = Callable[[Call], Reply]


def _state(request: Request) -> tuple[SandboxState, BsgState]:
    sandbox: SandboxState = request.app.state.sandbox
    return sandbox, sandbox.providers[NAME]  # looked up per call: reset() replaces it


def _answer(request: Request, status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    request.scope["sandbox.code"] = status
    return JSONResponse(body, status_code=status, headers=headers)


async def _json_body(request: Request) -> tuple[Any, bytes]:
    raw = await request.body()
    try:
        return (json.loads(raw) if raw else None), raw
    except ValueError:
        return ..., raw  # Ellipsis: not JSON at all


def _authorized(request: Request, st: BsgState, now: datetime) -> tuple[Account, dict[str, Any]] | Response:
    """The caller's account and token claims, or the 401 to answer (counted in ``unauthorized``)."""
    try:
        return st.account_for(request.headers.get("authorization"), now)
    except Reject as exc:
        st.stats["unauthorized"] += 1
        return _answer(request, exc.status, exc.body)


def _api(handler: Handler, creates: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """An authenticated JSON endpoint around ``handler``; ``creates``: subject to the creation limits."""

    async def endpoint(request: Request) -> Response:
        sandbox, st = _state(request)
        now = sandbox.now()
        auth = _authorized(request, st, now)
        if isinstance(auth, Response):
            return auth
        account = auth[0]
        body, raw = await _json_body(request)
        if body is ...:
            return _answer(request, 400, {"message": "The request body is not valid JSON."})
        if creates:
            refused = st.admit_create()
            if refused is not None:
                return _answer(request, refused.status, refused.body, st.retry_after_header())
        try:
            if creates and float(st.cfg("create_ms") or 0) > 0:
                # The wait comes before the handler, never inside it: check and creation stay atomic.
                await asyncio.sleep(float(st.cfg("create_ms")) / 1000)
                now = sandbox.now()
            call = Call(st, account, body, raw, request.url.path, request.query_params, request.path_params, now)
            try:
                with st.lock:
                    reply = handler(call)
            except Reject as exc:
                return _answer(request, exc.status, exc.body)
            return _answer(request, reply.status, reply.body)
        finally:
            if creates:
                st.limits["in_flight"] -= 1

    return endpoint


async def login(request: Request) -> Response:
    sandbox, st = _state(request)
    body, _ = await _json_body(request)
    key = body.get("api_key") if isinstance(body, dict) else None
    if not isinstance(key, str) or not key:
        errors = Errors()
        errors.add("api_key", "This value should not be blank.")
        return _answer(request, 422, {"message": INVALID_DATA, "errors": errors.fields})
    account = st.accounts.get(key)
    if account is None:
        st.stats["failed_logins"] += 1
        return _answer(request, 401, {"code": 401, "message": "Invalid credentials."})
    st.stats["logins"] += 1
    return _answer(request, 200, {"bearer": st.issue_token(account, sandbox.now())})


async def refresh(request: Request) -> Response:
    sandbox, st = _state(request)
    now = sandbox.now()
    auth = _authorized(request, st, now)
    if isinstance(auth, Response):
        return auth
    account, claims = auth
    st.revoked.add(claims["jti"])  # the old token stops working, as with a real refresh
    st.stats["refreshes"] += 1
    return _answer(request, 200, {"bearer": st.issue_token(account, now)})


async def not_found(request: Request) -> Response:
    return _answer(request, 404, {"message": "Not Found"})


def new_state(sandbox: SandboxState) -> BsgState:
    return BsgState(sandbox)


def routes(sandbox: SandboxState) -> list[Route]:
    """The provider's API routes."""
    return [
        Route("/api/auth/login", login, methods=["POST"]),
        Route("/api/auth/refresh", refresh, methods=["POST"]),
        Route("/api/accounts/balance", _api(balance), methods=["GET"]),
        Route("/api/campaigns/sms/send", _api(sms_send, creates=True), methods=["POST"]),
        Route("/api/campaigns/sms/send-groups", _api(sms_send_groups, creates=True), methods=["POST"]),
        Route("/api/campaigns/sms/send-individual", _api(sms_send_individual, creates=True), methods=["POST"]),
        Route("/api/campaigns/send", _api(campaign_send, creates=True), methods=["POST"]),
        Route("/api/campaigns/price", _api(campaign_price), methods=["POST"]),
        Route("/api/campaigns", _api(campaigns_list), methods=["GET"]),
        *(Route(f"/api/campaigns/{path}", _api(other_channel), methods=["POST"]) for path in OTHER_CHANNELS),
        Route("/api/campaigns/{id:int}", _api(campaign_get), methods=["GET"]),
        Route("/api/campaigns/{id:int}/detail", _api(campaign_detail), methods=["GET"]),
        Route("/api/campaigns/{id:int}/stop", _api(campaign_stop), methods=["PATCH"]),
        Route("/api/messages", _api(messages_list), methods=["GET"]),
        Route("/api/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]


# ---------------------------------------------------------------- admin


async def admin_state(request: Request) -> Response:
    """``GET /_sandbox/bsg/state[?messages=false]``: accounts, auth counters, campaigns."""
    sandbox, st = _state(request)
    with_messages = request.query_params.get("messages", "true").lower() not in ("0", "false", "no")
    return JSONResponse(st.snapshot(sandbox.now(), with_messages))


async def admin_config(request: Request) -> Response:
    """``POST /_sandbox/bsg/config {"jwt_ttl": 5, ...}``: change BSG settings until the next reset."""
    sandbox, _ = _state(request)
    try:
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("send a JSON object")
        changes = {key if key.startswith(_CONFIG_PREFIX) else _CONFIG_PREFIX + key: value
                   for key, value in body.items()}  # fmt: skip
        unknown = sorted(set(changes) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"unknown BSG config keys: {unknown}; known: {sorted(DEFAULTS)}")
        for key in _LIMIT_KEYS & set(changes):
            value = changes[key]
            if not (value is None and key == "bsg_retry_after") and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
            ):
                raise ValueError(f"{key[len(_CONFIG_PREFIX) :]!r} must be a number >= 0")
        if "bsg_account_timezone" in changes:
            try:
                ZoneInfo(str(changes["bsg_account_timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"account_timezone={changes['bsg_account_timezone']!r} is not an IANA zone") from None
        sandbox.configure(changes)
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({key[len(_CONFIG_PREFIX) :]: sandbox.config[key] for key in DEFAULTS})


async def admin_revoke(request: Request) -> Response:
    """``POST /_sandbox/bsg/revoke``: every token issued so far stops working (next call: 401)."""
    _, st = _state(request)
    st.revoked_upto = st.last_token_id
    return JSONResponse({"revoked_tokens_upto": st.revoked_upto})


async def admin_force_status(request: Request) -> Response:
    """``POST /_sandbox/bsg/campaigns/{id}/status {"status": "spam"|"paused"|"moderation"}``."""
    sandbox, st = _state(request)
    camp = st.campaigns.get(request.path_params["id"])
    if camp is None:
        return JSONResponse({"error": "no such campaign"}, status_code=404)
    try:
        status = (await request.json()).get("status")
    except (ValueError, AttributeError):
        status = None
    if status not in FORCEABLE:
        return JSONResponse({"error": f"status must be one of {list(FORCEABLE)}"}, status_code=400)
    camp.forced = (status, sandbox.now())
    return JSONResponse(st.campaign_view(camp, sandbox.now()))


async def admin_group(request: Request) -> Response:
    """``POST /_sandbox/bsg/groups {"id": 7, "name": "...", "contacts": [{"phone": 380..., "fields": {"12": ...}}]}``.

    ``fields``: custom-field values by numeric field id (what send-groups' ``{12}`` takes)."""
    _, st = _state(request)
    try:
        spec = await request.json()
        group_id = int(spec["id"])
        contacts = [
            {"phone": int(c["phone"]), "fields": {str(int(k)): str(v) for k, v in (c.get("fields") or {}).items()}}
            for c in spec.get("contacts", [])
        ]
    except (ValueError, KeyError, TypeError) as exc:
        return JSONResponse({"error": f"bad group: {exc}"}, status_code=400)
    st.groups[group_id] = {"name": str(spec.get("name", f"Group {group_id}")), "contacts": contacts}
    return JSONResponse({"id": group_id, "contacts": len(contacts)})


async def admin_account(request: Request) -> Response:
    """``POST /_sandbox/bsg/accounts {"api_key": "live_...", "balance": 100}``: add or replace an account."""
    _, st = _state(request)
    try:
        spec = await request.json()
        key = spec["api_key"]
        if not isinstance(key, str) or not key or not key.isprintable():
            raise ValueError("api_key must be a non-empty printable string")
        account = Account(key, float(spec.get("balance", DEFAULT_BALANCE)))
    except (ValueError, KeyError, TypeError) as exc:
        return JSONResponse({"error": f"bad account: {exc}"}, status_code=400)
    st.accounts[key] = account
    return JSONResponse({"api_key": "***" + key[-4:], "balance": account.balance})


def admin_routes(sandbox: SandboxState) -> list[Route]:
    """Sandbox-only routes under ``/_sandbox/bsg/``."""
    return [
        Route("/_sandbox/bsg/accounts", admin_account, methods=["POST"]),
        Route("/_sandbox/bsg/state", admin_state, methods=["GET"]),
        Route("/_sandbox/bsg/config", admin_config, methods=["POST"]),
        Route("/_sandbox/bsg/revoke", admin_revoke, methods=["POST"]),
        Route("/_sandbox/bsg/campaigns/{id:int}/status", admin_force_status, methods=["POST"]),
        Route("/_sandbox/bsg/groups", admin_group, methods=["POST"]),
        *callbacks.admin_routes(),
    ]
