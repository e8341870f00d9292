"""BSG One-API wire format: exact requests, the mapping of every error, and the JWT rules."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
import respx

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.bsg import BsgHook, BsgSession
from airflow_sms_provider.protocols import bsg as proto
from airflow_sms_provider.transport import Request, Response
from airflow_sms_provider.triggers.bsg import BsgCampaignsTrigger

KEY = "live_0123456789abcdefghijKLMNOP"
BASE = "https://one-api.bsg.world"
CAMPAIGN = {"id": 53703353, "name": "SMS api campaign / 2025-03-03 20:05:47", "sender": "Vet klinika",
            "status": "creation", "message_type": "sms", "statistics": {"delivered": 0, "sent": 0},
            "calculated_price": 0.015, "currency": "USD"}  # fmt: skip


def jwt(iat: int = 1_700_000_000, lifetime: int = 3600, jti: str = "1") -> str:
    """An (unsigned) JWT shaped like BSG's; the client reads only iat/exp."""

    def part(doc: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256'})}.{part({'iat': iat, 'exp': iat + lifetime, 'jti': jti})}.c2lnbmF0dXJl"


TOKEN, TOKEN2, TOKEN3 = jwt(jti="first"), jwt(jti="second"), jwt(jti="third")


def answer(status: int, doc: object) -> Response:
    return Response(status, json.dumps(doc).encode(), {})


def body(request: Request | httpx.Request) -> object:
    return json.loads(request.content)


# ------------------------------------------------------------------------ requests


class TestRequests:
    def test_login_posts_the_key_as_json(self) -> None:
        req = proto.login(KEY)
        assert (req.method, req.path) == ("POST", "/api/auth/login")
        assert req.content == b'{"api_key":"live_0123456789abcdefghijKLMNOP"}'
        assert req.headers == {"Content-Type": "application/json", "Accept": "application/json"}
        assert KEY not in repr(req)

    def test_refresh_carries_the_current_token(self) -> None:
        req = proto.refresh("abc.def.ghi")
        assert (req.method, req.path, req.content) == ("POST", "/api/auth/refresh", None)
        assert req.headers == {"Accept": "application/json", "Authorization": "Bearer abc.def.ghi"}

    def test_bulk_minimal_body_leaves_defaults_to_bsg(self) -> None:
        req = proto.send_bulk([{"number": 380661231231}], "test", "Vet klinika")
        assert (req.method, req.path, req.idempotent) == ("POST", "/api/campaigns/sms/send", False)
        assert req.content == b'{"phones":[{"number":380661231231}],"sender":"Vet klinika","text":"test"}'

    def test_bulk_complete_body_matches_the_schema(self) -> None:
        req = proto.send_bulk(
            [{"number": 380661231231, "reference_id": "f2d37bf7"}, {"number": 380661231232}],
            "Привет", "supercredit", validity=24, tariff_code=9, start_at="2025-01-25 13:00:00",
            transliterate=True, callback_url="https://example.com/dlr",
        )
        assert req.content.decode() == (
            '{"phones":[{"number":380661231231,"reference_id":"f2d37bf7"},{"number":380661231232}],'
            '"sender":"supercredit","text":"Привет","tariff_code":9,"validity":24,'
            '"start_at":"2025-01-25 13:00:00","callback_url":"https://example.com/dlr","transliterate":true}'
        )

    def test_groups_body_uses_groups_not_the_schema_slip_contacts(self) -> None:
        req = proto.send_groups([1864275, 7], "Hi {12}", "Vet klinika", validity=1, tariff_code=0)
        assert req.path == "/api/campaigns/sms/send-groups" and req.idempotent is False
        assert body(req) == {"groups": [1864275, 7], "sender": "Vet klinika", "text": "Hi {12}",
                             "tariff_code": 0, "validity": 1}

    def test_individual_keys_follow_the_schema_not_the_example_slips(self) -> None:
        req = proto.send_individual(
            [{"phone": 380661231231, "text": "hello Jack", "sender": "Vet klinika", "reference_id": "Ref1",
              "tariff_code": 5, "transliterate": False, "ignored": "x"}],
            validity=72, start_at="2025-03-27 19:44:06",
        )
        assert req.path == "/api/campaigns/sms/send-individual" and req.idempotent is False
        assert req.content.decode() == (
            '{"messages":[{"phone":380661231231,"text":"hello Jack","sender":"Vet klinika",'
            '"reference_id":"Ref1","tariff_code":5,"transliterate":false}],'
            '"validity":72,"start_at":"2025-03-27 19:44:06"}'
        )
        assert b"referenced_id" not in req.content and b"tarrif_code" not in req.content

    def test_reads_and_stop(self) -> None:
        assert (proto.get_campaign(5).method, proto.get_campaign(5).path) == ("GET", "/api/campaigns/5")
        assert proto.get_campaign_detail(5).path == "/api/campaigns/5/detail"
        stop = proto.stop_campaign(5)
        assert (stop.method, stop.path, stop.idempotent) == ("PATCH", "/api/campaigns/5/stop", True)
        assert proto.get_balance().path == "/api/accounts/balance"

    def test_messages_query_uses_filter_and_page_brackets(self) -> None:
        req = proto.list_messages(campaign_id=42, offset=500, limit=500, sort="id", way="asc")
        assert (req.method, req.path) == ("GET", "/api/messages")
        assert list(req.params) == [("filter[campaign_id]", "42"), ("page[offset]", "500"),
                                    ("page[limit]", "500"), ("sort", "id"), ("way", "asc")]
        assert list(proto.list_messages(reference_id="R1", limit=15).params) == [
            ("filter[reference_id]", "R1"), ("page[offset]", "0"), ("page[limit]", "15")]

    @pytest.mark.parametrize("limit", [14, 501])
    def test_page_limit_outside_the_spec_is_refused(self, limit: int) -> None:
        with pytest.raises(exc.SmsValidationError, match="15 to 500"):
            proto.list_messages(campaign_id=1, limit=limit)


# ------------------------------------------------------------------------ answers


class TestParse:
    def test_data_is_returned(self) -> None:
        assert proto.parse(answer(200, {"data": CAMPAIGN})) == CAMPAIGN

    def test_token(self) -> None:
        assert proto.parse_token(answer(200, {"bearer": "x.y.z"})) == "x.y.z"

    def test_token_missing_is_a_protocol_error_that_does_not_echo_the_body(self) -> None:
        with pytest.raises(exc.SmsProtocolError) as err:
            proto.parse_token(answer(200, {"token": "secret.jwt.value"}))
        assert "secret.jwt.value" not in str(err.value)

    def test_page(self) -> None:
        doc = {"data": [{"id": 1}], "meta": {"page": {"limit": 30, "offset": 0, "total": 1}}}
        assert proto.parse_page(answer(200, doc)) == {"items": [{"id": 1}], "total": 1, "offset": 0, "limit": 30}

    def test_page_items_must_be_objects(self) -> None:
        doc = {"data": [{"id": 1}, 2], "meta": {"page": {"limit": 30, "offset": 0, "total": 2}}}
        with pytest.raises(exc.SmsProtocolError, match="a list item is int, not an object"):
            proto.parse_page(answer(200, doc))

    def test_not_json(self) -> None:
        with pytest.raises(exc.SmsProtocolError, match="not the API's JSON"):
            proto.parse(Response(200, b"<html>maintenance</html>", {}))


class TestErrorMapping:
    def test_422_field_errors_fail_without_retry_and_name_the_row(self) -> None:
        doc = {"message": "The given data was invalid.",
               "errors": {"phones12number": ["This value is too long. It should have 15 characters or less."],
                          "sender": ["This value should not be blank."]}}  # fmt: skip
        with pytest.raises(exc.SmsValidationError) as err:
            proto.parse(answer(422, doc))
        assert isinstance(err.value, exc.SmsFatalError)
        assert err.value.field == "phones12number" and err.value.code == 422
        assert err.value.details == doc["errors"]
        assert "phones[12].number: This value is too long" in str(err.value)
        assert "sender: This value should not be blank." in str(err.value)

    def test_422_tariff_not_found_names_the_field(self) -> None:
        with pytest.raises(exc.SmsValidationError) as err:
            proto.parse(answer(422, {"message": "Tariff was not found", "errors": []}))
        assert err.value.field == "tariff_code"

    def test_422_invalid_campaign_status_is_a_conflict(self) -> None:
        with pytest.raises(exc.SmsConflictError, match="stopped only while scheduled"):
            proto.parse(answer(422, {"message": "Invalid campaign status", "errors": []}))

    @pytest.mark.parametrize("status", [401, 403])
    def test_auth(self, status: int) -> None:
        with pytest.raises(exc.SmsAuthError) as err:
            proto.parse(answer(status, {"code": status, "message": "Expired JWT Token"}))
        assert err.value.code == status and isinstance(err.value, exc.SmsFatalError)

    def test_404(self) -> None:
        with pytest.raises(exc.SmsNotFoundError):
            proto.parse(answer(404, {"message": "Not Found"}))

    def test_429_duplicate_is_a_conflict_not_a_rate_limit(self) -> None:
        with pytest.raises(proto.BsgDuplicateRequestError) as err:
            proto.parse(answer(429, {"message": "Too many duplicate request detected"}))
        assert isinstance(err.value, exc.SmsConflictError)
        assert not isinstance(err.value, exc.SmsRetryableError)

    def test_429_other_is_a_rate_limit(self) -> None:
        with pytest.raises(exc.SmsRateLimitedError):
            proto.parse(answer(429, {"message": "Too Many Attempts."}))

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_5xx(self, status: int) -> None:
        with pytest.raises(exc.SmsServerError):
            proto.parse(Response(status, b"Bad gateway", {}))

    def test_other_4xx_fail(self) -> None:
        with pytest.raises(exc.SmsFatalError, match="HTTP 400"):
            proto.parse(answer(400, {"message": "Bad request"}))


# ------------------------------------------------------------------------ decisions


class TestDecisions:
    def test_all_done(self) -> None:
        campaigns = {1: {"id": 1, "status": "done"}, 2: {"id": 2, "status": "done"}}
        assert proto.campaigns_outcome(campaigns, ["stopped", "spam"])[0] == proto.SUCCEEDED

    def test_waiting_names_the_unfinished(self) -> None:
        campaigns = {1: {"id": 1, "status": "done"}, 2: {"id": 2, "status": "sending", "statistics": {"sent": 3}}}
        outcome, message = proto.campaigns_outcome(campaigns, ["stopped", "spam"])
        assert outcome == proto.WAITING
        assert "1 of 2" in message and "campaign 2 is sending (3 sent" in message

    @pytest.mark.parametrize(("status", "reason"), [("stopped", "stopped before"), ("spam", "spam")])
    def test_failed_with_reason(self, status: str, reason: str) -> None:
        campaigns = {1: {"id": 1, "status": "sending"}, 2: {"id": 2, "status": status}}
        outcome, message = proto.campaigns_outcome(campaigns, ["stopped", "spam"])
        assert outcome == proto.FAILED and f"campaign 2 is {status}" in message and reason in message

    def test_fail_set_is_configurable(self) -> None:
        assert proto.campaign_outcome({"id": 1, "status": "stopped"}, ["spam"])[0] == proto.WAITING
        assert proto.campaign_outcome({"id": 1, "status": "paused"}, ["paused"])[0] == proto.FAILED

    @pytest.mark.parametrize(
        ("value", "ids"),
        [(5, [5]), ("5", [5]), ("1, 2", [1, 2]), ("[1, 2]", [1, 2]), ([1, "2"], [1, 2]),
         ({"campaign_ids": [3, 4], "phones": 9}, [3, 4]), ({"campaign_id": 7}, [7])],
    )  # fmt: skip
    def test_campaign_ids_from_templates_and_summaries(self, value: object, ids: list[int]) -> None:
        assert proto.campaign_ids(value) == ids

    @pytest.mark.parametrize("value", [None, "", [], "abc", [0], [True], -3])
    def test_bad_campaign_ids(self, value: object) -> None:
        with pytest.raises(exc.SmsValidationError):
            proto.campaign_ids(value)


class TestTokens:
    def test_lifetime_from_iat_and_exp_ignores_clock_skew(self) -> None:
        assert proto.token_lifetime(jwt(iat=100, lifetime=60), wall_now=10**10) == 60

    def test_lifetime_from_exp_alone_uses_the_wall_clock(self) -> None:
        token = "e30." + base64.urlsafe_b64encode(b'{"exp": 1000}').decode().rstrip("=") + ".x"
        assert proto.token_lifetime(token, wall_now=900) == 100

    def test_opaque_token_has_no_lifetime(self) -> None:
        assert proto.token_lifetime("not-a-jwt", 0) is None

    def test_margin(self) -> None:
        assert proto.refresh_margin(3600) == 60 and proto.refresh_margin(10) == 2


# ------------------------------------------------------------------------ the hook over respx


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[BsgHook]:
    conn = {"conn_type": "bsg", "password": KEY, "extra": {"retry_base_delay": 0.001}}
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps(conn))
    hook = BsgHook()
    hook.session.clock = Clock()
    yield hook
    hook.close()


