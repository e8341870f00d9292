"""Issue 12, part 2: the canary run. Every example DAG, with keys holding ``+ / = % &``.

Each example DAG (the provider-neutral ones once per provider) runs with ``dag.test()``
against the sandbox, whose accounts are given these keys, and whose Mobizon and BSG answer
one call with "too many requests" quoting the key in every form (retried: the run still
succeeds, and the retry's warning is logged). Then no form of any secret
(tests/secret_forms.py: raw, percent-encoded in every style, form-encoded, JSON- and
HTML-escaped, base64) may show in: stdout/stderr, Python logging at DEBUG (the package,
httpx, httpcore, Airflow), task log files, trigger logs and the events triggers fire
(deferrable waits run their trigger in-process), XComs, rendered template fields, audit
log rows, trigger rows, the exception texts of failed tasks, and the SMS texts the sandbox
received. BSG's JWTs are secrets too: every token a session kept is looked for.
"""

from __future__ import annotations

import contextlib
import csv
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from airflow_sms_provider.sandbox import ogangi as sandbox_ogangi
from tests.conftest import mobizon_conn_uri
from tests.helpers import EXAMPLE_DAGS, add_faults, load_example, sandbox_state, set_clock, task_states
from tests.integration.test_secrets import AIRFLOW_MASKER_IPC, database_records, debug_logging, log_files
from tests.secret_forms import HOSTILE_CHARS, echo, leaks

pytestmark = pytest.mark.e2e

MOBIZON_KEY = "Canary+Mobizon/Key=0%2F&x1a2b3c4d5e6f7g8h9Zq"
BSG_KEY = "test_Canary+Bsg/Key=5%3D&y0123456789"
OGANGI_PRIVATE = "Canary+Ogangi/Priv=7%2B&z-0123456789"
KEYS = {"mobizon": MOBIZON_KEY, "bsg": BSG_KEY, "ogangi": OGANGI_PRIVATE}
# The delivery report's salt (connection extra report_salt_secret): a secret of every connection that has one.
REPORT_SALT = "Canary+Salt/Rep=9%2F&s0123456789"
SECRETS = {*KEYS.values(), REPORT_SALT}
assert all(set(HOSTILE_CHARS) <= set(key) for key in SECRETS)
REPORT_TABLE = "sms_delivery_report"


