"""OgangiHook and OgangiBroadcastTrigger against the sandbox's Ogangi emulation, over loopback HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.ogangi import OgangiHook
from airflow_sms_provider.protocols import ogangi as proto
from airflow_sms_provider.sandbox import ogangi as sb
from airflow_sms_provider.triggers.ogangi import OgangiBroadcastTrigger
from tests.helpers import sandbox_requests, sandbox_state, set_clock

NUMBERS = ["14155550100", "14155550101", "584125550102"]


def ogangi_requests(url: str) -> list[dict[str, Any]]:
    return sandbox_requests(url, "ogangi")


def state(url: str) -> dict[str, Any]:
    return sandbox_state(url, "ogangi")


def advance(url: str, seconds: float) -> None:
    set_clock(url, advance=seconds)


def freeze(url: str) -> None:
    set_clock(url, speed=0)


def use_connection(monkeypatch: pytest.MonkeyPatch, url: str, **change: Any) -> None:
    """Rewrite the ogangi_default connection (e.g. a wrong private key)."""
    conn = {
        "conn_type": "ogangi", "host": f"{url}/mmc", "login": sb.SANDBOX_OGANGI_USER,
        "password": sb.SANDBOX_OGANGI_PRIVATE_KEY,
        "extra": {"instance_id": sb.SANDBOX_OGANGI_INSTANCE_ID, "public_key": sb.SANDBOX_OGANGI_PUBLIC_KEY,
                  "retry_base_delay": 0.01},
    }  # fmt: skip
    extra = change.pop("extra", {})
    conn.update(change)
    conn["extra"].update(extra)
    monkeypatch.setenv("AIRFLOW_CONN_OGANGI_DEFAULT", json.dumps(conn))


@pytest.fixture
def hook(ogangi_conn: str, sandbox_url: str) -> Any:
    freeze(sandbox_url)
    h = OgangiHook(ogangi_conn)
    yield h
    h.close()


class TestConnection:
    def test_test_connection_lists_the_short_codes(self, hook: OgangiHook, sandbox_url: str) -> None:
        ok, message = hook.test_connection()
        assert ok, message
        assert "24365" in message and "instance 8" in message
        (request,) = ogangi_requests(sandbox_url)
        assert request["method"] == "GET"
        assert request["path"].startswith("/mmc/rest/api/getShortcodes/8/sandbox/sandbox-public-key-0001/")

    def test_wrong_private_key_fails_fast_with_one_request(
        self, ogangi_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        wrong = "WRONG-PRIVATE-KEY-0000"
        use_connection(monkeypatch, sandbox_url, password=wrong)
        hook = OgangiHook()
        with pytest.raises(exc.SmsAuthError, match="BAD_SIGNATURE") as info:
            hook.get_shortcodes()
        assert "Invalid signature, access denied" in str(info.value)
        assert len(ogangi_requests(sandbox_url)) == 1  # no retry
        assert state(sandbox_url)["bad_signatures"] == 1
        ok, message = hook.test_connection()
        assert not ok and "BAD_SIGNATURE" in message and wrong not in message

    def test_wrong_public_key_is_a_bad_signature_too(
        self, ogangi_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use_connection(monkeypatch, sandbox_url, extra={"public_key": "someone-else"})
        with pytest.raises(exc.SmsAuthError):
            OgangiHook().get_broadcast(1)

    def test_unknown_instance_and_user(
        self, ogangi_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use_connection(monkeypatch, sandbox_url, extra={"instance_id": 9})
        with pytest.raises(exc.SmsNotFoundError, match="Instance 9 not found"):
            OgangiHook().get_shortcodes()
        use_connection(monkeypatch, sandbox_url, login="mallory")
        with pytest.raises(exc.SmsNotFoundError, match="User 'mallory' not found"):
            OgangiHook().get_shortcodes()

    def test_missing_settings_are_named(
        self, ogangi_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use_connection(monkeypatch, sandbox_url, extra={"instance_id": "eight"})
        with pytest.raises(exc.SmsValidationError, match="instance_id='eight'"):
            OgangiHook().get_shortcodes()
        use_connection(monkeypatch, sandbox_url, password="")
        with pytest.raises(exc.SmsValidationError, match="private key"):
            OgangiHook().get_shortcodes()
        assert ogangi_requests(sandbox_url) == []

    def test_a_base_url_without_the_customer_path_is_explained(
        self, ogangi_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use_connection(monkeypatch, sandbox_url, host=sandbox_url)
        with pytest.raises(exc.SmsFatalError, match="Base URL"):
            OgangiHook().get_shortcodes()

    def test_the_docs_rootless_xml_is_understood(self, hook: OgangiHook, sandbox_url: str) -> None:
        httpx.post(f"{sandbox_url}/_sandbox/config", json={"ogangi_xml_root": ""}).raise_for_status()
        raw = httpx.get(sandbox_url + "/mmc/" + proto.get_shortcodes(hook.account).path)
        assert raw.text.startswith("<input>getShortcodes</input><status>OK</status>")
        assert hook.get_shortcodes() == list(sb.SANDBOX_OGANGI_SHORTCODES)


class TestSandboxWire:
    """Raw HTTP: what the sandbox does with requests the hook would never send."""

    def test_a_tampered_signature_answers_bad_signature_xml(self, hook: OgangiHook, sandbox_url: str) -> None:
        path = proto.get_broadcast(hook.account, 1).path
        resp = httpx.get(f"{sandbox_url}/mmc/{path[:-4]}beef")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/xml")
        with pytest.raises(exc.SmsAuthError):
            proto.parse(proto.Response(resp.status_code, resp.content, resp.headers))

    def test_wrong_verb_and_unknown_method(self, hook: OgangiHook, sandbox_url: str) -> None:
        path = proto.get_broadcast(hook.account, 1).path.replace("getBroadcast", "broadcast")
        assert httpx.get(f"{sandbox_url}/mmc/{path}").status_code == 405
        assert httpx.get(f"{sandbox_url}/mmc/rest/api/nope/8/x/y").status_code == 404

    def test_wrong_parameter_count_is_an_error(self, hook: OgangiHook, sandbox_url: str) -> None:
        # Signed under another name, then renamed: proto.path() refuses a wrong arity for getBroadcast.
        path = proto.path("x", (8, 1, 2), hook.account).replace("rest/api/x/", "rest/api/getBroadcast/")
        with pytest.raises(exc.SmsValidationError, match="Wrong number of parameters"):
            hook.call(proto.Request("GET", path, "test"))


class TestSendByFile:
    def test_rows_become_messages(self, hook: OgangiHook, sandbox_url: str) -> None:
        rows = [{"number": NUMBERS[0], "params": ["Ana"]}, {"number": "123", "params": ["Bo"]},
                {"number": NUMBERS[1], "params": ["Cy"], "encoding": "KLINGON"},
                {"number": NUMBERS[2], "params": ["Di"], "from": "99999"}]
        messages = hook.send_sms_rows(rows, text="Hi {0}!", sender="24365", timezone="America/Caracas")
        assert [m["status"] for m in messages] == ["SENT_TO_CARRIER", "BAD_TO", "BAD_ENCODING", "BAD_FROM"]
        first = messages[0]
        assert (first["to"], first["from"], first["text"], first["timezone"]) == (
            NUMBERS[0], "24365", "Hi Ana!", "America/Caracas"
        )
        assert first["id"].lstrip("-").isdigit()
        (request,) = ogangi_requests(sandbox_url)
        assert request["method"] == "POST" and request["form_keys"] == ["file"]
        assert request["path"].startswith("/mmc/rest/api/tools/sendSMSByFile/8/sandbox-public-key-0001/")

    def test_an_excel_file_is_uploaded_as_is(self, hook: OgangiHook, sandbox_url: str, tmp_path) -> None:
        import openpyxl

        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(["number", "from", "carrier", "text", "encoding", "timezone", "{0}"])
        sheet.append([int(NUMBERS[0]), "24365", "movistar", "Code {0}", "UTF-8", "UTC", "A-1"])
        path = tmp_path / "audience.xlsx"
        book.save(path)
        (message,) = hook.send_sms_by_file(str(path))
        assert (message["to"], message["carrier"], message["text"]) == (NUMBERS[0], "movistar", "Code A-1")
        assert state(sandbox_url)["files"] == [{"filename": "audience.xlsx", "bytes": path.stat().st_size,
                                                "rows": 1}]

    def test_a_5xx_after_upload_is_ambiguous_and_not_repeated(self, hook: OgangiHook, sandbox_url: str) -> None:
        httpx.post(f"{sandbox_url}/_sandbox/faults",
                   json=[{"provider": "ogangi", "path": "sendSMSByFile", "action": "http_status", "status": 502}])
        with pytest.raises(exc.SmsAmbiguousError):
            hook.send_sms_rows([{"number": NUMBERS[0]}], text="Hi")
        assert len(ogangi_requests(sandbox_url)) == 1


class TestBroadcasts:
    def create(self, hook: OgangiHook, **kw: Any) -> dict[str, Any]:
        kw.setdefault("text", "Hello {name}")
        recipients = [{"to": n, "params": {"name": f"N{i}"}} for i, n in enumerate(NUMBERS)]
        return hook.create_broadcast(recipients, **kw)

    def test_create_signs_names_with_slashes_and_fills_placeholders(self, hook: OgangiHook, sandbox_url: str) -> None:
        created = self.create(hook, campaign_name="Spring / 50% off", shortcode="0000000")
        assert (created["id"], created["expectedMessages"], created["statusName"]) == (1, 3, "SCHEDULED")
        (item,) = state(sandbox_url)["broadcasts"]
        assert item["name"] == "Spring / 50% off" and item["shortcode"] == "0000000"
        assert [r["text"] for r in item["recipients"]] == ["Hello N0", "Hello N1", "Hello N2"]
        (request,) = ogangi_requests(sandbox_url)
        assert request["form_keys"] == ["to"]

    def test_scheduled_date_is_sent_to_the_minute(self, hook: OgangiHook, sandbox_url: str) -> None:
        now = dt.datetime.fromisoformat(httpx.get(f"{sandbox_url}/_sandbox/clock").json()["now"])
        when = now + dt.timedelta(hours=6, seconds=30)
        created = self.create(hook, scheduled_at=when)
        start = dt.datetime.fromisoformat(created["startDate"])
        assert start == when.replace(second=0, microsecond=0)
        caracas = self.create(hook, scheduled_at=when, schedule_timezone="America/Caracas")
        # Written as Caracas wall time; the sandbox reads dates in UTC, so it lands 4 hours earlier.
        assert dt.datetime.fromisoformat(caracas["startDate"]) == start - dt.timedelta(hours=4)

    def test_lifecycle_on_the_simulated_clock(self, hook: OgangiHook, sandbox_url: str) -> None:
        httpx.post(f"{sandbox_url}/_sandbox/config", json={"ogangi_send_rate": 1.0}).raise_for_status()
        bid = self.create(hook)["id"]
        advance(sandbox_url, 2)  # start delay 1 s, then one message per second
        running = hook.get_broadcast(bid)
        assert (running["statusName"], running["sentMessages"], running.get("endDate")) == ("RUNNING", 1, None)
        assert hook.suspend_broadcast(bid) == "Completed"
        advance(sandbox_url, 60)
        assert (hook.get_broadcast(bid)["statusName"], hook.get_broadcast(bid)["sentMessages"]) == ("SUSPENDED", 1)
        with pytest.raises(exc.SmsConflictError, match="cannot be suspended: it is SUSPENDED"):
            hook.suspend_broadcast(bid)
        hook.resume_broadcast(bid)
        advance(sandbox_url, 2)
        done = hook.get_broadcast(bid)
        assert (done["statusName"], done["sentMessages"], done["status"]) == ("FINISHED", 3, 2)
        assert done["endDate"] and proto.broadcast_outcome(done)[0] == proto.SUCCEEDED
        with pytest.raises(exc.SmsConflictError, match="cannot be stopped: it is FINISHED"):
            hook.stop_broadcast(bid)
        assert hook.delete_broadcast(bid) == "Completed"
        with pytest.raises(exc.SmsNotFoundError, match=f"Broadcast {bid} not found"):
            hook.get_broadcast(bid)

    def test_stop_sets_the_end_date_and_fails_the_outcome(self, hook: OgangiHook, sandbox_url: str) -> None:
        bid = self.create(hook)["id"]
        hook.stop_broadcast(bid)
        stopped = hook.get_broadcast(bid)
        assert stopped["statusName"] == "STOPPED" and stopped["endDate"]
        assert proto.broadcast_outcome(stopped)[0] == proto.FAILED
        with pytest.raises(exc.SmsConflictError, match="cannot be resumed"):
            hook.resume_broadcast(bid)

    def test_a_running_broadcast_cannot_be_deleted(self, hook: OgangiHook, sandbox_url: str) -> None:
        bid = self.create(hook)["id"]
        advance(sandbox_url, 1.05)
        with pytest.raises(exc.SmsConflictError, match="stop or suspend it first"):
            hook.delete_broadcast(bid)

    def test_edit_replaces_a_scheduled_broadcast_only(self, hook: OgangiHook, sandbox_url: str) -> None:
        bid = self.create(hook)["id"]
        edited = hook.create_broadcast([NUMBERS[0]], text="Changed", broadcast_id=bid)
        assert (edited["id"], edited["expectedMessages"], edited["text"]) == (bid, 1, "Changed")
        assert state(sandbox_url)["broadcasts"][0]["edits"] == 1
        advance(sandbox_url, 1.05)
        with pytest.raises(exc.SmsConflictError, match="cannot be edited: it is RUNNING"):
            hook.create_broadcast([NUMBERS[0]], text="Again", broadcast_id=bid)

    def test_unknown_shortcode_is_rejected_by_the_provider(self, hook: OgangiHook, sandbox_url: str) -> None:
        with pytest.raises(exc.SmsValidationError, match="Invalid shortcode '55555'"):
            self.create(hook, shortcode="55555")
        assert state(sandbox_url)["broadcasts"] == []

    def test_create_is_never_repeated_after_a_5xx(self, hook: OgangiHook, sandbox_url: str) -> None:
        httpx.post(f"{sandbox_url}/_sandbox/faults", json=[
            {"provider": "ogangi", "path": "createBroadcastFromJson", "action": "timeout_after", "seconds": 0.3},
        ])
        hook.settings  # noqa: B018 - read the connection before shortening the timeout
        object.__setattr__(hook.settings.http, "timeout", 0.1)
        with pytest.raises(exc.SmsAmbiguousError):
            self.create(hook)
        assert len(state(sandbox_url)["broadcasts"]) == 1  # the server did act
        deadline = time.monotonic() + 5  # the request is logged once the held answer has gone out
        while not ogangi_requests(sandbox_url) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)  # room for a (wrong) second attempt to show up
        assert len(ogangi_requests(sandbox_url)) == 1

    def test_reads_are_retried_after_a_5xx(self, hook: OgangiHook, sandbox_url: str) -> None:
        bid = self.create(hook)["id"]
        httpx.post(f"{sandbox_url}/_sandbox/faults",
                   json=[{"provider": "ogangi", "path": "getBroadcast", "action": "http_status", "status": 503}])
        assert hook.get_broadcast(bid)["id"] == bid
        assert [r["status"] for r in ogangi_requests(sandbox_url)][-2:] == [503, 200]


def run_trigger(trigger: OgangiBroadcastTrigger) -> dict[str, Any]:
    async def first_event() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    return asyncio.run(asyncio.wait_for(first_event(), timeout=20))


class TestTrigger:
    def test_serializes_plain_values(self) -> None:
        path, kwargs = OgangiBroadcastTrigger("c", "5", 2).serialize()
        assert path == "airflow_sms_provider.triggers.ogangi.OgangiBroadcastTrigger"
        assert kwargs == {"ogangi_conn_id": "c", "broadcast_id": 5, "poll_interval": 2.0}

    def test_fires_when_the_broadcast_finishes(self, hook: OgangiHook, sandbox_url: str) -> None:
        bid = hook.create_broadcast(NUMBERS, text="Hi")["id"]
        httpx.post(f"{sandbox_url}/_sandbox/clock", json={"speed": 100}).raise_for_status()
        event = run_trigger(OgangiBroadcastTrigger("ogangi_default", bid, poll_interval=0.05))
        assert event["status"] == proto.SUCCEEDED
        assert event["data"]["sentMessages"] == 3

    def test_fails_on_a_stopped_or_deleted_broadcast(self, hook: OgangiHook, sandbox_url: str) -> None:
        bid = hook.create_broadcast(NUMBERS, text="Hi")["id"]
        hook.stop_broadcast(bid)
        event = run_trigger(OgangiBroadcastTrigger("ogangi_default", bid, poll_interval=0.05))
        assert event["status"] == proto.FAILED and "STOPPED" in event["message"]
        hook.delete_broadcast(bid)
        event = run_trigger(OgangiBroadcastTrigger("ogangi_default", bid, poll_interval=0.05))
        assert event["status"] == proto.FAILED and f"broadcast {bid} not found at" in event["message"]
        assert "deleted?" in event["message"]

    def test_a_bad_key_is_a_fatal_error_event(
        self, ogangi_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        use_connection(monkeypatch, sandbox_url, password="WRONG-PRIVATE-KEY-0000")
        event = run_trigger(OgangiBroadcastTrigger("ogangi_default", 1, poll_interval=0.05))
        assert event["status"] == "error" and event["fatal"] is True
        assert "BAD_SIGNATURE" in event["message"] and "WRONG-PRIVATE-KEY" not in event["message"]