def login_route(*tokens: str, status: int = 200) -> respx.Route:
    responses = [httpx.Response(status, json={"bearer": t}) for t in tokens] or [
        httpx.Response(status, json={"code": status, "message": "Invalid credentials."})
    ]
    return respx.post(f"{BASE}/api/auth/login").mock(side_effect=responses)


def auth_of(route: respx.Route, index: int = -1) -> str:
    return route.calls[index].request.headers.get("authorization")


@respx.mock
def test_default_host_and_first_call_logs_in_then_reuses_the_token(hook: BsgHook) -> None:
    login = login_route(TOKEN)
    get = respx.get(f"{BASE}/api/campaigns/7").mock(return_value=httpx.Response(200, json={"data": CAMPAIGN}))
    hook.get_campaign(7)
    hook.get_campaign(7)
    assert login.call_count == 1
    assert login.calls[0].request.content == json.dumps({"api_key": KEY}, separators=(",", ":")).encode()
    assert login.calls[0].request.headers["content-type"] == "application/json"
    assert "authorization" not in login.calls[0].request.headers
    assert [auth_of(get, i) for i in range(2)] == [f"Bearer {TOKEN}"] * 2
    assert get.calls[0].request.headers["accept"] == "application/json"


@respx.mock
def test_token_close_to_expiry_is_refreshed_before_the_call(hook: BsgHook) -> None:
    login = login_route(TOKEN)
    refresh = respx.post(f"{BASE}/api/auth/refresh").mock(return_value=httpx.Response(200, json={"bearer": TOKEN2}))
    get = respx.get(f"{BASE}/api/campaigns/7").mock(return_value=httpx.Response(200, json={"data": CAMPAIGN}))
    hook.get_campaign(7)
    hook.session.clock.now += 3600 - 30  # 30 s left of 3600: within the last minute
    hook.get_campaign(7)
    assert (login.call_count, refresh.call_count) == (1, 1)
    assert auth_of(refresh) == f"Bearer {TOKEN}"
    assert auth_of(get) == f"Bearer {TOKEN2}"
    assert hook.session.refreshes == 1


