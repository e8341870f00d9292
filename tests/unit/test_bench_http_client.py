"""bench/http_client runs against a sandbox process, its three clients reading the same bytes: it cannot rot unseen."""

from __future__ import annotations

import pytest


def test_the_three_clients_read_the_same_answers_and_the_table_has_both_calls(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import http_client

    monkeypatch.setattr(http_client, "per_request", lambda call, count: [call() for _ in range(3)] and 100.0)
    http_client.main(3)  # asserts that httpx, send over httpx and send over the lane read the same bytes
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "µs" in line]
    assert [row.split(" | ")[0] for row in rows] == ["| campaign/get", "| message/list page of 100"]
    assert all(row.endswith("| **1.0x less CPU** |") for row in rows)
