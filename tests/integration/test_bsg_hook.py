"""BsgHook against the sandbox over loopback HTTP: tokens, campaigns, errors as BSG shapes them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.protocols import bsg as proto
from airflow_sms_provider.sandbox.bsg import SANDBOX_BSG_API_KEY
from tests.helpers import add_faults, set_clock


def bsg_state(url: str, messages: bool = True) -> dict[str, Any]:
    response = httpx.get(f"{url}/_sandbox/bsg/state", params={"messages": str(messages).lower()})
    response.raise_for_status()
    return response.json()


def bsg_config(url: str, **changes: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/_sandbox/bsg/config", json=changes)
    response.raise_for_status()
    return response.json()


@pytest.fixture
def hook(bsg_conn: str, sandbox_url: str) -> Iterator[BsgHook]:
    set_clock(sandbox_url, speed=0)  # time moves only when a test says so
    hook = BsgHook(bsg_conn)
    yield hook
    hook.close()


def raw(hook: BsgHook, request: Any) -> Any:
    """Send a request built without the client-side checks, to see the sandbox's own."""
    return hook.call(request)


# ------------------------------------------------------------------------ auth


def test_test_connection_logs_in_and_reads_the_balance(hook: BsgHook, sandbox_url: str) -> None:
    assert hook.test_connection() == (True, "Connected: balance 100.0 USD")
    assert bsg_state(sandbox_url)["auth"]["logins"] == 1


def test_wrong_key_is_reported_by_test_connection(sandbox_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "bsg", "host": sandbox_url, "password": "sandbox-wrong-key"}
    monkeypatch.setenv("AIRFLOW_CONN_BSG_WRONG", json.dumps(conn))
    ok, message = BsgHook("bsg_wrong").test_connection()
    assert not ok
    assert "Password field" in message and "live_ or test_" in message and "wrong-key" not in message
    assert bsg_state(sandbox_url)["auth"]["failed_logins"] == 1


def test_token_expiring_mid_run_is_renewed_without_failing(hook: BsgHook, sandbox_url: str) -> None:
    bsg_config(sandbox_url, jwt_ttl=30)
    campaign = hook.send_bulk(["380661231231"], "Hi", "Vet klinika")
    set_clock(sandbox_url, advance=31)  # the sandbox's token is now expired; the hook's clock has not moved
    assert hook.get_campaign(campaign["id"])["id"] == campaign["id"]
    auth = bsg_state(sandbox_url)["auth"]
    assert (auth["logins"], auth["unauthorized"]) == (2, 1)
    assert hook.session.logins == 2


def test_token_close_to_expiry_is_refreshed_and_the_old_one_stops_working(hook: BsgHook, sandbox_url: str) -> None:
    bsg_config(sandbox_url, jwt_ttl=100)
    hook.get_balance()
    old = hook.session._token.value  # type: ignore[union-attr]
    now = hook.session.clock()
    hook.session.clock = lambda: now + 85  # 15 s left: within the last fifth of its life
    set_clock(sandbox_url, advance=85)
    hook.get_balance()
    auth = bsg_state(sandbox_url)["auth"]
    assert (auth["logins"], auth["refreshes"], auth["unauthorized"]) == (1, 1, 0)
    stale = httpx.get(f"{sandbox_url}/api/accounts/balance", headers={"Authorization": f"Bearer {old}"})
    assert stale.status_code == 401 and stale.json() == {"code": 401, "message": "Invalid JWT Token"}


def test_revoked_tokens_lead_to_one_fresh_login(hook: BsgHook, sandbox_url: str) -> None:
    hook.get_balance()
    httpx.post(f"{sandbox_url}/_sandbox/bsg/revoke").raise_for_status()
    hook.get_balance()
    assert bsg_state(sandbox_url)["auth"]["logins"] == 2


@pytest.mark.bsg_off_spec  # sends what the spec forbids, to see the sandbox refuse it
def test_missing_and_expired_tokens_are_401_as_bsg_shapes_them(sandbox_url: str) -> None:
    set_clock(sandbox_url, speed=0)
    missing = httpx.get(f"{sandbox_url}/api/campaigns/1")
    assert (missing.status_code, missing.json()) == (401, {"code": 401, "message": "JWT Token not found"})
    bsg_config(sandbox_url, jwt_ttl=5)
    token = httpx.post(f"{sandbox_url}/api/auth/login", json={"api_key": SANDBOX_BSG_API_KEY}).json()["bearer"]
    set_clock(sandbox_url, advance=6)
    expired = httpx.get(f"{sandbox_url}/api/accounts/balance", headers={"Authorization": f"Bearer: {token}"})
    assert (expired.status_code, expired.json()["message"]) == (401, "Expired JWT Token")