@respx.mock
def test_expired_token_logs_in_again_instead_of_refreshing(hook: BsgHook) -> None:
    login = login_route(TOKEN, TOKEN2)
    refresh = respx.post(f"{BASE}/api/auth/refresh")
    get = respx.get(f"{BASE}/api/campaigns/7").mock(return_value=httpx.Response(200, json={"data": CAMPAIGN}))
    hook.get_campaign(7)
    hook.session.clock.now += 3601
    hook.get_campaign(7)
    assert (login.call_count, refresh.call_count) == (2, 0)
    assert auth_of(get) == f"Bearer {TOKEN2}"


@respx.mock
def test_refused_refresh_falls_back_to_login(hook: BsgHook) -> None:
    login = login_route(TOKEN, TOKEN2)
    respx.post(f"{BASE}/api/auth/refresh").mock(return_value=httpx.Response(401, json={"message": "Expired"}))
    get = respx.get(f"{BASE}/api/campaigns/7").mock(return_value=httpx.Response(200, json={"data": CAMPAIGN}))
    hook.get_campaign(7)
    hook.session.clock.now += 3590
    hook.get_campaign(7)
    assert login.call_count == 2 and auth_of(get) == f"Bearer {TOKEN2}"


@pytest.mark.parametrize("status", [401, 403])
@respx.mock
def test_refused_call_logs_in_once_and_repeats_it(hook: BsgHook, status: int) -> None:
    login = login_route(TOKEN, TOKEN2)
    refused = httpx.Response(status, json={"code": status, "message": "Invalid JWT Token"})
    send = respx.post(f"{BASE}/api/campaigns/sms/send").mock(
        side_effect=[refused, httpx.Response(200, json={"data": CAMPAIGN})]
    )
    assert hook.send_bulk(["380661231231"], "Hi", "Vet klinika")["id"] == CAMPAIGN["id"]
    assert login.call_count == 2 and send.call_count == 2
    assert [auth_of(send, 0), auth_of(send, 1)] == [f"Bearer {TOKEN}", f"Bearer {TOKEN2}"]
    assert send.calls[0].request.content == send.calls[1].request.content


