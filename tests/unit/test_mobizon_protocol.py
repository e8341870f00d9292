"""Mobizon wire format: exact request bytes and the mapping of every documented code."""

from __future__ import annotations

import json

import pytest

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.protocols import mobizon as proto
from airflow_sms_provider.transport import Response


def answer(code: int, data: object = None, message: str = "", status: int = 200) -> Response:
    return Response(status, json.dumps({"code": code, "data": data, "message": message}).encode(), {})


class TestHttpBuildQuery:
    def test_matches_the_reference_example_byte_for_byte(self) -> None:
        # The curl example of campaign/create in the provider's documentation.
        params = {
            "data": {
                "type": 3,
                "from": "Alpha",
                "text": "Hello, {name}! Your balance on {date} is {balance}{currency}.",
            }
        }
        assert proto.http_build_query(params) == (
            "data%5Btype%5D=3&data%5Bfrom%5D=Alpha&data%5Btext%5D=Hello%2C+%7Bname%7D%21+Your+balance+on+"
            "%7Bdate%7D+is+%7Bbalance%7D%7Bcurrency%7D."
        )

    def test_nested_lists_of_template_rows(self) -> None:
        params = {
            "id": 7,
            "recipients": [{"recipient": "380971112233", "name": "Василий"}, {"recipient": "4901122211112"}],
        }
        assert proto.http_build_query(params) == (
            "id=7&recipients%5B0%5D%5Brecipient%5D=380971112233"
            "&recipients%5B0%5D%5Bname%5D=%D0%92%D0%B0%D1%81%D0%B8%D0%BB%D0%B8%D0%B9"
            "&recipients%5B1%5D%5Brecipient%5D=4901122211112"
        )

    def test_nulls_dropped_booleans_as_digits_tilde_escaped_like_php(self) -> None:
        params = {"params": {"replace": True, "placeholdersFlag": None, "x": False}, "t": "a~b c*"}
        assert proto.http_build_query(params) == "params%5Breplace%5D=1&params%5Bx%5D=0&t=a%7Eb+c%2A"

    def test_plain_number_list(self) -> None:
        assert proto.http_build_query({"recipients": ["1", "2"]}) == "recipients%5B0%5D=1&recipients%5B1%5D=2"


class TestBuild:
    def test_post_with_form_body_and_query(self) -> None:
        req = proto.build("Campaign", "send", "KEY123", {"id": 5}, idempotent=False)
        assert (req.method, req.path) == ("POST", "/service/campaign/send")
        assert list(req.params) == [("output", "json"), ("api", "v1"), ("apiKey", "KEY123")]
        assert req.headers == {"Content-Type": "application/x-www-form-urlencoded"}
        assert req.content == b"id=5"
        assert req.idempotent is False

    def test_get_without_params_like_the_php_client(self) -> None:
        req = proto.build("user", "getOwnBalance", "KEY123")
        assert (req.method, req.path, req.content) == ("GET", "/service/user/getOwnBalance", None)

    def test_multipart_keeps_nested_names_as_form_parts(self) -> None:
        req = proto.build(
            "campaign", "addRecipients", "K", {"id": 3, "params": {"recipientsFileSkipHeader": True}},
            files={"recipientsFile": ("a.csv", b"x", "text/csv")},
        )
        assert req.form == {"id": "3", "params[recipientsFileSkipHeader]": "1"}
        assert req.files == {"recipientsFile": ("a.csv", b"x", "text/csv")}

    def test_repr_never_shows_the_key(self) -> None:
        req = proto.build("campaign", "get", "SECRETKEY0123456789", {"id": 1})
        assert "SECRETKEY" not in repr(req)