# ------------------------------------------------------------------------ campaigns


def test_bulk_campaign_lifecycle_and_statistics_that_add_up(hook: BsgHook, sandbox_url: str) -> None:
    bsg_config(sandbox_url, creation_delay=2, send_rate=1, delivery_delay=5)
    phones = ["380661230001", "380661230013", "380661230066", "380661230004"]
    campaign = hook.send_bulk(phones, "Hello", "Vet klinika", validity=24)
    assert campaign["status"] == "creation" and campaign["calculated_price"] == 0.06

    def detail() -> dict[str, Any]:
        data = hook.get_campaign_detail(campaign["id"])
        assert sum(data["statistics"].values()) == data["total_phones"] == 4
        return data

    assert detail()["statistics"]["scheduled"] == 4
    set_clock(sandbox_url, advance=4)  # sending: two messages left at 3 s and 4 s
    assert hook.get_campaign(campaign["id"])["status"] == "sending"
    assert detail()["statistics"]["sent"] == 2
    set_clock(sandbox_url, advance=20)
    done = hook.get_campaign(campaign["id"])
    assert done["status"] == "done" and done["statistics"] == {"delivered": 2, "sent": 4}
    stats = detail()["statistics"]
    assert (stats["delivered"], stats["undelivered"], stats["expired"]) == (2, 1, 1)
    messages = list(hook.iter_messages(campaign["id"], page_size=15))
    assert {m["phone"]: m["status"] for m in messages} == {
        380661230001: "delivered", 380661230013: "undelivered", 380661230066: "expired", 380661230004: "delivered"}
    assert all(m["validity"] == 24 and m["sender"] == "Vet klinika" for m in messages)


def test_messages_are_paged_by_offset(hook: BsgHook) -> None:
    campaign = hook.send_bulk([str(380500000000 + i) for i in range(40)], "Hi", "Vet klinika")
    page = hook.list_messages(campaign_id=campaign["id"], offset=30, limit=15)
    assert (page["total"], page["offset"], page["limit"], len(page["items"])) == (40, 30, 15, 10)
    assert len(list(hook.iter_messages(campaign["id"], page_size=15))) == 40


def test_scheduled_campaign_converts_start_at_and_waits(hook: BsgHook, sandbox_url: str) -> None:
    now = dt.datetime.fromisoformat(httpx.get(f"{sandbox_url}/_sandbox/clock").json()["now"])
    start = (now + dt.timedelta(hours=2)).replace(microsecond=0)
    campaign = hook.send_bulk(["380661231231"], "Later", "Vet klinika", start_at=start.astimezone(
        dt.timezone(dt.timedelta(hours=3))))
    assert campaign["status"] == "scheduled"
    assert campaign["start_at"] == start.strftime("%Y-%m-%d %H:%M:%S")


def test_individual_texts_and_reference_lookup(hook: BsgHook, sandbox_url: str) -> None:
    messages = [{"phone": 380661231231, "text": "Hi Jack", "sender": "Vet klinika", "reference_id": "Jack1"},
                {"phone": "+380 66 123 1232", "text": "Привет Анна", "sender": "12345", "reference_id": "Anna2"}]
    campaign = hook.send_individual(messages, tariff_code=0)
    found = hook.find_message("Anna2")
    assert found is not None and found["campaign_id"] == campaign["id"] and found["text"] == "Привет Анна"
    assert hook.find_message("Nobody") is None
    stored = bsg_state(sandbox_url)["campaigns"][0]["messages"]
    assert [(m["phone"], m["sender"], m["reference_id"]) for m in stored] == [
        (380661231231, "Vet klinika", "Jack1"), (380661231232, "12345", "Anna2")]


def test_groups_fill_contact_fields(hook: BsgHook, sandbox_url: str) -> None:
    campaign = hook.send_groups([1864275], "Hi {12} from {13}", "Vet klinika")  # custom fields 12, 13
    state = bsg_state(sandbox_url)["campaigns"][0]
    assert state["id"] == campaign["id"] and state["groups"] == [1864275]
    assert [m["text"] for m in state["messages"]] == ["Hi Olena from Kyiv", "Hi Taras from Lviv", "Hi Iryna from Odesa"]