@respx.mock
def test_refused_again_after_login_fails_with_a_clear_auth_error(hook: BsgHook) -> None:
    login = login_route(TOKEN, TOKEN2, TOKEN3)
    get = respx.get(f"{BASE}/api/campaigns/7").mock(
        return_value=httpx.Response(403, json={"message": "Access denied"})
    )
    with pytest.raises(exc.SmsAuthError, match="still refused after a fresh login") as err:
        hook.get_campaign(7)
    assert err.value.code == 403
    assert (login.call_count, get.call_count) == (3, 3)  # two logins of its own, each refused


@respx.mock
def test_wrong_key_fails_at_login_naming_the_password_field(hook: BsgHook) -> None:
    login = login_route(status=401)
    with pytest.raises(exc.SmsAuthError, match="Password field") as err:
        hook.get_campaign(7)
    assert login.call_count == 1 and KEY not in str(err.value)


@respx.mock
def test_key_and_token_never_reach_a_log_line(hook: BsgHook, caplog: pytest.LogCaptureFixture) -> None:
    login_route(TOKEN, TOKEN2)
    respx.get(f"{BASE}/api/campaigns/7").mock(
        side_effect=[httpx.Response(401, json={"message": "Expired JWT Token"}),
                     httpx.Response(200, json={"data": CAMPAIGN})]
    )  # fmt: skip
    with caplog.at_level(logging.DEBUG):
        hook.get_campaign(7)
    text = caplog.text + repr(hook.session) + repr(hook.settings)
    assert "trying again with a new token" in caplog.text
    for secret in (KEY, TOKEN, TOKEN2):
        assert secret not in text


