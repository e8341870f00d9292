"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from airflow_sms_provider.hooks.bsg import BsgSession


@pytest.fixture
def jwts(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every JWT a BSG session (hook or trigger) keeps from now on."""
    issued: set[str] = set()
    keep = BsgSession._keep

    def recording(self: BsgSession, token: str) -> None:
        issued.add(token)
        keep(self, token)

    monkeypatch.setattr(BsgSession, "_keep", recording)
    return issued