def test_stop_only_from_the_allowed_statuses(hook: BsgHook, sandbox_url: str) -> None:
    bsg_config(sandbox_url, creation_delay=2, send_rate=1)
    campaign = hook.send_bulk([str(380661231200 + i) for i in range(10)], "Hi", "Vet klinika")
    with pytest.raises(exc.SmsConflictError, match="Invalid campaign status"):
        hook.stop_campaign(campaign["id"])  # still in creation
    set_clock(sandbox_url, advance=5)  # sending, three messages out
    stopped = hook.stop_campaign(campaign["id"])
    assert stopped["status"] == "stopped" and stopped["statistics"]["sent"] == 3
    set_clock(sandbox_url, advance=60)
    detail = hook.get_campaign_detail(campaign["id"])
    assert detail["status"] == "stopped" and detail["statistics"]["failed"] == 7
    assert sum(detail["statistics"].values()) == 10
    with pytest.raises(exc.SmsConflictError):
        hook.stop_campaign(campaign["id"])


def test_scheduled_campaign_can_be_stopped(hook: BsgHook) -> None:
    start = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)
    campaign = hook.send_bulk(["380661231231"], "Later", "Vet klinika", start_at=start)
    assert hook.stop_campaign(campaign["id"])["status"] == "stopped"


def test_unknown_campaign(hook: BsgHook) -> None:
    with pytest.raises(exc.SmsNotFoundError):
        hook.get_campaign(1)


# ------------------------------------------------------------------------ the sandbox's own validation


@pytest.mark.bsg_off_spec  # sends what the spec forbids, to see the sandbox refuse it
def test_422_bodies_are_shaped_as_in_the_spec(hook: BsgHook) -> None:
    request = proto.send_bulk([{"number": 12345}, {"number": 380661231231, "reference_id": "bad-id"}], "", "X",
                              validity=0, tariff_code=12, start_at="soon")  # fmt: skip
    with pytest.raises(exc.SmsValidationError) as err:
        raw(hook, request)
    assert err.value.code == 422
    assert err.value.details == {
        "phones0number": ["This value is too short. It should have 9 characters or more."],
        "phones1reference_id": ["This value is not valid."],
        "sender": ["An alphanumeric sender name should have 3 to 11 Latin letters, digits, symbols or spaces."],
        "text": ["This value should not be blank."],
        "validity": ["This value should be between 1 and 72."],
        "tariff_code": ["This value should be between 0 and 9."],
        "start_at": ["This value is not a valid datetime."],
    }
    assert "phones[0].number" in str(err.value)


@pytest.mark.bsg_off_spec  # sends what the spec forbids, to see the sandbox refuse it
def test_more_than_10000_phones_is_refused(hook: BsgHook) -> None:
    phones = [{"number": 380500000000 + i} for i in range(10_001)]
    with pytest.raises(exc.SmsValidationError) as err:
        raw(hook, proto.send_bulk(phones, "Hi", "Vet klinika"))
    assert err.value.details == {"phones": ["This collection should contain 10000 elements or less."]}


def test_groups_over_10000_contacts_and_unknown_groups(hook: BsgHook) -> None:
    with pytest.raises(exc.SmsValidationError, match="at most 10000"):
        hook.send_groups([1864277], "Hi", "Vet klinika")
    with pytest.raises(exc.SmsValidationError, match="Contact list not found"):
        hook.send_groups([99], "Hi", "Vet klinika")


@pytest.mark.bsg_off_spec  # sends what the spec forbids, to see the sandbox refuse it
def test_individual_errors_name_message_fields(hook: BsgHook) -> None:
    request = proto.send_individual([{"phone": 380661231231, "text": "ok", "sender": "Vet klinika"},
                                     {"phone": "380661231232", "text": "Ж" * 336, "sender": "Vet klinika"}])
    with pytest.raises(exc.SmsValidationError) as err:
        raw(hook, request)
    assert err.value.details == {
        "messages1phone": ["This value should be of type integer."],
        "messages1text": ["This value is too long. It should have 335 characters or less."],
    }