@pytest.fixture
def hostile_keys(sandbox_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The three default connections, pointing at the sandbox with the keys above; a SQLite reports database."""
    monkeypatch.setenv("AIRFLOW_CONN_SMS_REPORTS_DB", json.dumps({"conn_type": "sqlite",
                                                                  "host": str(tmp_path / "reports.db")}))
    httpx.post(f"{sandbox_url}/_sandbox/mobizon/accounts", json={"api_key": MOBIZON_KEY}).raise_for_status()
    httpx.post(f"{sandbox_url}/_sandbox/bsg/accounts", json={"api_key": BSG_KEY}).raise_for_status()
    httpx.post(f"{sandbox_url}/_sandbox/config", json={"ogangi_private_key": OGANGI_PRIVATE}).raise_for_status()
    monkeypatch.setenv("AIRFLOW_CONN_MOBIZON_DEFAULT", mobizon_conn_uri(sandbox_url, api_key=MOBIZON_KEY,
                                                                           report_salt_secret=REPORT_SALT))
    monkeypatch.setenv("AIRFLOW_CONN_BSG_DEFAULT", json.dumps(
        {"conn_type": "bsg", "host": sandbox_url, "password": BSG_KEY,
         "extra": {"retry_base_delay": 0.01, "report_salt_secret": REPORT_SALT}}))
    monkeypatch.setenv("AIRFLOW_CONN_OGANGI_DEFAULT", json.dumps({
        "conn_type": "ogangi", "host": f"{sandbox_url}/mmc", "login": sandbox_ogangi.SANDBOX_OGANGI_USER,
        "password": OGANGI_PRIVATE,
        "extra": {"instance_id": sandbox_ogangi.SANDBOX_OGANGI_INSTANCE_ID,
                  "public_key": sandbox_ogangi.SANDBOX_OGANGI_PUBLIC_KEY, "retry_base_delay": 0.01},
    }))
    # A busy provider (or its proxy) answers once "slow down", quoting the key in every form:
    # the call is retried and the run succeeds, but the retry's warning reaches the task log.
    add_faults(
        sandbox_url,
        {"provider": "mobizon", "action": "mobizon_code", "code": 30, "skip": 1, "times": 1,
         "message": f"Too many requests for apiKey={quote(MOBIZON_KEY, safe='')}: {echo(MOBIZON_KEY)}"},
        {"provider": "bsg", "path": "/api/campaigns", "action": "http_status", "status": 429, "skip": 1,
         "times": 1, "body": {"message": f"Too many requests: {echo(BSG_KEY)}", "errors": {"key": [BSG_KEY]}}},
    )
    return sandbox_url


@pytest.fixture
def trigger_events(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The payload of every TriggerEvent made from now on (triggers run in-process in dag.test())."""
    from airflow.triggers.base import TriggerEvent

    payloads: list[Any] = []
    init = TriggerEvent.__init__

    def recording(self: Any, payload: Any, *args: Any, **kwargs: Any) -> None:
        payloads.append(payload)
        init(self, payload, *args, **kwargs)

    monkeypatch.setattr(TriggerEvent, "__init__", recording)
    return payloads


# ------------------------------------------------------------------ the runs


def _ogangi_clock(url: str) -> contextlib.AbstractContextManager[Any]:
    from tests.e2e.test_example_ogangi import time_flies_after_resume

    return time_flies_after_resume(url)


@contextlib.contextmanager
def _fast_clock(url: str, speed: float) -> Iterator[None]:
    set_clock(url, speed=speed)
    yield


def _bsg_short_tokens(url: str) -> contextlib.AbstractContextManager[Any]:
    # Tokens live 3 real seconds: the deferred wait outlives one, so the run logs in again.
    httpx.post(f"{url}/_sandbox/bsg/config", json={"jwt_ttl": 30}).raise_for_status()
    return _fast_clock(url, 10)


@contextlib.contextmanager
def _jump_when_triggered(url: str) -> Iterator[None]:
    """The neutral DAG's wait: the clock stands still, then jumps an hour once the trigger polls."""
    from airflow_sms_provider.triggers.campaign import SmsCampaignTrigger

    set_clock(url, speed=0)
    run = SmsCampaignTrigger.run

    async def jump(self: SmsCampaignTrigger) -> Any:
        set_clock(url, advance=3600)
        async for event in run(self):
            yield event

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SmsCampaignTrigger, "run", jump)
        yield


@dataclass(frozen=True)
class Canary:
    """One run of one example DAG: the file, its DAG, and how the canary drives it."""

    file: str
    dag_id: str
    conf: dict[str, Any] = field(default_factory=dict)
    # the sandbox's clock while it runs (given the sandbox URL)
    clock: Callable[[str], contextlib.AbstractContextManager[Any]] = lambda url: contextlib.nullcontext()
    # what its tasks should end as ({}: the run succeeds)
    states: dict[str, str] = field(default_factory=dict)
    # changes to the loaded DAG (an operator argument the example leaves at its default)
    prepare: Callable[[Any], None] = lambda dag: None


def _hash_recipients(dag: Any) -> None:
    dag.get_task("delivery_report").hash_recipients = True


def _report(provider: str) -> Canary:
    return Canary("example_delivery_report.py", "example_delivery_report", {"sms_conn_id": f"{provider}_default"},
                  _jump_when_triggered, prepare=_hash_recipients)


def _any(provider: str) -> Canary:
    return Canary("example_any_provider_campaign.py", "example_any_provider_campaign",
                  {"sms_conn_id": f"{provider}_default"}, _jump_when_triggered)


def _notifier(provider: str) -> Canary:
    return Canary("example_sms_notifier.py", "example_sms_notifier", {"sms_conn_id": f"{provider}_default"},
                  states={"extract": "success", "load": "failed"})


