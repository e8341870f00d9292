"""The audience rule in recipients.py: a number once per audience, first row wins; filled-text length."""

from __future__ import annotations

import pytest

from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.recipients import DuplicateReport, check_filled_length, fill_placeholders, iter_recipients


def test_a_repeated_number_is_dropped_after_normalisation_and_the_first_row_wins() -> None:
    rows = [{"recipient": "+7 701 111 2201", "name": "Ana"}, {"recipient": "77011112202", "name": "Bo"},
            {"recipient": "7-701-111-22-01", "name": "Ana 2"}, {"recipient": "77011112201", "name": "Ana 3"}]
    duplicates = DuplicateReport(cap=1)
    kept = list(iter_recipients(rows, duplicates=duplicates))
    assert [(r.number, r.params["name"], r.row) for r in kept] == [("77011112201", "Ana", 1),
                                                                   ("77011112202", "Bo", 2)]
    assert duplicates.summary() == {"count": 2, "examples": [{"row": 3, "first_row": 1}]}


def test_without_a_report_nothing_is_dropped() -> None:
    assert len(list(iter_recipients(["77011112201", "77011112201"]))) == 2


def test_a_clean_audience_reports_zero() -> None:
    duplicates = DuplicateReport()
    assert len(list(iter_recipients(["77011112201", "77011112202"], duplicates=duplicates))) == 2
    assert duplicates.summary() == {"count": 0, "examples": []}


def test_fill_placeholders_keeps_unknown_names() -> None:
    assert fill_placeholders("Hi {name}, {code}", {"name": "Ana"}) == "Hi Ana, {code}"


def test_a_value_that_makes_the_text_too_long_names_the_row_and_the_value() -> None:
    def fits(text: str) -> str | None:
        return None if len(text) <= 20 else f"{len(text)} characters, at most 20"

    check_filled_length("Hi {name}", {"name": "Ana"}, 1, fits)
    with pytest.raises(SmsValidationError, match=r"row 7: .* 33 characters, at most 20; .*'name', is 30 characters"):
        check_filled_length("Hi {name}", {"name": "x" * 30, "code": "1"}, 7, fits)
