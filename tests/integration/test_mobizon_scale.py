"""Big-audience behaviour against the sandbox: the file path, resuming it, bounded concurrency."""

from __future__ import annotations

from typing import Any

import pendulum
import pytest

from airflow_sms_provider.hooks.mobizon import MobizonHook
from airflow_sms_provider.operators.mobizon import (
    MobizonAddRecipientsOperator,
    MobizonCampaignOperator,
    MobizonMessageStatusOperator,
)
from tests.helpers import (
    DurableStore,
    add_faults,
    run_dag,
    sandbox_requests,
    sandbox_state,
    set_clock,
    task_states,
    xcom,
)


def numbers(count: int, start: int = 1) -> list[str]:
    return [f"7701{start + i:07d}" for i in range(count)]



def add(campaign_id: int, recipients: Any, **kw: Any) -> MobizonAddRecipientsOperator:
    return MobizonAddRecipientsOperator(task_id="add", campaign_id=campaign_id, recipients=recipients, **kw)


def uploads(url: str) -> list[dict[str, Any]]:
    return [r for r in sandbox_requests(url, "mobizon") if r["path"].lower().endswith("addrecipients")]


@pytest.fixture
def fast_tasks(sandbox_url: str) -> str:
    set_clock(sandbox_url, speed=1000)  # background imports finish in a blink
    return sandbox_url


class TestFilePath:
    def test_an_audience_over_the_threshold_goes_up_as_a_file(self, mobizon_conn: str, fast_tasks: str) -> None:
        campaign_id = MobizonHook().create_campaign("Sale")
        summary = add(campaign_id, iter(numbers(250)), file_upload_threshold=100).execute({})
        assert summary["upload"] == "file" and summary["files"] == 1
        assert (summary["uploaded"], summary["added"], summary["rejected"]) == (250, 250, 0)
        assert summary["message_ids"] == [] and len(summary["background_task_ids"]) == 1
        (upload,) = uploads(fast_tasks)
        assert "recipientsFile" in upload["form_keys"] and "recipients[*]" not in upload["form_keys"]
        state = sandbox_state(fast_tasks, "mobizon")
        assert sorted(state["campaigns"][0]["recipients"]) == numbers(250)
        assert state["tasks"][0]["rows"] == 250

    def test_added_is_final_although_the_counters_lag(self, mobizon_conn: str, fast_tasks: str) -> None:
        # counters.totalMsgNum is "updated during the processing (before sending)": read right
        # after the task it still missed the import, and `added` came out 0 (or short).
        import httpx

        httpx.post(f"{fast_tasks}/_sandbox/config", json={"counters_delay": 10**6}).raise_for_status()
        campaign_id = MobizonHook().create_campaign("Sale")
        summary = add(campaign_id, iter(numbers(250)), file_upload_threshold=100).execute({})
        assert (summary["uploaded"], summary["added"], summary["rejected"]) == (250, 250, 0)
        assert MobizonHook().get_campaign_info(campaign_id)["counters"]["totalMsgNum"] < 250

    def test_contacts_beyond_500_go_in_portions_and_rejections_name_the_contact(
        self, mobizon_conn: str, sandbox_url: str
    ) -> None:
        # "split the list into portions of 500 or fewer and upload each portion with a separate
        # API call"; a rejected contact's `contact` id is the only thing naming it (recipient null).
        campaign_id = MobizonHook().create_campaign("Hello")
        contacts = ["101", "102", *(str(900000 + i) for i in range(600))]
        summary = MobizonAddRecipientsOperator(
            task_id="add", campaign_id=campaign_id, contacts=contacts, max_reported=3).execute({})  # fmt: skip
        assert (summary["added"], summary["rejected"]) == (2, 600)
        assert summary["rejections"][0] == {"recipient": None, "code": 30, "reason": "contact card not found",
                                            "contact": 900000}  # fmt: skip
        assert len(uploads(sandbox_url)) == 2

    def test_an_audience_up_to_the_threshold_goes_in_portions(self, mobizon_conn: str, fast_tasks: str) -> None:
        campaign_id = MobizonHook().create_campaign("Sale")
        summary = add(campaign_id, numbers(600), file_upload_threshold=600).execute({})
        assert summary["upload"] == "portions" and summary["added"] == 600 and len(summary["message_ids"]) == 100
        assert len(uploads(fast_tasks)) == 2
        assert sandbox_state(fast_tasks, "mobizon")["tasks"] == []

    @pytest.mark.parametrize(("flag", "ana"), [(1, "Hi Ana, code {code}"), (2, "Hi Ana, code ")])
    def test_template_rows_keep_their_placeholders_in_the_file(
        self, flag: int, ana: str, mobizon_conn: str, fast_tasks: str, tmp_path: Any
    ) -> None:
        campaign_id = MobizonHook().create_campaign("Hi {name}, code {code}", campaign_type=3)
        rows = [{"recipient": "+7 701 111 22 01", "name": "Ana"},
                {"recipient": "77011112202", "name": "Bo, \"B\"", "code": "X7", "city": "unused"},
                {"recipient": "12", "name": "bad number"}]  # fmt: skip
        report = tmp_path / "rejected.csv"
        summary = add(campaign_id, rows, file_upload_threshold=0, placeholders_flag=flag, on_invalid="skip",
                      reject_report_path=str(report)).execute({})  # fmt: skip
        assert summary["upload"] == "file" and summary["added"] == 2
        assert summary["invalid"]["rejected"] == 1 and report.read_text().count("\n") == 2
        recipients = sandbox_state(fast_tasks, "mobizon")["campaigns"][0]["recipients"]
        assert recipients["77011112201"]["text"] == ana
        assert recipients["77011112202"]["text"] == 'Hi Bo, "B", code X7'

    def test_a_big_audience_is_split_into_files_below_the_size_limit(
        self, mobizon_conn: str, fast_tasks: str
    ) -> None:
        campaign_id = MobizonHook().create_campaign("Sale")
        summary = add(campaign_id, numbers(400), file_upload_threshold=0, max_file_bytes=1024).execute({})
        assert summary["files"] == 5 == len(summary["background_task_ids"])  # 12 bytes a line, 85 lines a file
        assert summary["added"] == 400
        assert len(sandbox_state(fast_tasks, "mobizon")["campaigns"][0]["recipients"]) == 400

    def test_a_retry_uploads_only_the_files_not_yet_done(
        self, mobizon_conn: str, fast_tasks: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from tests.conftest import mobizon_conn_uri

        monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(fast_tasks, retry_attempts=1))
        campaign_id = MobizonHook().create_campaign("Sale")
        add_faults(fast_tasks, {"provider": "mobizon", "path": "(?i)addrecipients", "skip": 2, "times": 1,
                                "action": "http_status", "status": 503})  # fmt: skip
        store = DurableStore()
        operator = add(campaign_id, numbers(400), file_upload_threshold=0, max_file_bytes=1024)
        with pytest.raises(Exception, match="503"):
            operator.execute({"task_state_store": store})
        assert len(uploads(fast_tasks)) == 3  # two files done, the third failed
        summary = operator.execute({"task_state_store": store})
        assert summary["added"] == 400 and summary["files"] == 5
        assert len(uploads(fast_tasks)) == 6  # the three missing files only
        campaign = sandbox_state(fast_tasks, "mobizon")["campaigns"][0]
        assert len(campaign["messages"]) == 400 and campaign["recipientsRejected"] == 0

    def test_one_step_campaign_over_the_threshold(self, airflow_db: None, mobizon_conn: str, fast_tasks: str) -> None:
        from airflow.providers.common.compat.sdk import DAG

        with DAG(dag_id="mobizon_scale_file", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
                 params={"threshold": 10}) as dag:  # fmt: skip
            MobizonCampaignOperator(task_id="campaign", text="Hello", recipients=numbers(50), poll_interval=0.2,
                                    file_upload_threshold="{{ params.threshold }}", expected_count=50)
        run = run_dag(dag)
        assert str(run.state).endswith("success"), task_states(run)
        summary = xcom(run, "campaign")
        assert summary["upload"] == "file" and summary["added"] == 50 and summary["status"] == "DONE"