# One line per example DAG and provider. A new file in example_dags/ fails
# test_every_example_dag_is_in_the_canary until it has a line here (or in NOT_CANARIES, with why).
CASES: dict[str, Canary] = {
    "mobizon": Canary("example_mobizon_campaign.py", "example_mobizon_campaign", clock=lambda u: _fast_clock(u, 600)),
    "bsg": Canary("example_bsg_campaign.py", "example_bsg_campaign", clock=_bsg_short_tokens),
    "ogangi": Canary("example_ogangi_broadcast.py", "example_ogangi_broadcast", clock=_ogangi_clock),
    "any_provider-mobizon": _any("mobizon"),
    "any_provider-bsg": _any("bsg"),
    "any_provider-ogangi": _any("ogangi"),
    "notifier-mobizon": _notifier("mobizon"),
    "notifier-bsg": _notifier("bsg"),
    "notifier-ogangi": _notifier("ogangi"),
    "delivery_report-mobizon": _report("mobizon"),  # Ogangi cannot list messages: no report
    "delivery_report-bsg": _report("bsg"),
    "delivery_events_sender-mobizon": Canary("example_delivery_events_sender.py", "example_delivery_events_sender",
                                             {"sms_conn_id": "mobizon_default"}),
}
# Example files the canary does not run, and why (each must still be named: see the test below).
NOT_CANARIES: dict[str, str] = {
    "example_delivery_events_consumer.py": "sends nothing and reads no connection: it runs on the sender's asset "
                                           "events (tests/integration/test_events_api_server.py runs the pair)",
    "example_governed_send.py": "dag.test() would wait for a person's answer: tests/e2e/test_example_governed_send.py "
                                "answers it through a real API server; the approval body is checked for secrets in "
                                "tests/unit/test_approval_operator.py",
}


def test_every_example_dag_is_in_the_canary() -> None:
    """A new example DAG is a new place for a secret to show: the canary must run it."""
    covered = {case.file for case in CASES.values()} | set(NOT_CANARIES)
    missing = sorted(p.name for p in EXAMPLE_DAGS.glob("*.py") if p.name not in covered and p.name != "__init__.py")
    hints = [f'    "{name.removesuffix(".py").removeprefix("example_")}-<provider>": '
             f'Canary("{name}", "<dag_id>", {{"sms_conn_id": "<provider>_default"}}, <clock>),' for name in missing]
    assert not missing, (
        "example DAG(s) the secret canary does not run: add one line per provider to CASES in "
        "tests/integration/test_secret_canary.py:\n" + "\n".join(hints)
        + "\n(or name the file in NOT_CANARIES with the reason it cannot run there)"
    )
    stale = sorted(name for name in covered if not (EXAMPLE_DAGS / name).exists())
    assert not stale, f"CASES / NOT_CANARIES name example files that no longer exist: {stale}"


def _database_records(run: Any) -> list[str]:
    """The run's database rows as text (test_secrets), and proof they include rendered template fields."""
    out = database_records(run)
    assert any(line.startswith("rendered ") for line in out), "the run rendered no template field: nothing checked"
    return out


def _sms_texts(url: str) -> list[str]:
    """Every SMS text every provider of the sandbox received."""
    texts: list[str] = []
    for provider in KEYS:
        state = sandbox_state(url, provider)
        for campaign in state.get("campaigns") or state.get("broadcasts") or []:
            texts += [str(m.get("text")) for m in campaign.get("messages") or []]
            recipients = campaign.get("recipients") or []
            texts += [str(r.get("text")) for r in (recipients.values() if isinstance(recipients, dict) else recipients)
                      if isinstance(r, dict)]
            texts.append(str(campaign.get("text")))
        texts += [str(m.get("text")) for m in state.get("messages") or []]
    return texts


def _failure_texts(run: Any) -> list[str]:
    """What a failed task left: its state and, where Airflow keeps one, its error."""
    return [f"{ti.task_id} {ti.state} {getattr(ti, 'rendered_map_index', '')}" for ti in run.get_task_instances()]


def _report_rows(hostile_keys_db: Path) -> list[tuple[Any, ...]]:
    """The delivery report table's rows (empty when the run wrote none)."""
    if not hostile_keys_db.exists():
        return []
    with contextlib.closing(sqlite3.connect(hostile_keys_db)) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return list(db.execute(f"SELECT * FROM {REPORT_TABLE}")) if REPORT_TABLE in tables else []