@respx.mock
def test_5xx_on_creation_is_ambiguous_and_never_repeated(hook: BsgHook) -> None:
    login_route(TOKEN)
    send = respx.post(f"{BASE}/api/campaigns/sms/send").mock(return_value=httpx.Response(502))
    with pytest.raises(exc.SmsAmbiguousError):
        hook.send_bulk(["380661231231"], "Hi", "Vet klinika")
    assert send.call_count == 1


@respx.mock
def test_timeout_on_creation_is_ambiguous_and_never_repeated(hook: BsgHook) -> None:
    login_route(TOKEN)
    send = respx.post(f"{BASE}/api/campaigns/sms/send-individual").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(exc.SmsAmbiguousError):
        hook.send_individual([{"phone": "380661231231", "text": "Hi", "sender": "Vet klinika"}])
    assert send.call_count == 1


@respx.mock
def test_duplicate_on_creation_is_not_retried(hook: BsgHook) -> None:
    login_route(TOKEN)
    send = respx.post(f"{BASE}/api/campaigns/sms/send-groups").mock(
        return_value=httpx.Response(429, json={"message": "Too many duplicate request detected"})
    )
    with pytest.raises(proto.BsgDuplicateRequestError):
        hook.send_groups([1], "Hi", "Vet klinika")
    assert send.call_count == 1


