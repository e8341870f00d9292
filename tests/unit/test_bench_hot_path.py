"""bench/hot_path runs (no network: a MockTransport answers as Mobizon does), so the bench cannot rot unseen."""

from __future__ import annotations

import json
import logging

import pytest


def test_every_piece_of_the_hot_path_runs_on_an_audience_that_is_not_whole_portions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import hot_path

    conn = {"conn_type": "mobizon", "host": "http://127.0.0.1:9", "password": hot_path.API_KEY}
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", json.dumps(conn))
    try:
        hot_path.main(["1234"])  # 2 portions of 500 and one of 234: each answered with its own count
    finally:
        logging.disable(logging.NOTSET)  # main silences the progress lines for the whole process
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("1,234 ", "  "))]
    assert lines[0] == "1,234 recipients, CPU ms per 1,000"
    assert [line.split("  ")[1].strip() for line in lines[1:]][-2:] == [
        "whole execute over MockTransport (all threads)", "limit-like client over MockTransport"]
    assert all(line.endswith(" ms") for line in lines[1:]) and len(lines) == 7