class TestConcurrentReads:
    @pytest.fixture
    def campaign(self, mobizon_conn: str, sandbox_url: str) -> tuple[int, list[int]]:
        hook = MobizonHook()
        campaign_id = hook.create_campaign("Sale")
        ids = hook.add_recipients_in_portions(campaign_id, numbers(1234), keep_message_ids=2000).message_ids
        return campaign_id, ids

    def test_statuses_survive_rate_limits_complete_and_in_order(
        self, campaign: tuple[int, list[int]], sandbox_url: str
    ) -> None:
        _, ids = campaign
        add_faults(sandbox_url, {"provider": "mobizon", "path": "(?i)getsmsstatus", "skip": 3, "times": 4,
                                 "action": "mobizon_code", "code": 30})  # fmt: skip
        statuses = MobizonHook().get_sms_status(ids, concurrency=4)
        assert [s["id"] for s in statuses] == ids
        calls = [r for r in sandbox_requests(sandbox_url, "mobizon") if r["path"].lower().endswith("getsmsstatus")]
        assert len(calls) == 13 + 4 and sum(1 for c in calls if c["code"] == 30) == 4

    def test_message_pages_with_concurrency_match_the_sequential_walk(
        self, campaign: tuple[int, list[int]]
    ) -> None:
        campaign_id, ids = campaign
        hook = MobizonHook()
        concurrent = [m["id"] for m in hook.iter_messages({"campaignIds": [campaign_id]}, concurrency=5)]
        sequential = [m["id"] for m in hook.iter_messages({"campaignIds": [campaign_id]})]
        assert concurrent == sequential == ids

    def test_status_operator_with_concurrency(self, campaign: tuple[int, list[int]]) -> None:
        campaign_id, ids = campaign
        by_ids = MobizonMessageStatusOperator(task_id="s", message_ids=ids, concurrency=3).execute({})
        by_campaign = MobizonMessageStatusOperator(task_id="s", campaign_id=campaign_id, concurrency=3).execute({})
        assert by_ids["counts"] == by_campaign["counts"] == {"NEW": 1234}