class TestParse:
    @pytest.mark.parametrize("code", [0, 98, 99, 100])
    def test_success_and_partial_codes_are_returned(self, code: int) -> None:
        result = proto.parse(answer(code, "17" if code == 100 else [{"code": "0"}]))
        assert result.code == code
        if code == 100:
            assert result.task_id == 17

    def test_string_numbers_in_known_fields_are_converted(self) -> None:
        data = {"id": "12", "name": "123", "counters": {"totalMsgNum": "5", "totalCost": "1.25"},
                "items": [{"messageId": "9", "recipient": "77011112233", "code": "4"}], "totalItemCount": "1"}
        parsed = proto.parse(answer(0, data)).data
        assert parsed["id"] == 12 and parsed["name"] == "123"
        assert parsed["counters"] == {"totalMsgNum": 5, "totalCost": 1.25}
        assert parsed["items"][0] == {"messageId": 9, "recipient": "77011112233", "code": 4}
        assert parsed["totalItemCount"] == 1

    @pytest.mark.parametrize(
        ("code", "error", "retryable_by_airflow"),
        [
            (1, exc.SmsValidationError, False),
            (2, exc.SmsNotFoundError, False),
            (3, exc.SmsServerError, True),
            (4, exc.SmsFatalError, False),
            (5, exc.SmsFatalError, False),
            (6, exc.SmsFatalError, False),
            (8, exc.SmsAuthError, False),
            (9, exc.SmsAuthError, False),
            (10, exc.SmsLockedError, True),
            (11, exc.SmsValidationError, False),
            (12, exc.SmsValidationError, False),
            (14, exc.SmsAuthError, False),
            (15, exc.SmsConflictError, False),
            (30, exc.SmsRateLimitedError, True),
            (999, exc.SmsServerError, True),
        ],
    )
    def test_every_error_code_maps_to_its_exception(
        self, code: int, error: type[Exception], retryable_by_airflow: bool
    ) -> None:
        from airflow.providers.common.compat.sdk import AirflowFailException

        with pytest.raises(error) as info:
            proto.parse(answer(code, None, "boom"))
        assert info.value.code == code
        assert isinstance(info.value, AirflowFailException) is not retryable_by_airflow

    def test_validation_error_names_the_fields(self) -> None:
        with pytest.raises(exc.SmsValidationError) as info:
            proto.parse(answer(1, {"text": "Text is empty", "validity": "Too big"}, "Validation"))
        assert info.value.field == "text"
        assert "text: Text is empty" in str(info.value) and "validity: Too big" in str(info.value)

    def test_wrong_domain_names_the_right_one(self) -> None:
        with pytest.raises(exc.SmsWrongDomainError) as info:
            proto.parse(answer(13, "api.mobizon.com.br"))
        assert info.value.domain == "api.mobizon.com.br"
        assert "api.mobizon.com.br" in str(info.value)

    @pytest.mark.parametrize("status", [500, 502, 503])
    def test_http_5xx_is_a_server_error(self, status: int) -> None:
        with pytest.raises(exc.SmsServerError):
            proto.parse(Response(status, b"<html>bad gateway</html>", {}))

    def test_http_429_is_rate_limit(self) -> None:
        with pytest.raises(exc.SmsRateLimitedError):
            proto.parse(Response(429, b"", {}))

    def test_not_json_is_a_protocol_error_with_short_excerpt(self) -> None:
        with pytest.raises(exc.SmsProtocolError) as info:
            proto.parse(Response(200, b"<html>" + b"x" * 1000, {}))
        assert len(str(info.value)) < 250


class TestDecisions:
    @pytest.mark.parametrize(
        ("status", "outcome"),
        [(0, proto.WAITING), (1, proto.WAITING), (2, proto.SUCCEEDED), (3, proto.FAILED)],
    )
    def test_task_outcome(self, status: int, outcome: str) -> None:
        assert proto.task_outcome({"status": status, "progress": 40})[0] == outcome

    def test_campaign_outcome_declined_quotes_moderator(self) -> None:
        outcome, message = proto.campaign_outcome(
            {"id": 4, "commonStatus": "DECLINED", "globalComment": "forbidden words"}, ["DONE"], ["DECLINED"]
        )
        assert outcome == proto.FAILED and "forbidden words" in message

    @pytest.mark.parametrize(
        ("status", "outcome"), [("RUNNING", "waiting"), ("SENT", "waiting"), ("DONE", "succeeded")]
    )
    def test_campaign_outcome_targets(self, status: str, outcome: str) -> None:
        assert proto.campaign_outcome({"commonStatus": status}, ["DONE"], ["DECLINED"])[0] == outcome

    @pytest.mark.parametrize(
        ("status", "targets", "reached"),
        [
            ("DONE", ["SENT"], True),  # passed SENT between two polls: the wait must end
            ("SENT", ["SENT"], True),
            ("RUNNING", ["SENT"], False),
            ("SENT", ["RUNNING"], True),
            ("READY_FOR_SEND", ["MODERATION"], True),
            ("MODERATION", ["READY_FOR_SEND"], False),
            ("DECLINED", ["SENT"], False),
            ("DECLINED", ["DECLINED"], True),
            ("SOMETHING_NEW", ["SENT"], False),
            ("SOMETHING_NEW", ["SOMETHING_NEW"], True),
        ],
    )
    def test_statuses_are_reached_or_passed_in_document_order(self, status: str, targets: list, reached: bool) -> None:
        from airflow_sms_provider import status_map

        assert proto.status_reached(status, targets) is reached
        assert status_map.reached("mobizon", status, targets) is reached
        expected = proto.SUCCEEDED if reached and status != "DECLINED" else None
        if expected:
            assert proto.campaign_outcome({"id": 1, "commonStatus": status}, targets, ["DECLINED"])[0] == expected

    def test_other_providers_compare_for_equality(self) -> None:
        from airflow_sms_provider import status_map

        assert status_map.reached("bsg", "done", ["sending"]) is False
        assert status_map.reached("bsg", "sending", ["sending"]) is True
