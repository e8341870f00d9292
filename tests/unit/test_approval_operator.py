"""SmsApprovalOperator: what the approver is shown, the thresholds, and Airflow before 3.1.

The estimate runs for real (a Mobizon connection with a rate: no request is made); the
human-in-the-loop request is captured where the standard provider writes it
(``upsert_hitl_detail``), and the wait it starts (``TaskAwaitingInput`` on Airflow 3.3, a
deferral before) is caught.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from airflow_sms_provider.exceptions import SmsValidationError
from airflow_sms_provider.operators import approval
from airflow_sms_provider.operators.approval import HITL_MISSING, SmsApprovalOperator
from tests.secret_forms import leaks

KEY = "mzKey0123+456/789=abc%2Fdef&ghijklmnopqrstuvwxyz"  # the canary's hostile characters
ROWS = [
    {"recipient": "77011234567", "name": "Ann ```<b>x</b>``` [link](http://evil)"},
    {"recipient": "77011234568", "name": "{{ 7 * 7 }}"},
    {"recipient": "77011234567", "name": "Again"},
    {"recipient": "12", "name": "Typo"},
]

needs_hitl = pytest.mark.skipif(HITL_MISSING is not None, reason=HITL_MISSING or "")


@pytest.fixture
def conn(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AIRFLOW_CONN_MZ_APPROVAL", json.dumps({
        "conn_type": "mobizon", "host": "http://127.0.0.1:9", "password": KEY,
        "extra": {"price_per_part": "2.5", "currency": "KZT"}}))  # fmt: skip
    return "mz_approval"


class FakeTI:
    def __init__(self) -> None:
        self.id, self.xcom = uuid.uuid4(), {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The requests written for a person (what the Required Actions page shows)."""
    requests: list[dict[str, Any]] = []
    hitl = pytest.importorskip("airflow.providers.standard.operators.hitl")
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **kwargs: requests.append(kwargs))
    return requests


def run(op: SmsApprovalOperator) -> tuple[Any, FakeTI]:
    ti = FakeTI()
    try:
        return op.execute({"ti": ti, "task_instance": ti}), ti
    except BaseException as waiting:  # TaskAwaitingInput (3.3) or TaskDeferred: the wait for a person
        if type(waiting).__name__ not in ("TaskAwaitingInput", "TaskDeferred"):
            raise
        return waiting, ti


@needs_hitl
def test_the_request_shows_size_parts_cost_and_masked_samples(conn: str, asked: list[dict[str, Any]]) -> None:
    op = SmsApprovalOperator(task_id="approve", conn_id=conn, text="Hi {name}", recipients=ROWS, sample_size=5,
                             body="Weekly reminders.")  # fmt: skip
    result, ti = run(op)
    assert type(result).__name__ in ("TaskAwaitingInput", "TaskDeferred")
    (request,) = asked
    assert request["options"] == ["Approve", "Reject"]
    assert request["subject"] == "Approve SMS send: 2 recipients, 2 parts, 5 KZT"
    assert request["body"] == (
        "Weekly reminders.\n\n"
        "**Audience**: 2 recipients (1 row rejected, 1 duplicate sent once)\n"
        "**SMS parts**: 1 part each; 2 parts in all (GSM-7: 1, UCS-2: 1)\n"  # a backtick is not GSM-7
        "**Estimated cost**: 5 KZT (price_per_part 2.5 KZT of connection 'mz_approval')\n"
        "**Provider**: mobizon, connection `mz_approval`\n"
        "\n"
        "Texts as they will be sent (2 of 2, numbers masked):\n"
        "\n"
        "````text\n"  # longer than any backtick run in the data: the data cannot close the block
        "+7701***4567: Hi Ann ```<b>x</b>``` [link](http://evil)\n"
        "+7701***4568: Hi {{ 7 * 7 }}\n"
        "````\n"
        "\n"
        "Rejected rows (not sent):\n"
        "- row 4: too short: 2 digits, at least 10 expected"
    )
    assert not leaks(json.dumps(request, default=str) + json.dumps(ti.xcom, default=str), {KEY})
    assert "77011234567" not in request["body"]
    assert ti.xcom["estimate"]["cost"] == 5.0 and ti.xcom["estimate"]["recipients"] == 2


