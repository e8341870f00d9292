"""``airflow-sms-sandbox --help`` names the three providers it emulates (#14: it said "and later BSG, Ogangi")."""

from __future__ import annotations

import pytest

from airflow_sms_provider.sandbox.server import _parse_args


def test_help_names_every_emulated_provider(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Mobizon, BSG One-API and Ogangi (Messangi MMC) APIs" in text
    assert "later" not in text
    assert "--speed" in text and "wall clock" in text