@respx.mock
def test_reads_and_stop_retry_5xx_and_timeouts(hook: BsgHook) -> None:
    login_route(TOKEN)
    stop = respx.patch(f"{BASE}/api/campaigns/7/stop").mock(
        side_effect=[httpx.Response(503), httpx.ReadTimeout("slow"), httpx.Response(200, json={"data": CAMPAIGN})]
    )
    assert hook.stop_campaign(7)["id"] == CAMPAIGN["id"]
    assert stop.call_count == 3


@respx.mock
def test_messages_pages_until_total(hook: BsgHook) -> None:
    login_route(TOKEN)

    def page(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["page[offset]"])
        items = [{"id": i} for i in range(offset, min(offset + 500, 1200))]
        return httpx.Response(200, json={"data": items, "meta": {"page": {"limit": 500, "offset": offset,
                                                                           "total": 1200}}})

    route = respx.get(f"{BASE}/api/messages").mock(side_effect=page)
    assert [m["id"] for m in hook.iter_messages(9)] == list(range(1200))
    assert [c.request.url.params["page[offset]"] for c in route.calls] == ["0", "500", "1000"]
    assert {c.request.url.params["filter[campaign_id]"] for c in route.calls} == {"9"}


@respx.mock
def test_async_session_follows_the_same_rules(hook: BsgHook) -> None:
    login = login_route(TOKEN, TOKEN2)
    get = respx.get(f"{BASE}/api/campaigns/7").mock(
        side_effect=[httpx.Response(401, json={"message": "Expired JWT Token"}),
                     httpx.Response(200, json={"data": CAMPAIGN})]
    )  # fmt: skip
    session = BsgSession(hook.settings)

    async def run() -> object:
        async with hook.settings.async_client() as client:
            return await session.acall(client, proto.get_campaign(7))

    assert asyncio.run(run()) == CAMPAIGN
    assert login.call_count == 2 and auth_of(get) == f"Bearer {TOKEN2}"


def test_hook_identity_and_connection_form() -> None:
    assert (BsgHook.conn_name_attr, BsgHook.default_conn_name, BsgHook.conn_type, BsgHook.hook_name) == (
        "bsg_conn_id", "bsg_default", "bsg", "BSG One-API")
    behaviour = BsgHook.get_ui_field_behaviour()
    assert behaviour["relabeling"] == {"host": "Base URL", "password": "API key (required)"}
    assert "password" not in behaviour["hidden_fields"]
    assert isinstance(BsgHook.get_connection_form_widgets(), dict)


def test_connection_without_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps({"conn_type": "bsg"}))
    ok, message = BsgHook().test_connection()
    assert not ok and "Password" in message


def test_trigger_serializes_plain_values() -> None:
    trigger = BsgCampaignsTrigger("bsg_x", [1, 2], 5, ["spam"])
    path, kwargs = trigger.serialize()
    assert path == "airflow_sms_provider.triggers.bsg.BsgCampaignsTrigger"
    assert kwargs == {"bsg_conn_id": "bsg_x", "campaign_ids": [1, 2], "poll_interval": 5.0,
                      "failed_statuses": ["spam"]}
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert BsgCampaignsTrigger(**kwargs).serialize() == (path, kwargs)


# ------------------------------------------------------------------------ one hook, several threads


