"""hooks/ogangi: what a sendSMSByFile answer (one message per row) leaves unaccounted for."""

from __future__ import annotations

from airflow_sms_provider.hooks.ogangi import _not_reached, unanswered

SENT = ["584141234567", "584241234568", "584161234569"]


def message(to: str, status: str = "SENT_TO_CARRIER") -> dict[str, str]:
    return {"id": "1", "to": to, "status": status}


def test_one_message_per_row_accounts_for_all_in_any_order_and_format() -> None:
    answer = [message("+58 416 123 4569"), message("584141234567"), message("58-424-123-4568")]
    assert unanswered(answer, SENT) == ([], [])


def test_rows_without_a_message_and_messages_beyond_one_per_row_are_named() -> None:
    twice = message("584141234567")
    answer = [message("584141234567"), twice, message("580000000000")]
    missing, extra = unanswered(answer, SENT)
    assert sorted(missing) == ["584161234569", "584241234568"]
    assert extra == [twice, answer[2]]


def test_a_number_sent_twice_needs_two_messages() -> None:
    assert unanswered([message("584141234567")], ["584141234567", "584141234567"]) == (["584141234567"], [])


def test_send_text_reports_failed_missing_and_extra_numbers_masked() -> None:
    answer = [message("584141234567", "BAD_TO"), message("580000000000")]
    lines = _not_reached(answer, SENT)
    assert lines == [
        "...4567: BAD_TO",
        "...4568: no message in the provider's answer (unknown whether it was sent)",
        "...4569: no message in the provider's answer (unknown whether it was sent)",
        "...0000: a message (SENT_TO_CARRIER) for a number not sent to",
    ]
    assert not any("58414" in line for line in lines)  # masked
    assert _not_reached([message(n) for n in SENT], SENT) == []
