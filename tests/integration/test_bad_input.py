"""Issue #5, bad input: every case fails with an AirflowFailException naming the field and the
value (or rows), before any request that creates or sends anything.

One test per row of docs/bad-input.md (cases in ``bad_input_cases.py``). The message column
of that table comes from these runs: ``SMS_BAD_INPUT_DOC=write pytest tests/integration/test_bad_input.py``
rewrites it; otherwise each test checks its row still says what the code says.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from tests.helpers import run_dag, sandbox_requests
from tests.integration.bad_input_cases import CASES, NOT_APPLICABLE, Case, Env

DOC = Path(__file__).resolve().parents[2] / "docs" / "bad-input.md"
START, END = "<!-- bad-input-table:start -->", "<!-- bad-input-table:end -->"
HEADER = ("| case | provider | operator | input | field named | message | raised before |\n"
          "|---|---|---|---|---|---|---|\n")
WRITE = os.environ.get("SMS_BAD_INPUT_DOC") == "write"

MOBIZON_WRITES = {"campaign/create", "campaign/addrecipients", "campaign/send", "campaign/delete",
                  "message/sendsmsmessage"}
OGANGI_WRITES = {"tools/sendSMSByFile", "createBroadcastFromJson", "suspendBroadcast", "resumeBroadcast",
                 "stopBroadcast", "broadcast"}
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:[+-]\d\d:\d\d| UTC)?")


@dataclass(frozen=True)
class Outcome:
    """What the task raised: class, message, the field it carries."""

    error: type[BaseException]
    message: str
    field: str | None


@dataclass(frozen=True)
class Row:
    operator: str
    message: str
    before: str


RESULTS: dict[str, Row] = {}


# ------------------------------------------------------------------ the sandbox's request log


def call_name(entry: dict[str, Any]) -> str:
    """``campaign/get``, ``POST /api/auth/login``, ``getShortcodes``: a logged request, readable."""
    path = entry["path"]
    if entry["provider"] == "mobizon":
        return path.split("/service/", 1)[1]
    if entry["provider"] == "bsg":
        return f"{entry['method']} {path}"
    parts = path.split("/rest/api/", 1)[1].split("/")
    return "/".join(parts[:2]) if parts[0] == "tools" else parts[0]


def writes(entry: dict[str, Any]) -> bool:
    """Does this request create, change or send anything?"""
    name = call_name(entry)
    if entry["provider"] == "mobizon":
        return name.lower() in MOBIZON_WRITES
    if entry["provider"] == "bsg":
        return entry["method"] in ("POST", "PATCH") and entry["path"].startswith("/api/campaigns")
    return name in OGANGI_WRITES


def last_seq(url: str) -> int:
    return max((entry["seq"] for entry in sandbox_requests(url)), default=0)


# ------------------------------------------------------------------ running a case


def run_execute(case: Case, env: Env) -> tuple[str, Outcome, int]:
    operator = case.make(env)
    RESULTS[case.id] = Row(type(operator).__name__, "", "")  # the operator, also for rows not checked yet
    start = last_seq(env.url)  # after the setup requests (a campaign to add to)
    ti = SimpleNamespace(dag_id="bad_input", task_id="bad", run_id="manual__bad_input", map_index=-1)
    with pytest.raises(Exception) as caught:
        operator.execute({"ti": ti, "run_id": ti.run_id})
    err = caught.value
    return type(operator).__name__, Outcome(type(err), str(err), getattr(err, "field", None)), start


def run_through_airflow(case: Case, env: Env) -> tuple[str, Outcome, int]:
    """dag.test() with retries=2: the task must fail at its first try (its exception caught on the way out)."""
    from airflow.providers.common.compat.sdk import DAG

    failures: list[BaseException] = []

    with DAG(dag_id=f"bad_input_{case.id.replace('-', '_')}", schedule=None,
             start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
        operator = case.make(env)
        RESULTS[case.id] = Row(type(operator).__name__, "", "")
        operator.retries, operator.retry_delay = 2, dt.timedelta(0)
    cls = type(operator)
    original = cls.execute

    def execute(self: Any, context: Any) -> Any:
        try:
            return original(self, context)
        except Exception as err:
            failures.append(err)
            raise

    env.monkeypatch.setattr(cls, "execute", execute)
    start = last_seq(env.url)
    run = run_dag(dag)
    (ti,) = run.get_task_instances()
    assert str(ti.state).endswith("failed") and ti.try_number == 1, (ti.state, ti.try_number)
    assert len(failures) == 1, failures  # executed once
    err = failures[0]
    return type(operator).__name__, Outcome(type(err), str(err), getattr(err, "field", None)), start


def stable(message: str, env: Env) -> str:
    """The message without what changes from run to run (times, temporary paths, the port)."""
    return _TIME.sub("<time>", message.replace(str(env.tmp_path), "<tmp>").replace(env.url, "<sandbox>"))


def before(case: Case, reads: list[str]) -> str:
    if case.requests is not None:
        return f"— the provider refuses the first call; {case.requests} request, no retry"
    if not reads:
        return "any request"
    return "any request that creates or sends; after reading " + ", ".join(dict.fromkeys(reads))


# ------------------------------------------------------------------ the test


@pytest.fixture
def env(
    mobizon_conn: str, bsg_conn: str, ogangi_conn: str, sandbox_url: str, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Env:
    return Env(sandbox_url, monkeypatch, tmp_path)


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=f"Mobizon: {case.missing}")] if case.missing else []
    return pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_bad_input(case: Case, env: Env, request: pytest.FixtureRequest) -> None:
    if case.setup is not None:
        case.setup(env)
    if case.via_dag:
        request.getfixturevalue("airflow_db")
    operator, outcome, start = run_through_airflow(case, env) if case.via_dag else run_execute(case, env)

    assert issubclass(outcome.error, AirflowFailException), outcome
    assert issubclass(outcome.error, case.error), outcome
    assert case.field in outcome.message, outcome.message
    for shown in case.shows:
        assert shown in outcome.message, (shown, outcome.message)
    if case.expected_field is not None:
        assert outcome.field == case.expected_field, outcome
    calls = [entry for entry in sandbox_requests(env.url, case.provider) if entry["seq"] > start]
    names = [call_name(entry) for entry in calls]
    if case.requests is not None:
        assert len(calls) == case.requests, names
    else:
        assert not [name for entry, name in zip(calls, names, strict=True) if writes(entry)], names
        assert names == list(case.reads), names

    row = Row(operator, stable(outcome.message, env), before(case, names))
    RESULTS[case.id] = row
    if not WRITE:
        documented = doc_rows().get(case.id)
        assert documented is not None, f"{case.id} is not in {DOC.name}: run with SMS_BAD_INPUT_DOC=write"
        assert documented == render(case, row), "docs/bad-input.md is out of date: run with SMS_BAD_INPUT_DOC=write"


# ------------------------------------------------------------------ the table in docs/bad-input.md


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(case: Case, row: Row) -> str:
    message = f"*not yet:* {case.missing}" if case.missing else f"`{_cell(row.message)}`"
    before_cell = "—" if case.missing else row.before
    cells = (case.id, case.provider, f"`{row.operator}`", _cell(case.input), case.field, message, before_cell)
    return "| " + " | ".join(cells) + " |"


def doc_rows() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    body = text.split(START, 1)[1].split(END, 1)[0] if START in text else ""
    return {line.split("|")[1].strip(): line for line in body.splitlines() if line.startswith("| ") and
            not line.startswith("| case ")}


def write_doc() -> None:
    old = doc_rows()
    lines = []
    for case in CASES:
        row = RESULTS.get(case.id)
        if row is not None and (row.message or case.missing):  # checked, or known to be missing
            lines.append(render(case, row))
        elif case.id in old:
            lines.append(old[case.id])
    na = "\n".join(f"- {who}: {what} — does not apply ({why})." for who, what, why in NOT_APPLICABLE)
    table = f"{START}\n{HEADER}" + "\n".join(lines) + f"\n{END}\n\nNot applicable:\n\n{na}\n"
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1].split("\n\n<!-- end of generated part -->", 1)[1]
    DOC.write_text(head + table + "\n<!-- end of generated part -->" + tail, encoding="utf-8")


@pytest.fixture(scope="module", autouse=True)
def _write_doc_at_the_end() -> Iterator[None]:
    yield
    if WRITE and RESULTS:
        write_doc()
