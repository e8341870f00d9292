"""Module/method handlers, the ``/service/`` route and the admin routes."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from airflow_sms_provider.sandbox.mobizon import webhooks
from airflow_sms_provider.sandbox.mobizon.rules import (
    CONTACT_GROUPS,
    DEFAULT_BALANCE,
    DEFAULT_CURRENCY,
    DEFAULT_SENDER,
    DELETE_MIN_LEAD,
    MAX_IDS,
    MAX_RECIPIENTS,
    NAME,
    NOT_YET_SENT,
    PAGE_SIZES,
    R_ADDED,
    R_EMPTY,
    RECIPIENT_MESSAGES,
    campaign_fields,
)
from airflow_sms_provider.sandbox.mobizon.sources import (
    _rows_from_contacts,
    _rows_from_groups,
    _rows_from_recipients,
    rows_from_file,
)
from airflow_sms_provider.sandbox.mobizon.state import (
    Account,
    Campaign,
    MobizonState,
    Row,
    _account_view,
)
from airflow_sms_provider.sandbox.mobizon.wire import (
    AUTH,
    BACKGROUND,
    BAD_FORMAT,
    BAD_METHOD,
    BAD_MODULE,
    BLOCKED,
    DATA_UPDATE,
    INCORRECT_PARAM,
    MISSING_PARAM,
    NOT_FOUND,
    NOTHING_DONE,
    OK,
    PARTIALLY_DONE,
    RATE_LIMITED,
    WRONG_DOMAIN,
    Invalid,
    Reply,
    Upload,
    _digits,
    _envelope,
    _Errors,
    _form_keys,
    _ids,
    _int,
    _money,
    _parse_ts,
    _present,
    _read_body,
    _ts,
    _values,
    output_format,
    php_parse,
)

if TYPE_CHECKING:
    from airflow_sms_provider.sandbox.state import SandboxState

# ---------------------------------------------------------------- handlers


@dataclass
class Call:
    """One authenticated API call."""

    st: MobizonState
    account: Account
    params: dict[str, Any]
    files: dict[str, Upload]
    now: datetime


Handler = Callable[[Call], "Reply | Awaitable[Reply]"]


def user_get_own_balance(call: Call) -> Reply:
    return Reply(OK, {"balance": _money(call.account.balance), "currency": call.account.currency})


def campaign_create(call: Call) -> Reply:
    data = call.params.get("data")
    fields = campaign_fields(data if isinstance(data, dict) else {}, call.now, zone=call.st.zone())
    camp = call.st.new_campaign(call.account.api_key, fields, call.now)
    return Reply(OK, camp.id)


def _placeholders_flag(params: Mapping[str, Any]) -> int:
    flag = _int(params.get("placeholdersFlag"), 1)
    if flag not in (1, 2, 3):
        raise Invalid("placeholdersFlag", "placeholdersFlag must be 1, 2 or 3")
    return flag


def _recipient_kind(call: Call) -> str:
    kinds = [k for k in ("recipients", "recipientContacts", "recipientGroups") if _present(call.params.get(k))]
    kinds += [k for k in ("recipientsFile",) if k in call.files]
    if len(kinds) != 1:
        raise Invalid("recipients", "give exactly one of recipients, recipientContacts, recipientGroups, "
                      "recipientsFile", INCORRECT_PARAM)  # fmt: skip
    return kinds[0]


async def campaign_add_recipients(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("id"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    camp.add_calls += 1
    kind = _recipient_kind(call)
    if camp.locked:
        return Reply(DATA_UPDATE, None, "the campaign is locked by another recipient upload")
    if camp.sent_at is not None:
        return Reply(DATA_UPDATE, None, "the campaign status does not allow adding recipients")
    options = call.params.get("params")
    options = options if isinstance(options, dict) else {}
    flag = _placeholders_flag(options)
    replace = _int(options.get("replace"), 0) == 1
    if kind in ("recipientGroups", "recipientsFile"):
        return _start_import(call, camp, kind, options, flag, replace)
    rows = (_rows_from_recipients if kind == "recipients" else _rows_from_contacts)(call.params[kind])
    if len(rows) > MAX_RECIPIENTS:
        return Reply(INCORRECT_PARAM, None, f"at most {MAX_RECIPIENTS} recipients per call")
    return await _add_locked(call, camp, rows, flag, replace)


async def _add_locked(call: Call, camp: Campaign, rows: list[Row], flag: int, replace: bool) -> Reply:
    camp.busy = True  # set before the first await: concurrent calls see the lock
    try:
        # Hold the lock (and yield) so concurrent uploads overlap as they would on the real server.
        await asyncio.sleep(float(call.st.cfg["add_recipients_hold"]))
        if replace:
            call.st.clear_recipients(camp)
        results = call.st.add_rows(camp, rows, flag)
    finally:
        camp.busy = False
    added = sum(1 for result in results if result["code"] == R_ADDED)
    if added == len(results):
        return Reply(OK, results)
    if added:
        return Reply(PARTIALLY_DONE, results, "some recipients were not added")
    return Reply(NOTHING_DONE, results, "no recipients were added")


def _start_import(call: Call, camp: Campaign, kind: str, options: Mapping[str, Any], flag: int, replace: bool) -> Reply:
    error = None
    group_ids: list[str] = []
    if kind == "recipientGroups":
        group_ids = [str(g) for g in _values(call.params[kind])]
        unknown = [g for g in group_ids if g not in CONTACT_GROUPS]
        if unknown:
            raise Invalid("recipientGroups", f"groups not found: {', '.join(unknown)}")
        rows = _rows_from_groups(group_ids)
    else:
        rows, error = rows_from_file(call.files[kind], options, camp.type == 3)
    if replace:
        call.st.clear_recipients(camp)
    task = call.st.start_task(camp, rows, flag, call.now, error=error, group_ids=group_ids)
    return Reply(BACKGROUND, task.id, "recipients are being added in the background")


def campaign_send(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("id"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    camp.send_calls += 1
    if camp.locked:
        return Reply(DATA_UPDATE, None, "recipients are still being added to the campaign")
    if camp.sent_at is not None:
        return Reply(DATA_UPDATE, None, "the campaign has already been sent")
    if not camp.messages:
        return Reply(DATA_UPDATE, None, "the campaign has no recipients")
    return Reply(OK, call.st.send(camp, call.account, call.now))


def campaign_get(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("id"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    return Reply(OK, call.st.campaign_row(camp, call.now))


def campaign_get_info(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("id"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    filled = _int(call.params.get("getFilledTplCampaignText"), 1) == 1
    return Reply(OK, call.st.campaign_info(camp, call.now, filled))


def campaign_delete(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("id"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    status = call.st.status(camp, call.now)
    line = call.st.timeline(camp)
    deferred_ok = bool(
        camp.deferred_to and line and status in ("MODERATION", "READY_FOR_SEND")
        and line.start - call.now >= DELETE_MIN_LEAD
    )  # fmt: skip
    if camp.locked or not (status in ("NEW", "MODERATION", "DECLINED") or deferred_ok):
        return Reply(DATA_UPDATE, None, "the campaign cannot be deleted: its sending has started")
    camp.deleted = True
    call.account.balance += camp.charged  # nothing was sent: give the money back
    camp.charged = 0.0
    return Reply(OK, None)


def campaign_get_links(call: Call) -> Reply:
    camp = call.st.campaign(call.account, call.params.get("campaignId"))
    if camp is None:
        return Reply(NOT_FOUND, None, "campaign not found")
    links = [
        {"id": str(link.id), "code": link.code, "fullLink": link.full, "shortLink": link.short,
         "clickCnt": "0", "redirectCnt": "0", "comment": ""}
        for link in camp.links
    ]  # fmt: skip
    return Reply(OK, links)


# ------------------------------------------------------------ list helpers


def _pagination(params: Mapping[str, Any]) -> tuple[int, int]:
    pagination = params.get("pagination")
    pagination = pagination if isinstance(pagination, dict) else {}
    size = _int(pagination.get("pageSize"), 25)
    if size not in PAGE_SIZES:
        raise Invalid("pageSize", "pageSize must be 25, 50 or 100", INCORRECT_PARAM)
    page = _int(pagination.get("currentPage"), 0)
    if page is None or page < 0:
        raise Invalid("currentPage", "currentPage must be an integer from 0", INCORRECT_PARAM)
    return size, page


def _sorting(params: Mapping[str, Any], allowed: Iterable[str]) -> tuple[str, bool]:
    sort = params.get("sort")
    if not isinstance(sort, dict) or not sort:
        return "id", False
    name, direction = next(iter(sort.items()))
    if name not in allowed or str(direction).upper() not in ("ASC", "DESC"):
        raise Invalid("sort", f"sort by one of {', '.join(allowed)} with ASC or DESC", INCORRECT_PARAM)
    return name, str(direction).upper() == "DESC"


def _page(rows: list[dict[str, Any]], params: Mapping[str, Any], allowed: tuple[str, ...]) -> Reply:
    size, page = _pagination(params)
    name, descending = _sorting(params, allowed)

    def key(row: dict[str, Any]) -> tuple[int, Any]:
        value: Any = row
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return 0, 0  # nulls first in ascending order
        if isinstance(value, str) and re.fullmatch(r"\d+(\.\d+)?", value):
            return 1, float(value)  # numbers travel as strings but sort as numbers
        return 2, str(value)

    rows.sort(key=key, reverse=descending)
    return Reply(OK, {"items": rows[page * size : (page + 1) * size], "totalItemCount": str(len(rows))})


def _time_range(criteria: Mapping[str, Any], prefix: str) -> tuple[datetime | None, datetime | None]:
    bounds = []
    for suffix in ("From", "To"):
        value = criteria.get(prefix + suffix)
        moment = _parse_ts(value) if _present(value) else None
        if _present(value) and moment is None:
            raise Invalid(prefix + suffix, "dates must be in the format YYYY-MM-DD HH:MM:SS", INCORRECT_PARAM)
        bounds.append(moment)
    return bounds[0], bounds[1]


def _in_range(moment: str | None, bounds: tuple[datetime | None, datetime | None]) -> bool:
    start, end = bounds
    if start is None and end is None:
        return True
    when = _parse_ts(moment) if moment else None
    return when is not None and (start is None or when >= start) and (end is None or when <= end)


def _status_matches(st: MobizonState, camp: Campaign, wanted: str, now: datetime) -> bool:
    status = st.status(camp, now)
    if wanted == "NOT_YET_SENT":
        return status in NOT_YET_SENT
    if wanted == "DEFERRED":
        return bool(camp.deferred_to and camp.deferred_to > now and status in ("MODERATION", "READY_FOR_SEND"))
    if wanted == "AUTO_READY_FOR_SEND":
        return status == "READY_FOR_SEND" and not camp.moderated
    return status == wanted


def _criteria(params: Mapping[str, Any]) -> dict[str, Any]:
    criteria = params.get("criteria")
    return criteria if isinstance(criteria, dict) else {}


def campaign_list(call: Call) -> Reply:
    criteria = _criteria(call.params)
    created = _time_range(criteria, "createTs")
    sent = _time_range(criteria, "sentTs")
    ids = set(_ids(criteria.get("ids"))[:MAX_IDS]) if _present(criteria.get("ids")) else None
    rows = []
    for camp in call.st.campaigns.values():
        if camp.owner != call.account.api_key or camp.deleted:
            continue
        if not _campaign_matches(call, camp, criteria, ids):
            continue
        info = call.st.campaign_info(camp, call.now)
        if _in_range(info["createTs"], created) and _in_range(info["startSendTs"], sent):
            rows.append(info)
    allowed = ("id", "name", "from", "counters.totalMsgNum", "counters.totalCost", "createTs", "startSendTs",
               "endSendTs")  # fmt: skip
    return _page(rows, call.params, allowed)


def _campaign_matches(call: Call, camp: Campaign, criteria: Mapping[str, Any], ids: set[int] | None) -> bool:
    checks = [
        ("id", lambda v: camp.id == _int(v)),
        ("recipient", lambda v: any(_digits(v) in number for number in camp.messages)),
        ("from", lambda v: camp.sender == v),
        ("text", lambda v: camp.text == v),
        ("status", lambda v: _status_matches(call.st, camp, str(v).upper(), call.now)),
        ("type", lambda v: camp.type == _int(v)),
        ("groups", lambda v: bool(set(map(str, _values(v))) & set(camp.group_ids))),
    ]
    if ids is not None and camp.id not in ids:
        return False
    return all(check(criteria[key]) for key, check in checks if _present(criteria.get(key)))


# Criteria the one-campaign path answers without walking every message (see _one_campaign_in_id_order).
_UPDATE_BOUNDS = ("statusUpdateTsFrom", "statusUpdateTsTo")


def _one_campaign_in_id_order(call: Call, criteria: Mapping[str, Any]) -> Campaign | None:
    """The campaign whose messages a plain "messages of campaign X by id" list reads, else None.

    Such a list needs no per-message filtering or sorting (a campaign's messages are kept in
    id order), so a page is a slice: paging through a million messages stays linear. A
    ``statusUpdateTsFrom``/``To`` bound (an incremental delivery report) is allowed too: see
    :func:`_updated_between`.
    """
    present = {k for k, v in criteria.items() if _present(v)}
    if "campaignIds" not in present or not present <= {"campaignIds", *_UPDATE_BOUNDS}:
        return None
    if _present(call.params.get("sort")) and call.params.get("sort") not in ({"id": "ASC"}, {"id": "asc"}):
        return None
    ids = set(_ids(criteria.get("campaignIds"))[:MAX_IDS])
    camps = [c for c in call.st.campaigns.values()
             if c.id in ids and c.owner == call.account.api_key and not c.deleted]  # fmt: skip
    return camps[0] if len(camps) == 1 else None


def _first(lo: int, hi: int, past: Callable[[int], bool]) -> int:
    """The first index in [lo, hi) where ``past`` holds (false, then true along the range), else hi."""
    while lo < hi:
        mid = (lo + hi) // 2
        if past(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _updated_between(
    call: Call, camp: Campaign, bounds: tuple[datetime | None, datetime | None]
) -> list[range] | None:
    """Positions in ``camp.ordered`` of the messages whose statusUpdateTs is within ``bounds``, in id order.

    What the general path finds by building every message's row, found by bisection: a message
    has no statusUpdateTs until it is accepted, ``accepted(i)`` while in flight and ``final(i)``
    once final, and both grow with the sending order, so the final messages are a prefix
    ([0, done)), those in flight the next run ([done, sent)), and within each run the matching
    ones are a range. None (walk every message) when a partially delivered message exists:
    its time after the validity is not on that line.
    """
    if camp.partial_index >= 0:
        return None
    line = call.st.timeline(camp)
    if line is None or camp.declined or call.now < line.approve:
        return []  # no message has a statusUpdateTs yet, so none is within a bound
    now, count = call.now, len(camp.ordered)
    done = _first(0, count, lambda i: line.final(i) > now)
    sent = _first(done, count, lambda i: line.accepted(i) > now)
    start, end = bounds

    def within(lo: int, hi: int, moment: Callable[[int], datetime]) -> range:
        # Compared as the general path compares: the row's whole-second text, read back.
        def wall(i: int) -> datetime:
            return _parse_ts(_ts(moment(i))) or moment(i)

        first = lo if start is None else _first(lo, hi, lambda i: wall(i) >= start)
        last = hi if end is None else _first(first, hi, lambda i: wall(i) > end)
        return range(first, last)

    return [within(0, done, line.final), within(done, sent, line.accepted)]


def _slice(runs: list[range], start: int, stop: int) -> list[int]:
    """Items ``start:stop`` of the runs taken one after another (no run is walked)."""
    out: list[int] = []
    for run in runs:
        out.extend(run[max(start, 0) : max(stop, 0)])
        start, stop = start - len(run), stop - len(run)
    return out


def message_list(call: Call) -> Reply:
    criteria = _criteria(call.params)
    camp = _one_campaign_in_id_order(call, criteria)
    if camp is not None:
        bounds = _time_range(criteria, "statusUpdateTs")
        runs = [range(len(camp.ordered))] if bounds == (None, None) else _updated_between(call, camp, bounds)
        if runs is not None:
            size, page = _pagination(call.params)
            number_info = _int(call.params.get("withNumberInfo"), 0) == 1
            line = call.st.timeline(camp)
            window = [camp.ordered[i] for i in _slice(runs, page * size, (page + 1) * size)]
            items = [call.st.message_row(camp, msg, call.now, number_info, line) for msg in window]
            return Reply(OK, {"items": items, "totalItemCount": str(sum(map(len, runs)))})
    ranges = {
        name: _time_range(criteria, name)
        for name in ("campaignCreateTs", "campaignSentTs", "startSendTs", "statusUpdateTs")
    }
    ids = set(_ids(criteria.get("campaignIds"))[:MAX_IDS]) if _present(criteria.get("campaignIds")) else None
    number_info = _int(call.params.get("withNumberInfo"), 0) == 1
    rows = []
    for camp in call.st.campaigns.values():
        if camp.owner != call.account.api_key or camp.deleted or (ids is not None and camp.id not in ids):
            continue
        camp_row = call.st.campaign_row(camp, call.now)
        if not _message_campaign_matches(call, camp, camp_row, criteria, ranges):
            continue
        line = call.st.timeline(camp)
        for msg in camp.messages.values():
            row = call.st.message_row(camp, msg, call.now, number_info, line)
            if _message_matches(row, criteria, ranges):
                rows.append(row)
    allowed = ("id", "campaignId", "from", "to", "text", "status", "startSendTs", "statusUpdateTs", "segNum")
    return _page(rows, call.params, allowed)


def _message_campaign_matches(
    call: Call, camp: Campaign, row: Mapping[str, Any], criteria: Mapping[str, Any], ranges: Mapping[str, Any]
) -> bool:
    wanted = criteria.get("campaignStatus")
    if _present(wanted) and not _status_matches(call.st, camp, str(wanted).upper(), call.now):
        return False
    groups = criteria.get("groups")
    if _present(groups) and not set(map(str, _values(groups))) & set(camp.group_ids):
        return False
    return _in_range(row["createTs"], ranges["campaignCreateTs"]) and _in_range(
        row["startSendTs"], ranges["campaignSentTs"]
    )


def _message_matches(row: Mapping[str, Any], criteria: Mapping[str, Any], ranges: Mapping[str, Any]) -> bool:
    checks = [
        ("from", lambda v: row["from"] == v),
        ("to", lambda v: _digits(v) in row["to"]),
        ("text", lambda v: row["text"] == v),
        ("status", lambda v: row["status"] == str(v).upper()),
    ]
    if not all(check(criteria[key]) for key, check in checks if _present(criteria.get(key))):
        return False
    return _in_range(row["startSendTs"], ranges["startSendTs"]) and _in_range(
        row["statusUpdateTs"], ranges["statusUpdateTs"]
    )


def message_get_sms_status(call: Call) -> Reply:
    ids = _ids(call.params.get("ids"))
    if not ids:
        return Reply(NOT_FOUND, None, "no message ids given")
    if len(ids) > MAX_IDS:
        return Reply(INCORRECT_PARAM, None, f"at most {MAX_IDS} ids per call")
    out = []
    for message_id in dict.fromkeys(ids):
        found = call.st.visible_message(call.account, message_id)
        if found is None:
            continue  # unknown ids are left out, not reported
        camp, msg = found
        status, started, updated = call.st.message_state(camp, msg, call.now)
        out.append({"id": str(msg.id), "status": status, "segNum": str(msg.seg_num),
                    "startSendTs": _ts(started), "statusUpdateTs": _ts(updated)})  # fmt: skip
    return Reply(OK, out)


def message_send_sms_message(call: Call) -> Reply:
    options = call.params.get("params")
    options = options if isinstance(options, dict) else {}
    values = {"text": call.params.get("text"), "from": call.params.get("from"), **options}
    fields = campaign_fields(values, call.now, campaign_type=1, zone=call.st.zone())
    raw = call.params.get("recipient")
    number = _digits(raw) if isinstance(raw, str) else ""
    code = call.st.number_code(number) if number else R_EMPTY
    if code != R_ADDED:
        raise Invalid("recipient", RECIPIENT_MESSAGES[code])
    camp = call.st.new_campaign(call.account.api_key, fields, call.now)
    msg = call.st._new_message(camp, number, camp.text, "")
    camp.send_calls += 1
    status = call.st.send(camp, call.account, call.now)
    return Reply(OK, {"campaignId": camp.id, "messageId": msg.id, "status": status})


def taskqueue_get_status(call: Call) -> Reply:
    task = call.st.tasks.get(_int(call.params.get("id")) or 0)
    if task is None or task.owner != call.account.api_key:
        return Reply(NOT_FOUND, None, "task not found")
    interval = float(call.st.cfg["taskqueue_min_interval"])
    clock = time.monotonic()
    if interval > 0 and task.last_poll is not None and clock - task.last_poll < interval:
        return Reply(RATE_LIMITED, None, "poll a task at most once per second")
    task.last_poll = clock
    progress, status = call.st.task_progress(task, call.now)
    return Reply(OK, {"progress": progress, "status": status})


HANDLERS: dict[str, dict[str, Handler]] = {
    "user": {"getownbalance": user_get_own_balance},
    "campaign": {
        "create": campaign_create,
        "addrecipients": campaign_add_recipients,
        "send": campaign_send,
        "get": campaign_get,
        "getinfo": campaign_get_info,
        "delete": campaign_delete,
        "getlinks": campaign_get_links,
        "list": campaign_list,
    },
    "message": {
        "getsmsstatus": message_get_sms_status,
        "list": message_list,
        "sendsmsmessage": message_send_sms_message,
    },
    "taskqueue": {"getstatus": taskqueue_get_status},
}


def _route_check(query: Mapping[str, str], module: str, method: str) -> Reply | None:
    if output_format(query) is None:
        return Reply(BAD_FORMAT, None, "output must be json or xml")
    if not query.get("api"):
        return Reply(MISSING_PARAM, None, "the api parameter is required")
    if query["api"] != "v1":
        return Reply(INCORRECT_PARAM, None, "unsupported api version")
    if module not in HANDLERS:
        return Reply(BAD_MODULE, None, f"unknown module {module!r}")
    if method not in HANDLERS[module]:
        return Reply(BAD_METHOD, None, f"unknown method {method!r}")
    return None


def _authenticate(st: MobizonState, key: Any, host: str | None) -> Account | Reply:
    account = st.accounts.get(key) if isinstance(key, str) else None
    if account is None:
        return Reply(AUTH, None, "invalid API key")
    if account.domain and account.domain not in (st.cfg["serving_domain"], host):
        return Reply(WRONG_DOMAIN, account.domain, f"this account is served by {account.domain}")
    if account.blocked:
        return Reply(BLOCKED, None, "the account is blocked")
    return account


async def service(request: Request) -> Response:
    """``/service/{module}/{method}``: the whole Mobizon API."""
    sandbox: SandboxState = request.app.state.sandbox
    st: MobizonState = sandbox.providers[NAME]  # looked up per call: reset() replaces it
    query_pairs = request.query_params.multi_items()
    try:
        body_pairs, files = await _read_body(request)
    except Exception as exc:  # a malformed multipart body
        return _envelope(Reply(INCORRECT_PARAM, None, f"the request body could not be parsed: {exc}"), request)
    request.scope["sandbox.form_keys"] = _form_keys(body_pairs, files)
    module, method = request.path_params["module"].lower(), request.path_params["method"].lower()
    query = dict(query_pairs)
    reply = _route_check(query, module, method)
    if reply is not None:
        return _envelope(reply, request)
    params = {**php_parse(query_pairs), **php_parse(body_pairs)}  # PHP's $_REQUEST: the body wins
    account = _authenticate(st, params.get("apiKey"), request.url.hostname)
    if isinstance(account, Reply):
        return _envelope(account, request)
    now = sandbox.now()
    st.settle(now)
    call = Call(st, account, params, files, now)
    try:
        result = HANDLERS[module][method](call)
        answer = result if isinstance(result, Reply) else await result
    except (Invalid, _Errors) as exc:
        answer = exc.reply
    return _envelope(answer, request)


def new_state(sandbox: SandboxState) -> MobizonState:
    return MobizonState(sandbox)


def routes(sandbox: SandboxState) -> list[Route]:
    """The provider's API routes."""
    return [Route("/service/{module}/{method}", service, methods=["GET", "POST"])]


