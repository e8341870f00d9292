"""Ogangi wire format: the signature vector, every URL exactly, every XML answer's parsing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from urllib.parse import parse_qs

import httpx
import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.ogangi import build_sms_file, read_upload, recipient_items
from airflow_sms_provider.protocols import ogangi as proto
from airflow_sms_provider.redaction import register_secret
from airflow_sms_provider.sandbox import ogangi as sandbox
from airflow_sms_provider.transport import Request, Response

VECTOR_KEY = "FBF3-4310-909C-C4BBC26F886F"
VECTOR_SIGNATURE = "954221dc7ba612b2633c0ff1e0f5c4058f2bf982902faada38c78c4f044f5ef4"
BASE = "https://customer.example.com/mmc"
PUB = "PUBKEY-123"
PRIVATE = "PRIVATE-KEY-0001-XYZ"
ACCOUNT = proto.Account(instance_id=8, user="peter", public_key=PUB, private_key=PRIVATE)


def hex_hmac(key: str, message: str) -> str:
    """Computed here, independently of the code under test."""
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


def url(request: Request, base: str = BASE) -> str:
    """The URL httpx sends for ``request`` from a client whose base URL has a path."""
    with httpx.Client(base_url=base) as client:
        return str(client.build_request(request.method, request.path).url)


def answer(body: str | bytes, status: int = 200) -> Response:
    return Response(status, body.encode() if isinstance(body, str) else body, {})


# The documented answers (seeds/004), whitespace as in the docs.
SEND_SMS = (
    "<input>sendSMS</input> <status>OK</status> <description>Completed</description> <result> <messages> "
    "<message> <id>-6710228708174720670</id> <carrier>carrierName</carrier> <from>19893653744</from> "
    "<to>18133210984</to> <text>OGANGI TEST MESSAGE</text> <status>SENT_TO_CARRIER</status> "
    "<statusDescription>Sent to Carrier</statusDescription> <encoding>UTF-8</encoding> "
    "<date>2014-12-17T00:12:13.571-04:30</date> <timezone>America/Caracas</timezone> "
    "<clientId>As223sdadq8d8287v5v</clientId> </message> <message> <id>-8174720676710228700</id> "
    "<carrier>carrierName</carrier> <from>19893653744</from> <to>13056708084</to> <text>OGANGI TEST MESSAGE</text> "
    "<status>BAD_TO</status> <statusDescription>Bad to</statusDescription> <encoding>UTF-8</encoding> "
    "<date>2013-09-17T10:13:59.176-04:30</date> <timezone>America/Caracas</timezone> "
    "<clientId>As223sdadq8d8287v5v</clientId> </message> </messages> </result>"
)
SHORTCODES = (
    "<input>getShortcodes</input> <status>OK</status> <description>Completed</description> <result> <shortcodes> "
    "<shortcode> <sc>0000000</sc> </shortcode> <shortcode> <sc>1111111</sc> </shortcode> </shortcodes> </result>"
)
CREATED = (
    "<input>createBroadcastFromJson</input> <status>OK</status> <description>Completed</description> <result> "
    "<broadcast> <id>1</id> <text>Test message</text> <startDate>2016-08-16T17:49:42.346-04:002</startDate> "
    "<expectedMessages>2</expectedMessages> <statusDescription>SCHEDULED</statusDescription> "
    "<shortcode>0000000</shortcode> </broadcast> </result>"
)
BROADCAST = (
    "<input>getBroadcast</input> <status>OK</status> <description>Completed</description> <result> <broadcast> "
    "<id>2</id> <text>message</text> <startDate>2013-09-05T15:10:14-04:00</startDate> "
    "<endDate>2013-09-05T15:10:14-04:00</endDate> <expectedMessages>2</expectedMessages> "
    "<sentMessages>2</sentMessages> <status>2</status> <shortcode>0000000</shortcode> </broadcast> </result>"
)


class TestSignature:
    def test_the_reference_vector(self) -> None:
        assert proto.sign(VECTOR_KEY, ["8", "peter", "peterpassword"]) == VECTOR_SIGNATURE

    def test_the_url_of_that_call_ends_with_params_public_key_and_signature(self) -> None:
        account = proto.Account(8, "peter", PUB, VECTOR_KEY)
        path = proto.path("someMethod", (8, "peter", "peterpassword"), account)
        assert path == f"rest/api/someMethod/8/peter/peterpassword/{PUB}/{VECTOR_SIGNATURE}"
        assert url(Request("GET", path, "x")).endswith(f"/8/peter/peterpassword/{PUB}/{VECTOR_SIGNATURE}")

    def test_the_private_key_never_travels(self) -> None:
        for request in (proto.get_shortcodes(ACCOUNT), proto.create_broadcast(ACCOUNT, "[]"),
                        proto.send_sms_by_file(ACCOUNT, "a.csv", b"x")):
            assert PRIVATE not in url(request)
            assert PRIVATE.encode() not in (request.content or b"")
            assert PRIVATE not in repr(request)

    def test_values_are_signed_before_percent_encoding(self) -> None:
        name = "Spring sale / 50% off"
        request = proto.create_broadcast(ACCOUNT, "[]", campaign_name=name)
        signed = f"8/-1/null/peter/false/{name}/null"
        assert request.path == (
            f"rest/api/createBroadcastFromJson/8/-1/null/peter/false/Spring%20sale%20%2F%2050%25%20off/null/"
            f"{PUB}/{hex_hmac(PRIVATE, signed)}"
        )

    @pytest.mark.parametrize(("value", "encoded"), [(".", "%2E"), ("..", "%2E%2E"), ("a.b", "a.b"),
                                                    ("é?#", "%C3%A9%3F%23")])
    def test_segments_never_become_directory_steps(self, value: str, encoded: str) -> None:
        assert proto.segment(value) == encoded

    def test_known_methods_check_their_arity(self) -> None:
        with pytest.raises(ValueError, match="getBroadcast takes 2"):
            proto.path(proto.GET_BROADCAST, (8,), ACCOUNT)


class TestUrls:
    def signed(self, method: str, params: str) -> str:
        return f"{BASE}/rest/api/{method}/{params}/{PUB}/{hex_hmac(PRIVATE, params)}"

    def test_get_shortcodes(self) -> None:
        request = proto.get_shortcodes(ACCOUNT)
        assert (request.method, url(request)) == ("GET", self.signed("getShortcodes", "8/peter"))
        assert request.idempotent

    def test_send_sms_by_file_signs_only_the_instance(self) -> None:
        request = proto.send_sms_by_file(ACCOUNT, "r.csv", b"number\r\n", "text/csv")
        assert (request.method, url(request)) == ("POST", self.signed("tools/sendSMSByFile", "8"))
        assert request.files == {"file": ("r.csv", b"number\r\n", "text/csv")}
        assert request.idempotent is False

    def test_create_new_broadcast_with_shortcode_name_and_date(self) -> None:
        body = json.dumps([{"to": "14155550100", "text": "Hi", "params": {}}])
        request = proto.create_broadcast(
            ACCOUNT, body, shortcode="0000000", campaign_name="Spring", date="16-08-2026 17:49"
        )
        assert request.method == "POST"
        signature = hex_hmac(PRIVATE, "8/-1/0000000/peter/true/Spring/16-08-2026 17:49")
        assert url(request) == (
            f"{BASE}/rest/api/createBroadcastFromJson/8/-1/0000000/peter/true/Spring/16-08-2026%2017%3A49/"
            f"{PUB}/{signature}"
        )
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert parse_qs(request.content.decode()) == {"to": [body]}
        assert request.idempotent is False

    def test_create_without_optional_parts_sends_null_and_ignores_the_shortcode(self) -> None:
        request = proto.create_broadcast(ACCOUNT, "[]")
        assert url(request) == self.signed("createBroadcastFromJson", "8/-1/null/peter/false/null/null")

    def test_editing_a_broadcast_is_idempotent(self) -> None:
        request = proto.create_broadcast(ACCOUNT, "[]", broadcast_id=42)
        assert url(request) == self.signed("createBroadcastFromJson", "8/42/null/peter/false/null/null")
        assert request.idempotent is True

    @pytest.mark.parametrize(
        ("action", "method", "verb"),
        [("suspend", "suspendBroadcast", "GET"), ("resume", "resumeBroadcast", "GET"),
         ("stop", "stopBroadcast", "GET"), ("delete", "broadcast", "DELETE")],
    )
    def test_lifecycle_calls(self, action: str, method: str, verb: str) -> None:
        request = proto.broadcast_action(ACCOUNT, action, 7)
        assert (request.method, url(request)) == (verb, self.signed(method, "8/7"))

    def test_get_broadcast(self) -> None:
        request = proto.get_broadcast(ACCOUNT, 7)
        assert (request.method, url(request)) == ("GET", self.signed("getBroadcast", "8/7"))

    def test_a_base_url_without_path_works_too(self) -> None:
        request = proto.get_broadcast(ACCOUNT, 7)
        assert url(request, "http://127.0.0.1:9/").startswith("http://127.0.0.1:9/rest/api/getBroadcast/8/7/")

    def test_unknown_action(self) -> None:
        with pytest.raises(ValueError, match="unknown broadcast action"):
            proto.broadcast_action(ACCOUNT, "pause", 1)


class TestBodies:
    @pytest.mark.parametrize(
        ("when", "zone", "expected"),
        [
            (None, "UTC", "null"),
            (dt.datetime(2026, 8, 16, 21, 49, 59, tzinfo=dt.timezone.utc), "UTC", "16-08-2026 21:49"),
            (dt.datetime(2026, 8, 16, 21, 49, tzinfo=dt.timezone.utc), "America/Caracas", "16-08-2026 17:49"),
            (dt.datetime(2026, 1, 2, 3, 4), "UTC", "02-01-2026 03:04"),  # naive is UTC
        ],
    )
    def test_format_date(self, when: dt.datetime | None, zone: str, expected: str) -> None:
        assert proto.format_date(when, zone) == expected

    def test_unknown_zone_names_the_field(self) -> None:
        with pytest.raises(exc.SmsValidationError) as info:
            proto.format_date(dt.datetime(2026, 1, 1), "Mars/Olympus")
        assert info.value.field == "schedule_timezone" and "Mars/Olympus" in str(info.value)

    def test_recipients_json_shape(self) -> None:
        items = recipient_items(["14155550100", {"number": "14155550101", "text": "Yo", "params": {"n": 1}}],
                                text="Hi {n}")
        body, count = proto.recipients_json(items)
        assert count == 2
        assert json.loads(body) == [
            {"to": "14155550100", "text": "Hi {n}", "params": {}},
            {"to": "14155550101", "text": "Yo", "params": {}},  # params are filled here, not sent
        ]
        server_side = recipient_items([{"number": "14155550101", "text": "Yo {n}", "params": {"n": 1}}],
                                      server_side_params=True)
        assert json.loads(proto.recipients_json(server_side)[0]) == [
            {"to": "14155550101", "text": "Yo {n}", "params": {"n": "1"}}]

    def test_recipients_json_size_limit_names_the_recipient(self) -> None:
        items = (proto.broadcast_recipient("14155550100", "x" * 50) for _ in range(10))
        with pytest.raises(exc.SmsValidationError, match="at recipient 4"):
            proto.recipients_json(items, limit=300)

    def test_sms_file_has_header_defaults_and_positional_params(self) -> None:
        content, count = build_sms_file(
            [{"number": "14155550100", "params": ["Ana", "10%"]}, {"number": "14155550101", "text": "Yo, {0}",
                                                                     "params": {"0": "B"}}],
            defaults={"text": "Hi {0}, {1} off", "from": "24365", "timezone": "America/Caracas"},
        )
        assert count == 2
        assert content.decode().splitlines() == [
            "number,from,carrier,text,encoding,timezone,{0},{1}",
            '14155550100,24365,,"Hi {0}, {1} off",UTF-8,America/Caracas,Ana,10%',
            '14155550101,24365,,"Yo, {0}",UTF-8,America/Caracas,B,',
        ]

    def test_sms_file_rejects_rows_with_more_params_than_the_first(self) -> None:
        with pytest.raises(exc.SmsValidationError, match="row 2"):
            build_sms_file([{"number": "1", "text": "t", "params": ["a"]}, {"number": "2", "text": "t",
                                                                            "params": ["a", "b"]}])

    def test_sms_file_needs_a_text_and_respects_the_size_limit(self) -> None:
        with pytest.raises(exc.SmsValidationError, match="row 1: no 'text'"):
            build_sms_file([{"number": "14155550100"}])
        rows = ({"number": "14155550100", "text": "x" * 100} for _ in range(100))
        with pytest.raises(exc.SmsValidationError, match="passes 1000 bytes at row"):
            build_sms_file(rows, limit=1000)

    def test_upload_size_limit(self, tmp_path) -> None:
        path = tmp_path / "big.csv"
        path.write_bytes(b"x" * 101)
        with pytest.raises(exc.SmsValidationError, match="101 bytes"):
            read_upload(str(path), limit=100)
        assert read_upload(str(path), limit=200) == ("big.csv", b"x" * 101)


class TestParse:
    def test_send_sms_messages(self) -> None:
        messages = proto.messages(proto.parse(answer(SEND_SMS)))
        assert [m["id"] for m in messages] == ["-6710228708174720670", "-8174720676710228700"]
        assert messages[0] == {
            "id": "-6710228708174720670", "carrier": "carrierName", "from": "19893653744", "to": "18133210984",
            "text": "OGANGI TEST MESSAGE", "status": "SENT_TO_CARRIER", "statusDescription": "Sent to Carrier",
            "encoding": "UTF-8", "date": "2014-12-17T00:12:13.571-04:30", "timezone": "America/Caracas",
            "clientId": "As223sdadq8d8287v5v",
        }

    def test_a_single_message_is_still_a_list(self) -> None:
        body = ("<input>sendSMS</input><status>OK</status><description>Completed</description>"
                "<result><messages><message><id>5</id><status>SENT</status></message></messages></result>")
        assert proto.messages(proto.parse(answer(body))) == [{"id": "5", "status": "SENT"}]

    @pytest.mark.parametrize("inside", ["queued", "<message>a</message><message>b</message>",
                                        "<message><id>5</id></message><message/>"])
    def test_messages_that_are_not_messages_are_an_unreadable_answer(self, inside: str) -> None:
        # Dropping them would report the SMS they stand for as never sent.
        body = ("<input>sendSMSByFile</input><status>OK</status><description>Completed</description>"
                f"<result><messages>{inside}</messages></result>")
        with pytest.raises(exc.SmsProtocolError, match="<messages> holds"):
            proto.messages(proto.parse(answer(body)))

    def test_no_messages_is_an_empty_list(self) -> None:
        body = ("<input>sendSMSByFile</input><status>OK</status><description>Completed</description>"
                "<result><messages/></result>")
        assert proto.messages(proto.parse(answer(body))) == []

    def test_shortcodes_keep_leading_zeros(self) -> None:
        assert proto.shortcodes(proto.parse(answer(SHORTCODES))) == ["0000000", "1111111"]

    def test_created_broadcast(self) -> None:
        data = proto.broadcast(proto.parse(answer(CREATED)))
        assert data == {
            "id": 1, "text": "Test message", "startDate": "2016-08-16T17:49:42.346-04:002", "expectedMessages": 2,
            "statusDescription": "SCHEDULED", "shortcode": "0000000", "statusName": "SCHEDULED",
        }

    def test_get_broadcast_numbers_are_ints(self) -> None:
        data = proto.broadcast(proto.parse(answer(BROADCAST)))
        assert (data["id"], data["expectedMessages"], data["sentMessages"], data["status"]) == (2, 2, 2, 2)
        assert data["statusName"] == "FINISHED" and data["shortcode"] == "0000000"
        assert data["endDate"] == "2013-09-05T15:10:14-04:00"

    @pytest.mark.parametrize("method", ["suspendBroadcast", "resumeBroadcast", "stopBroadcast", "deleteBroadcast"])
    def test_lifecycle_answers_without_result(self, method: str) -> None:
        body = f"<input>{method}</input> <status>OK</status> <description>Completed</description>"
        parsed = proto.parse(answer(body))
        assert parsed == proto.Answer(method, "OK", "Completed", None)

    def test_a_root_element_and_declaration_are_accepted(self) -> None:
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<response>{BROADCAST}</response>'
        assert proto.broadcast(proto.parse(answer(body)))["id"] == 2
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n{BROADCAST}'
        assert proto.broadcast(proto.parse(answer(body)))["id"] == 2

    def test_empty_elements_are_none(self) -> None:
        body = BROADCAST.replace("<endDate>2013-09-05T15:10:14-04:00</endDate>", "<endDate/>")
        assert proto.broadcast(proto.parse(answer(body)))["endDate"] is None

    def test_bad_signature_is_an_auth_error_without_retry(self) -> None:
        from airflow.providers.common.compat.sdk import AirflowFailException

        body = ("<input>getShortcodes</input><status>BAD_SIGNATURE</status>"
                "<description>Invalid signature, access denied</description>")
        with pytest.raises(exc.SmsAuthError) as info:
            proto.parse(answer(body))
        assert isinstance(info.value, AirflowFailException)
        assert "Invalid signature, access denied" in str(info.value) and "private key" in str(info.value)

    @pytest.mark.parametrize(
        ("description", "error", "fatal"),
        [
            ("Broadcast 7 not found", exc.SmsNotFoundError, True),
            ("Broadcast 7 cannot be resumed: it is RUNNING", exc.SmsConflictError, True),
            ("Invalid date '32-01-2026 10:00'", exc.SmsValidationError, True),
            ("Database temporarily unavailable", exc.SmsProviderError, False),
        ],
    )
    def test_error_quotes_the_description(self, description: str, error: type, fatal: bool) -> None:
        from airflow.providers.common.compat.sdk import AirflowFailException

        body = f"<input>resumeBroadcast</input><status>ERROR</status><description>{description}</description>"
        with pytest.raises(error) as info:
            proto.parse(answer(body))
        assert type(info.value) is error
        assert description in str(info.value) and "resumeBroadcast" in str(info.value)
        assert isinstance(info.value, AirflowFailException) is fatal

    def test_an_unknown_status_is_a_protocol_error(self) -> None:
        with pytest.raises(exc.SmsProtocolError, match="MAYBE"):
            proto.parse(answer("<r><input>x</input><status>MAYBE</status></r>"))

    def test_ok_without_the_expected_section(self) -> None:
        with pytest.raises(exc.SmsProtocolError, match="without <broadcast>"):
            proto.broadcast(proto.parse(answer("<input>getBroadcast</input><status>OK</status>")))

    def test_malformed_xml_quotes_a_short_secret_free_excerpt(self) -> None:
        secret = "SuperSecretPrivateKey-9876"
        register_secret(secret)
        with pytest.raises(exc.SmsProtocolError) as info:
            proto.parse(answer(f"<input>x</input><status>OK</stat>{secret}" + "y" * 5000))
        message = str(info.value)
        assert "not well-formed" in message
        assert secret not in message and len(message) < 300

    def test_xml_without_status_is_not_the_envelope(self) -> None:
        with pytest.raises(exc.SmsProtocolError, match="no <status>"):
            proto.parse(answer("<html><body>Welcome</body></html>"))

    def test_external_entity_attack_is_refused(self) -> None:
        body = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                "<r><input>x</input><status>OK</status><description>&xxe;</description></r>")
        with pytest.raises(exc.SmsProtocolError, match="DTD or entities") as info:
            proto.parse(answer(body))
        assert "root:" not in str(info.value)

    def test_entity_expansion_bomb_is_refused(self) -> None:
        body = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
                "<r><status>&lol2;</status></r>")
        with pytest.raises(exc.SmsProtocolError, match="DTD or entities"):
            proto.parse(answer(body))

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_http_5xx_is_a_server_error(self, status: int) -> None:
        with pytest.raises(exc.SmsServerError):
            proto.parse(answer("<html>bad gateway</html>", status))

    def test_http_429_is_rate_limited(self) -> None:
        with pytest.raises(exc.SmsRateLimitedError):
            proto.parse(answer("", 429))

    def test_http_404_points_at_the_base_url(self) -> None:
        with pytest.raises(exc.SmsFatalError, match="Base URL") as info:
            proto.parse(answer("<html><body>Not Found</body></html>", 404))
        assert info.value.code == 404

    def test_http_401_without_envelope_is_an_auth_error(self) -> None:
        with pytest.raises(exc.SmsAuthError):
            proto.parse(answer("Unauthorized", 401))

    def test_an_oversized_answer_is_refused_before_parsing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(proto, "MAX_RESPONSE_BYTES", 100)
        with pytest.raises(exc.SmsProtocolError, match="larger than"):
            proto.parse(answer(SEND_SMS))


class TestOutcome:
    @pytest.mark.parametrize(
        ("data", "outcome"),
        [
            ({"id": 1, "status": 0, "sentMessages": 0, "expectedMessages": 2}, proto.WAITING),
            ({"id": 1, "status": 1, "sentMessages": 1, "expectedMessages": 2}, proto.WAITING),
            ({"id": 1, "status": 3, "sentMessages": 1, "expectedMessages": 2}, proto.WAITING),
            ({"id": 1, "status": 1, "sentMessages": 2, "expectedMessages": 2}, proto.SUCCEEDED),
            ({"id": 1, "status": 1, "sentMessages": 1, "expectedMessages": 2, "endDate": "2026-01-01"},
             proto.SUCCEEDED),
            ({"id": 1, "status": 2, "sentMessages": 0, "expectedMessages": 0}, proto.SUCCEEDED),
            ({"id": 1, "status": 0, "sentMessages": 0, "expectedMessages": 0}, proto.WAITING),
            ({"id": 1, "status": 4, "sentMessages": 1, "expectedMessages": 2, "endDate": "2026-01-01"}, proto.FAILED),
            ({"id": 1, "status": 5, "sentMessages": 2, "expectedMessages": 2}, proto.FAILED),
            ({"id": 1, "statusDescription": "SCHEDULED", "expectedMessages": 2}, proto.WAITING),
        ],
    )
    def test_broadcast_outcome(self, data: dict, outcome: str) -> None:
        assert proto.broadcast_outcome(data)[0] == outcome

    def test_failure_message_names_status_and_progress(self) -> None:
        _, message = proto.broadcast_outcome({"id": 9, "status": 4, "sentMessages": 3, "expectedMessages": 10})
        assert message == "broadcast 9 is STOPPED (3/10 messages sent)"


class TestSandboxAgrees:
    """The sandbox keeps its own copy of the wire decisions (it must not import Airflow); they must match."""

    def test_tables(self) -> None:
        assert sandbox.BROADCAST_STATUSES == proto.BROADCAST_STATUSES
        assert sandbox.SMS_FILE_COLUMNS == proto.SMS_FILE_COLUMNS
        assert (sandbox.DATE_FORMAT, sandbox.ABSENT) == (proto.DATE_FORMAT, proto.ABSENT)
        assert proto.SCHEDULE_TIMEZONE == "UTC"  # the sandbox reads dates in UTC
        assert sandbox.API_PATH.endswith("/" + proto.API_PREFIX + "/")

    def test_methods_parameters_and_verbs(self) -> None:
        assert set(sandbox.METHODS) == set(proto.PATH_PARAMS)
        for method, (params, verbs) in sandbox.METHODS.items():
            assert params == proto.PATH_PARAMS[method]
            assert proto.HTTP_METHODS[method] in verbs

    def test_the_sandbox_signature_matches_the_vector(self) -> None:
        assert sandbox.signature(VECTOR_KEY, ["8", "peter", "peterpassword"]) == VECTOR_SIGNATURE


class TestHookIdentity:
    def test_attributes_and_connection_forms(self) -> None:
        from airflow_sms_provider.hooks.ogangi import OgangiHook
        from airflow_sms_provider.ui import FORMS

        assert (OgangiHook.conn_name_attr, OgangiHook.default_conn_name, OgangiHook.conn_type,
                OgangiHook.hook_name) == ("ogangi_conn_id", "ogangi_default", "ogangi", "Ogangi (Messangi MMC)")
        behaviour = OgangiHook.get_ui_field_behaviour()
        assert behaviour["relabeling"]["password"] == "Private key (required)"
        assert "login" not in behaviour["hidden_fields"]
        widgets = OgangiHook.get_connection_form_widgets()
        assert set(widgets) in (set(), set(FORMS["ogangi"]["extras"]))  # empty where WTForms is absent


# ------------------------------------------------------------------ answers that cannot be read


def _ok(result: str) -> Response:
    body = f"<response><input>createBroadcastFromJson</input><status>OK</status>{result}</response>"
    return Response(200, body.encode(), {})


def test_an_answer_nested_5000_deep_is_refused_before_it_is_walked() -> None:
    deep = "<result><broadcast>" + "<x>" * 5000 + "1" + "</x>" * 5000 + "</broadcast></result>"
    with pytest.raises(exc.SmsProtocolError, match=f"deeper than {proto.MAX_XML_DEPTH} levels"):
        proto.parse(_ok(deep))


def test_an_answer_nested_to_the_cap_is_read() -> None:
    depth = proto.MAX_XML_DEPTH - 3  # response, result, broadcast
    nested = "<result><broadcast><id>7</id><x>" + "<y>" * (depth - 2) + "v" + "</y>" * (depth - 2) + "</x>"
    answer = proto.parse(_ok(nested + "</broadcast></result>"))
    assert proto.broadcast(answer)["id"] == 7


@pytest.mark.parametrize("content", ["created, id 1", "<a>1</a><a>2</a>"], ids=["text", "list"])
def test_a_broadcast_that_is_not_its_fields_is_a_protocol_error(content: str) -> None:
    answer = proto.parse(_ok(f"<result><broadcast>{content}</broadcast></result>"))
    with pytest.raises(exc.SmsProtocolError, match="<broadcast> holds"):
        proto.broadcast(answer)


def test_only_explicit_refusals_are_refusals() -> None:
    # The document defines no ERROR wording: an unknown one after a create or send may have been done.
    for method in ("createBroadcastFromJson", "sendSMS", "tools/sendSMSByFile"):
        unknown = proto.error_for(method, "Broadcast queue busy, try later")
        assert isinstance(unknown, exc.SmsAmbiguousError) and not proto.refused(unknown)
    assert proto.refused(proto.error_for("createBroadcastFromJson", "Invalid shortcode"))
    # Elsewhere (reads, suspend/resume/stop/delete: harmless to repeat) it stays a plain provider error.
    assert type(proto.error_for("stopBroadcast", "Broadcast queue busy")) is exc.SmsProviderError
    assert not proto.refused(exc.SmsProtocolError("unreadable", provider=proto.PROVIDER))
    assert not proto.refused(exc.SmsAmbiguousError("no answer", provider=proto.PROVIDER))
    assert not proto.refused(ValueError("dictionary update sequence element #0"))