def test_tariff_not_connected(hook: BsgHook, sandbox_url: str) -> None:
    bsg_config(sandbox_url, tariffs=[0])
    with pytest.raises(exc.SmsValidationError, match="Tariff was not found") as err:
        hook.send_bulk(["380661231231"], "Hi", "Vet klinika", tariff_code=5)
    assert err.value.field == "tariff_code"


def test_start_at_more_than_30_days_ahead_is_refused_by_the_sandbox_too(hook: BsgHook, sandbox_url: str) -> None:
    now = dt.datetime.fromisoformat(httpx.get(f"{sandbox_url}/_sandbox/clock").json()["now"])
    late = (now + dt.timedelta(days=31)).strftime("%Y-%m-%d %H:%M:%S")
    with pytest.raises(exc.SmsValidationError, match="Maximum date for scheduling is 30 days"):
        raw(hook, proto.send_bulk([{"number": 380661231231}], "Hi", "Vet klinika", start_at=late))


def test_duplicates_are_429(hook: BsgHook, sandbox_url: str) -> None:
    hook.send_bulk([{"number": "380661231231", "reference_id": "Once1"}], "Hi", "Vet klinika")
    with pytest.raises(proto.BsgDuplicateRequestError, match="Too many duplicate request detected"):
        hook.send_bulk([{"number": "380661231232", "reference_id": "Once1"}], "Other", "Vet klinika")
    hook.send_bulk(["380661231233"], "Same body", "Vet klinika")
    with pytest.raises(proto.BsgDuplicateRequestError):
        hook.send_bulk(["380661231233"], "Same body", "Vet klinika")
    set_clock(sandbox_url, advance=11)  # outside the duplicate window the same body is a new campaign
    hook.send_bulk(["380661231233"], "Same body", "Vet klinika")
    state = bsg_state(sandbox_url, messages=False)
    assert len(state["campaigns"]) == 3 and state["auth"]["duplicates"] == 2


def test_5xx_after_creation_is_ambiguous_and_not_repeated(hook: BsgHook, sandbox_url: str) -> None:
    add_faults(sandbox_url, {"provider": "bsg", "path": "/sms/send$", "action": "http_status", "status": 502})
    with pytest.raises(exc.SmsAmbiguousError):
        hook.send_bulk(["380661231231"], "Hi", "Vet klinika")
    requests = httpx.get(f"{sandbox_url}/_sandbox/requests", params={"provider": "bsg"}).json()["items"]
    assert [r["path"] for r in requests].count("/api/campaigns/sms/send") == 1


@pytest.mark.bsg_off_spec  # sends what the spec forbids, to see the sandbox refuse it
def test_unknown_api_path_is_404(hook: BsgHook) -> None:
    with pytest.raises(exc.SmsNotFoundError):
        hook.call(proto.Request("GET", "/api/nothing-here", "probe"))


# ------------------------------------------------------------------------ the provider's own SDK


def test_generated_sdk_talks_to_the_sandbox(sandbox_url: str) -> None:
    bsg_api = pytest.importorskip("bsg_api", reason="bsg-sdk (the provider's generated SDK) is not installed")
    configuration = bsg_api.Configuration(host=sandbox_url)
    with bsg_api.ApiClient(configuration) as client:
        configuration.access_token = bsg_api.AuthApi(client).login({"api_key": SANDBOX_BSG_API_KEY}).bearer
        campaign = bsg_api.CampaignSMSApi(client).sms_send(
            {"phones": [{"number": 380661234567, "reference_id": "Sdk1"}], "sender": "BSG", "text": "Hello from SDK"}
        ).data
        assert campaign.status.value == "creation" and campaign.calculated_price == 0.015
        detail = bsg_api.CampaignApi(client).campaign_details(campaign.id).data
        assert detail.total_phones == 1 and detail.statistics.scheduled == 1
        page = bsg_api.MessagesSMSApi(client).get_messages(filter_reference_id="Sdk1")
        assert page.data[0].phone == 380661234567 and page.meta.page.total == 1
        groups = bsg_api.CampaignSMSApi(client).sms_send_groups({"groups": [1864276], "sender": "BSG", "text": "Hi"})
        assert groups.data.id != campaign.id
        assert bsg_api.BalanceApi(client).account_balance().data.currency == "USD"
        assert bsg_api.AuthApi(client).refresh_token().bearer