# ---------------------------------------------------------------- admin


async def admin_state(request: Request) -> Response:
    """``?campaign=ID`` for one campaign; ``?messages=0`` leaves out recipients and messages (big campaigns)."""
    sandbox: SandboxState = request.app.state.sandbox
    campaign_id = _int(request.query_params.get("campaign"))
    with_messages = request.query_params.get("messages") != "0"
    return JSONResponse(sandbox.providers[NAME].snapshot(sandbox.now(), campaign_id, with_messages))


async def admin_account(request: Request) -> Response:
    """Add or replace an account: ``{api_key, balance, currency, blocked, domain, senders, default_sender}``.

    ``senders``: the registered sender IDs (absent: any valid sender counts as registered);
    a message whose sender is not registered goes out with the shared sender ``SMS-INFO``.
    """
    sandbox: SandboxState = request.app.state.sandbox
    try:
        spec = await request.json()
        account = Account(
            api_key=_require_key(spec["api_key"]),
            balance=float(spec.get("balance", DEFAULT_BALANCE)),
            currency=str(spec.get("currency", DEFAULT_CURRENCY)),
            blocked=bool(spec.get("blocked", False)),
            domain=spec.get("domain") or None,
            senders=tuple(str(x) for x in spec["senders"]) if spec.get("senders") is not None else None,
            default_sender=str(spec.get("default_sender") or DEFAULT_SENDER),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return JSONResponse({"error": f"bad account: {exc}"}, status_code=400)
    sandbox.providers[NAME].accounts[account.api_key] = account
    return JSONResponse(_account_view(account))


def _require_key(value: Any) -> str:
    # Real keys are alphanumeric; any printable key without spaces is accepted, so tests can use
    # keys holding "+ / = % &" (the characters that show whether every encoded form is masked).
    if not isinstance(value, str) or not value or not value.isprintable() or any(c.isspace() for c in value):
        raise ValueError("api_key must be a non-empty printable string without spaces")
    return value


def admin_routes(sandbox: SandboxState) -> list[Route]:
    """Sandbox-only routes under ``/_sandbox/mobizon/``."""
    return [
        Route("/_sandbox/mobizon/state", admin_state, methods=["GET"]),
        Route("/_sandbox/mobizon/accounts", admin_account, methods=["POST"]),
        *webhooks.admin_routes(),
    ]
