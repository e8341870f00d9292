"""A delivery report of a campaign the provider does not know fails naming it, never quietly empty.

Found (#11 audit): message listings by campaign answer an empty page for a deleted, mistyped
or other account's campaign id, exactly as for a campaign without messages, so
``iter_delivery_records`` and ``SmsDeliveryReportOperator`` exported an empty report and
succeeded. A campaign that lists no message is now read once; an unknown one fails without
retry, naming the campaign id, the host and the provider's words.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_sms_provider import exceptions as exc
from airflow_sms_provider.hooks.bsg import BsgHook
from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.operators.reports import SmsDeliveryReportOperator

MISSING = 987654
HOOKS = {"mobizon": MobizonHook, "bsg": BsgHook}


@pytest.fixture(params=["mobizon", "bsg"])
def provider(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue(f"{request.param}_conn")
    return str(request.param)


def test_listing_an_unknown_campaign_fails_naming_it_and_the_host(provider: str, sandbox_url: str) -> None:
    hook = HOOKS[provider]()
    with pytest.raises(exc.SmsNotFoundError) as raised:
        list(hook.iter_delivery_records([MISSING]))
    assert f"campaign {MISSING} not found at {sandbox_url}" in str(raised.value), raised.value


def test_the_report_operator_fails_without_retry_on_an_unknown_campaign(
    provider: str, sandbox_url: str, tmp_path: Path
) -> None:
    report = SmsDeliveryReportOperator(task_id="report", conn_id=f"{provider}_default", campaign_ids=[MISSING],
                                       destination=str(tmp_path / "r.csv"))  # fmt: skip
    with pytest.raises(exc.SmsNotFoundError) as raised:
        report.execute({"run_id": "manual"})
    assert isinstance(raised.value, AirflowFailException)  # no retry: the id will not appear
    assert f"campaign {MISSING} not found at {sandbox_url}" in str(raised.value), raised.value


def test_a_known_campaign_without_messages_is_an_empty_report(mobizon_conn: str) -> None:
    hook = MobizonHook()
    campaign_id = hook.create_campaign("Hi", name="empty")
    assert list(hook.iter_delivery_records([campaign_id])) == []