def _in_threads(count: int, work: object) -> list[object]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: work(), range(count)))  # type: ignore[operator]


@respx.mock
def test_threads_sharing_a_hook_log_in_once(hook: BsgHook) -> None:
    import time

    def slow_login(request: httpx.Request) -> httpx.Response:
        time.sleep(0.1)  # every thread asks for a token while the first login is on the wire
        return httpx.Response(200, json={"bearer": TOKEN})

    login = respx.post(f"{BASE}/api/auth/login").mock(side_effect=slow_login)
    respx.get(f"{BASE}/api/campaigns/7").mock(return_value=httpx.Response(200, json={"data": CAMPAIGN}))
    assert _in_threads(8, lambda: hook.get_campaign(7)) == [CAMPAIGN] * 8
    assert login.call_count == 1 and hook.session.logins == 1


@respx.mock
def test_threads_refused_together_log_in_again_once(hook: BsgHook) -> None:
    import time

    tokens = iter([TOKEN, TOKEN2, TOKEN3])

    def slow_login(request: httpx.Request) -> httpx.Response:
        time.sleep(0.1)
        return httpx.Response(200, json={"bearer": next(tokens)})

    import threading

    together = threading.Barrier(8, timeout=10)

    def campaign(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == f"Bearer {TOKEN}" and revoked:
            together.wait()  # all eight are refused before any of them logs in again
            return httpx.Response(401, json={"message": "Invalid JWT Token"})
        return httpx.Response(200, json={"data": CAMPAIGN})

    revoked = False
    login = respx.post(f"{BASE}/api/auth/login").mock(side_effect=slow_login)
    respx.get(f"{BASE}/api/campaigns/7").mock(side_effect=campaign)
    hook.get_campaign(7)
    revoked = True  # every thread's call is refused; the first to log in renews the token for all
    assert _in_threads(8, lambda: hook.get_campaign(7)) == [CAMPAIGN] * 8
    assert login.call_count == 2


@respx.mock
def test_rate_limited_creation_is_retried_after_retry_after(hook: BsgHook) -> None:
    login_route(TOKEN)
    send = respx.post(f"{BASE}/api/campaigns/sms/send").mock(side_effect=[
        httpx.Response(429, json={"message": "Too Many Requests"}, headers={"Retry-After": "2"}),
        httpx.Response(200, json={"data": CAMPAIGN}),
    ])  # fmt: skip
    pauses: list[float] = []
    hook.retry_sleep = pauses.append
    assert hook.send_bulk(["380661231231"], "Hi", "Vet klinika")["id"] == CAMPAIGN["id"]
    assert send.call_count == 2  # a 429 that is not "duplicate" did nothing: sending again is safe
    assert pauses and pauses[0] >= 2


def test_retry_after_header_forms() -> None:
    from airflow_sms_provider.transport import retry_after

    assert retry_after({"retry-after": "3"}) == 3.0
    assert retry_after({"retry-after": "0.25"}) == 0.25
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == 10.0
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


@respx.mock
def test_a_borrowed_token_refused_too_leads_to_a_login_of_the_calls_own(hook: BsgHook) -> None:
    """Another call renewed the token while this one was refused; that token expires in flight as well."""
    login = login_route(TOKEN, TOKEN3)
    answers = iter([401, 401, 200])

    def campaign(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        if request.headers["authorization"] == f"Bearer {TOKEN}":
            hook.session._keep(TOKEN2)  # the other call's renewal, while this request was on the wire
        if status == 401:
            return httpx.Response(401, json={"message": "Expired JWT Token"})
        return httpx.Response(200, json={"data": CAMPAIGN})

    get = respx.get(f"{BASE}/api/campaigns/7").mock(side_effect=campaign)
    assert hook.get_campaign(7) == CAMPAIGN
    assert [auth_of(get, i) for i in range(3)] == [f"Bearer {t}" for t in (TOKEN, TOKEN2, TOKEN3)]
    assert login.call_count == 2  # the first login, then one for this call: not one per refusal