def _audience_digits() -> set[str]:
    """The digits of every phone of the delivery report example's audience."""
    with (EXAMPLE_DAGS / "data" / "delivery_report_audience.csv").open(newline="") as fh:
        return {"".join(ch for ch in row["phone"] if ch.isdigit()) for row in csv.DictReader(fh)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_canary_every_example_dag_leaks_no_form_of_any_secret(
    case: str, airflow_db: None, hostile_keys: str, capfd: pytest.CaptureFixture[str], jwts: set[str],
    trigger_events: list[Any], tmp_path: Path,
) -> None:
    url = hostile_keys
    canary = CASES[case]
    dag = load_example(canary.file, canary.dag_id)
    canary.prepare(dag)
    started = time.time() - 1
    capfd.readouterr()
    with debug_logging() as recorder, canary.clock(url):
        run = dag.test(run_conf=canary.conf) if canary.conf else dag.test()
    out, err = capfd.readouterr()
    states = task_states(run)
    if canary.states:
        assert states == canary.states, states
    else:
        assert str(run.state).endswith("success"), states

    texts = _sms_texts(url)
    assert any(text not in ("None", "") for text in texts), "the sandbox received no SMS: nothing was checked"
    report = _report_rows(tmp_path / "reports.db")
    captured = "\n".join([out, err, *recorder.lines, *log_files(started), *_database_records(run),
                          json.dumps(trigger_events, default=str), *texts, *_failure_texts(run),
                          *(repr(row) for row in report)])
    haystack = "\n".join(line for line in captured.splitlines() if AIRFLOW_MASKER_IPC not in line)
    secrets = SECRETS | jwts
    if "bsg" in case:
        assert jwts, "no BSG token was issued: the JWT was not checked"
    if "mobizon" in case or "bsg" in case:
        assert "Too many requests" in haystack, "the echoing answer was not captured: nothing was checked"
    if canary.file == "example_delivery_report.py":
        # hash_recipients: the table holds the salted hash of each phone, never the phone itself
        assert len(report) == len(_audience_digits()), report
        cells = "\n".join(str(cell) for row in report for cell in row)
        assert not [digits for digits in _audience_digits() if digits in cells], "a raw phone in the report table"
    assert not leaks(haystack, secrets)


# The event trigger (an AssetWatcher's, so no example DAG runs it): the campaign read answers with an
# error quoting the key in every form (Ogangi: a broadcast it does not know).
EVENT_TRIGGER_FAULTS: dict[str, dict[str, Any] | None] = {
    "mobizon": {"provider": "mobizon", "action": "mobizon_code", "code": 8, "times": None,
                "message": f"Wrong API key: {echo(MOBIZON_KEY)}", "data": {"apiKey": MOBIZON_KEY}},
    "bsg": {"provider": "bsg", "path": "/api/campaigns/4242", "action": "http_status", "status": 401, "times": None,
            "body": {"message": f"Unauthenticated: {echo(BSG_KEY)}", "errors": {"key": [BSG_KEY]}}},
    "ogangi": None,
}


@pytest.mark.parametrize("provider", sorted(KEYS))
def test_canary_the_event_trigger_leaks_no_form_of_any_secret(
    provider: str, airflow_db: None, hostile_keys: str, capfd: pytest.CaptureFixture[str], jwts: set[str],
) -> None:
    """SmsCampaignEventTrigger: its serialized kwargs (the trigger row), its event (the asset event's
    extra) and every log line hold no form of any secret, also when the provider echoes the key."""
    import asyncio

    from airflow_sms_provider.triggers.campaign_event import SmsCampaignEventTrigger

    fault = EVENT_TRIGGER_FAULTS[provider]
    if fault is not None:
        add_faults(hostile_keys, fault)
    trigger = SmsCampaignEventTrigger(f"{provider}_default", [4242], poll_interval=0.05)
    classpath, kwargs = trigger.serialize()
    capfd.readouterr()
    with debug_logging() as recorder:
        payload = asyncio.run(asyncio.wait_for(trigger.final_event(), 60))
    out, err = capfd.readouterr()
    assert payload["status"] in ("error", "failed"), payload  # Ogangi: an unknown broadcast reads as failed
    if fault is not None:
        assert "***" in payload["message"], payload  # the echo reached the event, masked
    haystack = "\n".join([out, err, *recorder.lines, json.dumps(payload, default=str), classpath, repr(kwargs)])
    haystack = "\n".join(line for line in haystack.splitlines() if AIRFLOW_MASKER_IPC not in line)
    assert not leaks(haystack, SECRETS | jwts)