@needs_hitl
def test_customer_data_is_never_rendered(conn: str) -> None:
    from airflow.providers.common.compat.sdk import DAG

    with DAG("approval_render", schedule=None):
        op = SmsApprovalOperator(task_id="approve", conn_id="{{ params.c }}", text="Hi {name}", recipients=ROWS,
                                 subject="{{ params.c }} send")  # fmt: skip
    op.render_template_fields({"params": {"c": conn}})
    assert op.conn_id == conn and op.subject == "mz_approval send"
    assert op.recipients[1]["name"] == "{{ 7 * 7 }}"


@needs_hitl
def test_more_than_max_recipients_fails_without_asking(conn: str, asked: list[dict[str, Any]]) -> None:
    op = SmsApprovalOperator(task_id="approve", conn_id=conn, text="Hi {name}", recipients=ROWS, max_recipients=1)
    with pytest.raises(SmsValidationError) as info:
        run(op)
    assert (info.value.field, info.value.value) == ("max_recipients", 2) and asked == []


@needs_hitl
def test_a_cost_below_the_threshold_is_approved_without_asking(conn: str, asked: list[dict[str, Any]]) -> None:
    op = SmsApprovalOperator(task_id="approve", conn_id=conn, text="Hi {name}", recipients=ROWS,
                             auto_approve_below_cost=5.01)  # fmt: skip
    result, _ = run(op)
    assert result["chosen_options"] == ["Approve"] and result["auto_approved"] is True and asked == []
    at_threshold = SmsApprovalOperator(task_id="approve2", conn_id=conn, text="Hi {name}", recipients=ROWS,
                                       auto_approve_below_cost=5)  # fmt: skip
    run(at_threshold)
    assert len(asked) == 1


@needs_hitl
def test_an_unknown_cost_is_always_asked(monkeypatch: pytest.MonkeyPatch, asked: list[dict[str, Any]]) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MZ_NORATE", json.dumps({"conn_type": "mobizon", "host": "h", "password": KEY}))
    op = SmsApprovalOperator(task_id="approve", conn_id="mz_norate", text="Hi {name}", recipients=ROWS[:1],
                             auto_approve_below_cost=1000)  # fmt: skip
    run(op)
    (request,) = asked
    assert request["subject"] == "Approve SMS send: 1 recipient, 1 part, unknown cost"


@needs_hitl
@pytest.mark.parametrize(("name", "value"), [("max_recipients", "10"), ("auto_approve_below_cost", -1)])
def test_bad_thresholds_name_field_and_value(conn: str, name: str, value: Any) -> None:
    op = SmsApprovalOperator(task_id="approve", conn_id=conn, text="Hi", recipients=ROWS, **{name: value})
    with pytest.raises(SmsValidationError) as info:
        run(op)
    assert (info.value.field, info.value.value) == (name, value)


def test_before_airflow_3_1_construction_names_the_requirement(monkeypatch: pytest.MonkeyPatch) -> None:
    """On 3.0 the module imports (example DAGs still parse their imports) and building one says why not."""
    from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException

    missing = HITL_MISSING or f"{approval.HITL_REQUIREMENT}: simulated"
    monkeypatch.setattr(approval, "HITL_MISSING", missing)
    with pytest.raises(AirflowOptionalProviderFeatureException, match=r"needs Airflow 3\.1\+"):
        SmsApprovalOperator(task_id="approve", conn_id="c", text="Hi", recipients=["77011234567"])


@needs_hitl
def test_the_send_s_provider_options_reach_the_estimate(conn: str) -> None:
    # Mobizon's placeholders_flag=2 sends a row without {name} (removed): the approver sees it counted (#11).
    rows = [{"recipient": "77011234567", "name": "Ann"}, {"recipient": "77011234568"}]
    without = SmsApprovalOperator(task_id="a1", conn_id=conn, text="Hi {name}!", recipients=rows)
    flagged = SmsApprovalOperator(task_id="a2", conn_id=conn, text="Hi {name}!", recipients=rows,
                                  provider_options={"mobizon": {"placeholders_flag": 2}, "bsg": {"x": 1}})
    assert "provider_options" in SmsApprovalOperator.template_fields
    assert (without.estimate()[0].recipients, flagged.estimate()[0].recipients) == (1, 2)
    assert [s["text"] for s in flagged.estimate()[0].samples] == ["Hi Ann!", "Hi !"]
